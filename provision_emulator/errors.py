"""Google's error shape, so client libraries raise the same exception classes they raise on Google.

Every error the emulator answers carries `code`, `message`, `status` and `errors[]` (compute's
clients read `errors[].reason`; the one-platform clients read `status` and `details`).
"""

from __future__ import annotations

from typing import Any

_STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}

# google.rpc.Code numbers, for `error` inside a google.longrunning.Operation.
RPC_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
}


class ApiError(Exception):
    """An error answer. Raised anywhere below a request handler; the server renders it."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str = "invalid",
        status: str | None = None,
        domain: str = "global",
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        messages: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.status = status or _STATUS_BY_CODE.get(code, "UNKNOWN")
        self.domain = domain
        self.details = details or []
        self.headers = headers or {}
        # One errors[] entry per message: a body with two bad fields names both.
        self.messages = messages or [message]

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "errors": [
                {"message": m, "domain": self.domain, "reason": self.reason} for m in self.messages
            ],
        }
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def rpc(self) -> dict[str, Any]:
        """The google.rpc.Status form, as a long-running operation reports a failure."""
        return {"code": RPC_CODES.get(self.status, 2), "message": self.message}


def invalid(message: str, *, messages: list[str] | None = None) -> ApiError:
    return ApiError(400, message, reason="invalid", messages=messages)


def not_found(message: str) -> ApiError:
    return ApiError(404, message, reason="notFound")


def already_exists(message: str) -> ApiError:
    return ApiError(409, message, reason="alreadyExists")


def failed_precondition(message: str) -> ApiError:
    return ApiError(400, message, reason="failedPrecondition", status="FAILED_PRECONDITION")


def aborted(message: str) -> ApiError:
    return ApiError(409, message, reason="aborted", status="ABORTED")


def permission_denied(message: str) -> ApiError:
    return ApiError(403, message, reason="forbidden")


def unimplemented(message: str) -> ApiError:
    return ApiError(501, message, reason="notImplemented")


class FailsInOperation(Exception):
    """A refusal Google makes as the operation runs, not at the request: the request is
    answered with an operation, which ends with `error` (a quota of compute's, observed as
    "Error waiting for Creating Router: Quota 'ROUTERS' exceeded",
    hashicorp/terraform-provider-google#9479)."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error
