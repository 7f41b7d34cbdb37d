"""Every error becomes ``application/problem+json`` with a stable ``code``; never a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import Receive, Scope, Send
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    CrossSlotTransactionError,
    OutOfMemoryError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from holdsvc.errors import HoldsvcError, NotReplicated, Problem, Unavailable

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
# Seconds a client waits when Redis is full: the sweeper frees memory as holds lapse.
OOM_RETRY_AFTER = 5
# The code Litestar's own errors (bad JSON, unknown route...) answer with, by HTTP status: the
# first problem of the table with that status.
CODE_BY_STATUS: dict[int, str] = {}
for _problem in Problem:
    CODE_BY_STATUS.setdefault(_problem.status, _problem.code)


def problem_parts(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    retry_after: int | None = None,
    errors: list[Any] | None = None,
    reference: str | None = None,
    manage_token: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers of a problem+json response (RFC 9457) with our stable ``code``."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    headers: dict[str, str] = {}
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers["Retry-After"] = str(retry_after)
    if errors:
        body["errors"] = errors
    if reference is not None:
        body["reference"] = reference
    if manage_token is not None:
        body["manage_token"] = manage_token
    return body, headers


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    retry_after: int | None = None,
    errors: list[Any] | None = None,
    reference: str | None = None,
    manage_token: str | None = None,
) -> Response[dict[str, Any]]:
    """A problem+json response (RFC 9457) with our stable ``code``."""
    body, headers = problem_parts(
        status,
        code,
        title,
        detail,
        retry_after=retry_after,
        errors=errors,
        reference=reference,
        manage_token=manage_token,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def on_service_error(_: Request[Any, Any, Any], error: HoldsvcError) -> Response[dict[str, Any]]:
    """A service error with its own code (the exception handler)."""
    return problem_for(error)


def problem_for(error: HoldsvcError) -> Response[dict[str, Any]]:
    """The problem response of a service error (a write not replicated in time names its
    reference). Hot endpoints call it directly: Litestar's exception path costs more."""
    body, headers = service_problem_parts(error)
    return Response(body, status_code=error.status_code, media_type=PROBLEM_JSON, headers=headers)


def service_problem_parts(error: HoldsvcError) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and headers of a service error's problem."""
    replicated = error if isinstance(error, NotReplicated) else None
    return problem_parts(
        error.status_code,
        error.code,
        error.title,
        error.detail,
        retry_after=error.retry_after,
        reference=replicated.reference if replicated else None,
        manage_token=replicated.manage_token if replicated else None,
    )


def on_http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own errors: bad JSON, failed validation, unknown route, body too large."""
    status = error.status_code
    if status == 413:
        # An oversized body is bad input like any other: the contract's 400 validation_error.
        status = 400
    code = CODE_BY_STATUS.get(status, "validation_error" if status < 500 else "unavailable")
    errors = (
        error.extra
        if isinstance(error, ValidationException) and isinstance(error.extra, list)
        else None
    )
    title = "The request is not valid" if code == "validation_error" else str(error.detail)
    response = problem(status, code, title, str(error.detail), errors=errors)
    # Keep what Litestar said in headers (the rate limiter's RateLimit-* among them).
    for name, value in (error.headers or {}).items():
        response.headers.setdefault(name, value)
    if status == 429 and "RateLimit-Reset" in response.headers:
        response.headers.setdefault("Retry-After", response.headers["RateLimit-Reset"])
    return response


def on_redis_down(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """Redis unreachable (or a cluster mid-failover): 503, the client may retry."""
    log.warning("redis unavailable: %s", type(error).__name__)
    unavailable = Unavailable("Redis is unreachable; try again shortly")
    return problem(503, unavailable.code, unavailable.title, unavailable.detail, retry_after=1)


def on_redis_full(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """Redis refuses writes at its maxmemory (OOM): 503, nothing was written, retry later."""
    log.warning("redis is out of memory (maxmemory reached): %s", type(error).__name__)
    unavailable = Unavailable("Redis is full and refuses writes; try again later")
    return problem(
        503, unavailable.code, unavailable.title, unavailable.detail, retry_after=OOM_RETRY_AFTER
    )


def on_unexpected(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """A bug: logged with its traceback, answered as a problem without details."""
    log.exception("unhandled error", exc_info=error)
    return problem(500, "internal_error", "Internal error", "An unexpected error happened")


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    HoldsvcError: on_service_error,
    HTTPException: on_http_error,
    RedisConnectionError: on_redis_down,
    RedisTimeoutError: on_redis_down,
    # Redis Cluster: no primary for a slot yet (failover), TRYAGAIN, topology not reachable.
    ClusterDownError: on_redis_down,
    ClusterError: on_redis_down,
    TryAgainError: on_redis_down,
    RedisClusterException: on_redis_down,
    CrossSlotTransactionError: on_unexpected,  # a bug, not an outage
    # maxmemory reached with noeviction: a script's first write is refused, so nothing of
    # it was written (redis-py raises this for EVALSHA, a single command and MULTI alike).
    OutOfMemoryError: on_redis_full,
    Exception: on_unexpected,
}


def handler_for(error: Exception) -> Callable[[Request[Any, Any, Any], Any], Response[Any]]:
    """The handler of EXCEPTION_HANDLERS for an error: its nearest class in the table."""
    for cls in type(error).__mro__:
        handler = EXCEPTION_HANDLERS.get(cls)
        if handler is not None:
            return handler  # type: ignore[no-any-return]
    return on_unexpected


async def answer_error(scope: Scope, receive: Receive, send: Send, error: Exception) -> None:
    """Answer an error that escaped a route's own handling (raised by app middleware or the
    hold fast path) with the same problem Litestar's outer handler would send."""
    request: Request[Any, Any, Any] = Request(scope, receive, send)
    response = handler_for(error)(request, error)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)
