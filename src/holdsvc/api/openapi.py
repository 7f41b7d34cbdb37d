"""The OpenAPI document: every answer of every route, read from what the route declares.

A route's decorator lists the answers only it knows (``responses=problems(404, 409)``, the
200 of a replay with ``schemas.replayed``). Everything that follows from the rest of its
declaration is added here, once for every route, so the document cannot drift from the code:

- a guard that asks for a bearer token (``auth.BEARER_GUARDS``): the ``bearerAuth``
  security requirement naming the role it needs, and 401 (and 403 when it needs a role);
- a ``Manage-Token`` header: the ``manageToken`` apiKey scheme, offered as the alternative
  to a bearer token of the reservation's venue staff, and 401, 403;
- a ``Hold-Token`` (or ``Waitlist-Token``) header: a required parameter, and 403 (the
  handler checks it itself, so a missing token is the same 403 as a wrong one);
- a JSON body: 400 and 415; any other input (path, query, header): 400; an id in the path:
  404 (API.md: a well-formed id that names nothing is a 404);
- a rate-limited path (``throttle.is_hold_path``): 429, and the ``RateLimit-*`` headers on
  every other answer;
- Redis (the ``services`` dependency, or a bearer guard: staff tokens live there): 503;
- ``Retry-After`` on each status whose problems may carry ``retry_after``.

Every problem status is described from the table of codes (``errors.Problem``, through
``schemas.problem_response``): a new code is documented where its status already is, and a
new status only needs the rule saying which routes give it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from litestar import Litestar
from litestar.constants import RESERVED_KWARGS
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.params import ParameterKwarg
from litestar.routes import HTTPRoute

from holdsvc import errors
from holdsvc.api.auth import RESERVATION_STAFF, bearer_role
from holdsvc.api.media import takes_json_body
from holdsvc.api.schemas import problem_response
from holdsvc.api.throttle import RATE_LIMIT_HEADERS, is_hold_path

BEARER = "bearerAuth"
MANAGE_TOKEN = "manageToken"  # noqa: S105 (a scheme's name, not a secret)
SECURITY_SCHEMES = {
    BEARER: SecurityScheme(
        type="http",
        scheme="bearer",
        description="An admin token (HOLDSVC_ADMIN_TOKENS), or a staff token of the venue "
        "the route addresses. A requirement names the least role it needs: `host` (a host "
        "or manager of the venue, or an admin), `manager` (a manager or an admin), `admin`; "
        "none: any valid token.",
    ),
    MANAGE_TOKEN: SecurityScheme(
        type="apiKey",
        name="Manage-Token",
        security_scheme_in="header",
        description="The reservation's own secret: `manage_token` of the answers to its confirm.",
    ),
}
# Header parameters that carry a secret the route cannot do without.
SECRET_HEADERS = frozenset({"Hold-Token", "Waitlist-Token"})
# Header parameters a guest sends instead of a bearer token: the scheme each one is.
BEARER_ALTERNATIVES = {"Manage-Token": MANAGE_TOKEN}
# Statuses whose problems may carry retry_after and a Retry-After header: those of the script
# codes that say when to retry, and 503 (Redis unreachable, a write not replicated in time).
RETRY_AFTER_STATUSES = frozenset(
    {
        status.problem.status
        for status in errors.Status
        if status.problem is not None
        and (status.retry_at is not None or status.retry_in_us is not None)
    }
    | {errors.Problem.UNAVAILABLE.status}
)
RATE_LIMITED = errors.Problem.RATE_LIMITED.status


def openapi_config(render_plugins: Sequence[OpenAPIRenderPlugin]) -> OpenAPIConfig:
    """The document's settings: no generated examples, the security schemes, and the pages
    that draw it (``render_plugins``)."""
    return OpenAPIConfig(
        title="holdsvc",
        version="1.0.0",
        path="/schema",
        create_examples=False,
        components=Components(security_schemes=dict(SECURITY_SCHEMES), headers=dict(HEADERS)),
        render_plugins=list(render_plugins),
    )


def _header(description: str, kind: OpenAPIType = OpenAPIType.INTEGER) -> OpenAPIHeader:
    return OpenAPIHeader(schema=Schema(type=kind), description=description)


# The response headers, described once (components/headers) and referred to by each answer.
HEADERS = {
    "Retry-After": _header("Seconds to wait before trying again (as `retry_after`)"),
    **{name: _header(description) for name, description in RATE_LIMIT_HEADERS.items()},
    "RateLimit-Policy": _header(RATE_LIMIT_HEADERS["RateLimit-Policy"], OpenAPIType.STRING),
}


def _refer(*names: str) -> dict[str, OpenAPIHeader | Reference]:
    return {name: Reference(ref=f"#/components/headers/{name}") for name in names}


RETRY_AFTER = _refer("Retry-After")
PROBLEM_JSON = "application/problem+json"
PROBLEM_BODY = OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))
RATE_LIMIT = _refer(*RATE_LIMIT_HEADERS)


@dataclass
class DocumentedOperation(Operation):
    """An operation whose answers name the headers they are sent with, and whose secret
    headers are required (Litestar builds it from the route handler)."""

    rate_limited: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for status, response in (self.responses or {}).items():
            if not isinstance(response, OpenAPIResponse):
                continue
            headers = dict(response.headers or {})
            if int(status) in RETRY_AFTER_STATUSES:
                headers |= RETRY_AFTER
            if self.rate_limited and int(status) != RATE_LIMITED:
                headers |= RATE_LIMIT
            response.headers = headers or None
            if int(status) >= 400:
                # A refusal may always come as a problem (e.g. /ready's 503 when Redis is gone).
                response.content = {**(response.content or {}), PROBLEM_JSON: PROBLEM_BODY}
        for parameter in self.parameters or []:
            if not isinstance(parameter, Parameter):
                continue
            if parameter.param_in == ParamType.HEADER and parameter.name in SECRET_HEADERS:
                parameter.required = True
                parameter.schema = Schema(type=OpenAPIType.STRING, min_length=1)


@dataclass
class RateLimitedOperation(DocumentedOperation):
    """The operation of a rate-limited route."""

    rate_limited: ClassVar[bool] = True


def header_names(handler: HTTPRouteHandler) -> set[str]:
    """The header parameters a handler declares."""
    return {
        field.kwarg_definition.name
        for field in handler.parsed_fn_signature.parameters.values()
        if isinstance(field.kwarg_definition, ParameterKwarg)
        and field.kwarg_definition.param_type is ParamType.HEADER
        and field.kwarg_definition.name
    }


def takes_input(route: HTTPRoute, handler: HTTPRouteHandler) -> bool:
    """Whether a route reads anything it validates: a path, query or header parameter, or a
    body (Litestar's own rule for listing a 400)."""
    arguments = set(handler.parsed_fn_signature.parameters) - RESERVED_KWARGS
    return bool(
        route.path_parameters
        or "data" in handler.parsed_fn_signature.parameters
        or arguments - set(handler.resolve_dependencies())
    )


def security(handler: HTTPRouteHandler) -> list[SecurityRequirement]:
    """The security requirements of a route, from its guards and its token headers."""
    roles = [role for guard in handler.resolve_guards() if (role := bearer_role(guard)) is not None]
    requirements: list[SecurityRequirement] = []
    if roles:
        requirements.append({BEARER: sorted({role for role in roles if role})})
    for header in sorted(header_names(handler)):
        if header in BEARER_ALTERNATIVES:
            requirements = [{BEARER_ALTERNATIVES[header]: []}, {BEARER: [str(RESERVATION_STAFF)]}]
    return requirements


def statuses(route: HTTPRoute, handler: HTTPRouteHandler) -> set[int]:
    """The problem statuses that follow from a route's declaration (see the module)."""
    found: set[int] = set()
    roles = {bearer_role(guard) for guard in handler.resolve_guards()} - {None}
    headers = header_names(handler)
    if roles or headers & BEARER_ALTERNATIVES.keys():
        found.add(401)
    if roles - {""} or headers & (BEARER_ALTERNATIVES.keys() | SECRET_HEADERS):
        found.add(403)
    if takes_json_body(handler):
        found |= {400, 415}
    if takes_input(route, handler):
        found.add(400)
    if route.path_parameters:
        found.add(404)
    if is_hold_path(route.path):
        found.add(RATE_LIMITED)
    if roles or "services" in handler.parsed_fn_signature.parameters:
        found.add(503)  # Redis: the services, or the staff tokens a bearer guard looks up
    return found


def document_answers(app: Litestar) -> None:
    """Give every route of ``app`` its derived answers, security and headers (see the
    module); what a route's decorator declares itself wins."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            derived = {status: problem_response(status) for status in statuses(route, handler)}
            declared = {
                # Litestar would fill a declared answer's schema with random examples.
                status: replace(spec, generate_examples=False)
                for status, spec in (handler.responses or {}).items()
            }
            handler.responses = derived | declared
            handler.security = security(handler) or handler.security
            handler.operation_class = (
                RateLimitedOperation if is_hold_path(route.path) else DocumentedOperation
            )
