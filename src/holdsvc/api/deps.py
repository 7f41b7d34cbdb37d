"""Dependencies controllers receive."""

from __future__ import annotations

from typing import Any

from litestar import Request

from holdsvc.services import Services


def provide_services(request: Request[Any, Any, Any]) -> Services:
    """The app's services, built in its lifespan.

    Taken from the request's app rather than a ``state`` parameter: Litestar builds a fresh
    ``State`` (with its lock) for every request that asks for ``state``.
    """
    services: Services = request.app.state.services
    return services
