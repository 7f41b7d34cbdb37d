"""Dependencies controllers receive."""

from __future__ import annotations

from litestar.datastructures import State

from holdsvc.services import Services


def provide_services(state: State) -> Services:
    """The app's services, built in its lifespan."""
    services: Services = state.services
    return services
