"""JSON error responses: ``{"error": {"code": …, "message": …}}`` with a proper status, never a traceback."""

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
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}

_MESSAGES_BY_STATUS = {
    404: "no such endpoint; see docs/api.md for the API v1 routes",
    405: "method not allowed on this endpoint",
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


async def read_json_object(
    request: web.Request, what: str, *, empty: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 ``ApiError`` that says what was expected (``what``).
    ``empty``: what an empty body means; None refuses it like any other non-object."""
    raw = await request.read()
    if not raw and empty is not None:
        return dict(empty)
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", f"the request body must be a JSON object ({what})")
    return body
