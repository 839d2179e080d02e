"""Errors in OpenAI's JSON shape (``{"error": {"message", "type", "param", "code"}}``) with the right status."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ..core.errors import (
    CancelledError,
    ContextLengthError,
    InvalidInputError,
    InvalidStateError,
    ModelNotFoundError,
    ModelNotLoadedError,
    OfflineModeError,
    SDKError,
    SDKErrorCode,
)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_error", 499: "cancelled", 500: "server_error", 503: "server_error"}


class APIError(SDKError):
    """A request the server answers with an error status; ``param`` names the field at fault."""

    default_code = SDKErrorCode.INVALID_PARAMETER

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.error_code, self.retry_after_s = status, param, code, retry_after_s


def bad_request(message: str, param: str | None = None, code: str = "invalid_parameter") -> APIError:
    return APIError(400, message, param=param, code=code)


def unsupported(param: str, why: str = "") -> APIError:
    """A 400 for a parameter the server does not honour (never silently dropped)."""
    return bad_request(f"'{param}' is not supported{': ' + why if why else ''}", param, "unsupported_parameter")


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "param": param, "code": code}}


def error_payload(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for an error: APIError as is, SDK errors by their kind, others 500."""
    if isinstance(exc, APIError):
        return exc.status, error_body(exc.status, exc.message, exc.param, exc.error_code)
    status, code = _status(exc)
    message = exc.message if isinstance(exc, SDKError) else "internal error; see the server log"
    return status, error_body(status, message, None, code)


def error_response(exc: BaseException) -> JSONResponse:
    """The JSON response for an error raised while serving (429 and 503 say when to retry)."""
    status, body = error_payload(exc)
    retry = exc.retry_after_s if isinstance(exc, APIError) else None
    return JSONResponse(body, status, headers={"Retry-After": str(retry)} if retry is not None else None)


def _status(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, ModelNotFoundError | OfflineModeError):
        return 404, "model_not_found"
    if isinstance(exc, ContextLengthError):
        return 400, "context_length_exceeded"
    if isinstance(exc, InvalidInputError):
        return 400, "invalid_request"
    if isinstance(exc, InvalidStateError):
        return 409, "conflict"
    if isinstance(exc, ModelNotLoadedError):
        return 503, "model_not_loaded"
    if isinstance(exc, CancelledError):
        return 499, "cancelled"
    return 500, "server_error"
