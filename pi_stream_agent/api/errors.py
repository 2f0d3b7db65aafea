"""JSON error responses: ``{"error": {"code": …, "message": …}}`` with a proper status, never a traceback;
and the one JSON parser for what clients send (request bodies and WebSocket messages)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

# Status → stable machine-readable code, for the errors aiohttp raises itself (routing, body size…).
_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    408: "request_timeout",
    415: "unsupported_media_type",
    422: "invalid",
    431: "headers_too_large",
    503: "unavailable",
}

_MESSAGES_BY_STATUS = {
    404: "no such endpoint; see docs/api.md for the API v1 routes",
    405: "method not allowed on this endpoint",
    408: "the request did not arrive in time; send it again",
    413: "request body too large",
}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def json_error(status: int, code: str, message: str, **details: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="pi_stream"'} if status == 401 else None
    return web.json_response(error_body(code, message, **details), status=status, headers=headers)


def from_http_exception(exc: web.HTTPException) -> web.Response:
    status = exc.status
    code = _CODES_BY_STATUS.get(status, "error")
    message = _MESSAGES_BY_STATUS.get(status) or exc.reason or "error"
    response = json_error(status, code, message)
    if status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


class ApiError(Exception):
    """Raised by handlers for a request that cannot be served; turned into a JSON error response."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def response(self) -> web.Response:
        return json_error(self.status, self.code, self.message, **self.details)


def _refuse_constant(name: str) -> Any:
    raise ApiError(
        400, "invalid_json", f"{name} is not a JSON number; send finite numbers only", constant=name
    )


def parse_json(text: str | bytes, what: str = "the request body") -> Any:
    """``text`` as JSON, or a 400 ``ApiError`` (code ``invalid_json``) saying what is wrong. Refuses what
    Python's parser would accept but no reply could carry: NaN and ±Infinity, and nesting so deep that it
    exhausts the parser's recursion."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, "invalid_json", f"{what} is nested too deeply") from None
    except ValueError:
        raise ApiError(400, "invalid_json", f"{what} is not valid JSON") from None


async def read_json_object(
    request: web.Request, what: str, *, empty: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 ``ApiError`` that says what was expected (``what``).
    ``empty``: what an empty body means; None refuses it like any other non-object."""
    raw = await request.read()
    if not raw and empty is not None:
        return dict(empty)
    body = parse_json(raw or b"null")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", f"the request body must be a JSON object ({what})")
    return body
