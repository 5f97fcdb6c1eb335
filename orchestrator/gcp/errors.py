"""One error type for every Google client library, and the classifier of what is retryable.

google-cloud-* libraries raise google.api_core exceptions, google-api-python-client raises
HttpError; the engine sees only `ApiError`, carrying Google's own message and reason.
"""

from __future__ import annotations

import json
from typing import Any

# HTTP statuses Google documents as transient.
RETRYABLE_CODES = frozenset({429, 500, 502, 503, 504})
# errors[].reason values worth another try (see reference/peers.md §3: the Terraform provider's
# global predicates): quota per minute, eventual consistency of just-created parents. And the
# ErrorInfo reason google-api-core reports instead when Google sends one: RATE_LIMIT_EXCEEDED,
# a per-minute quota spent (google/api/error_reason.proto; "If the quota is a rate quota, then
# 403 RATE_LIMIT_EXCEEDED is returned", https://cloud.google.com/docs/quotas/troubleshoot).
RATE_QUOTA_REASON = "RATE_LIMIT_EXCEEDED"
RETRYABLE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "resourceNotReady", "backendError",
     RATE_QUOTA_REASON}
)
# Message fragments for the same, where Google gives no reason field.
RETRYABLE_MESSAGES = ("locked by another operation", "CONCURRENT_OPERATIONS_QUOTA_EXCEEDED")


class ApiError(Exception):
    """A Google API error: HTTP code, status, reason and Google's message, unchanged."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: str = "",
        reason: str = "",
        retry_after: float | None = None,
        method: str = "",
        rate_quota: bool = False,
    ) -> None:
        """rate_quota: Google said a per-minute rate quota is spent: its answer carries the
        ErrorInfo reason RATE_LIMIT_EXCEEDED ("If the quota is a rate quota, then 403
        RATE_LIMIT_EXCEEDED is returned", https://cloud.google.com/docs/quotas/troubleshoot),
        which other throttling (a bare 429) does not."""
        super().__init__(message)
        self.rate_quota = rate_quota
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason
        self.retry_after = retry_after
        self.method = method

    @property
    def retryable(self) -> bool:
        if self.code in RETRYABLE_CODES or self.reason in RETRYABLE_REASONS:
            return True
        return any(fragment in self.message for fragment in RETRYABLE_MESSAGES)

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def already_exists(self) -> bool:
        """Google's 409 for a name taken (ALREADY_EXISTS, compute's alreadyExists); other 409s
        are refusals of their own (ABORTED: a concurrent change won)."""
        return self.code == 409 and (
            self.status == "ALREADY_EXISTS" or self.reason in ("alreadyExists", "ALREADY_EXISTS"))

    def __str__(self) -> str:
        label = self.reason or self.status or "error"
        return f"{self.code} {label}: {self.message}"


class MalformedRequest(ValueError):
    """A request Google's client library refused to send (a resource name that is not of the
    form the method takes): the plan gave a value of the wrong shape, not a fault of the
    tool's or Google's."""


class OperationError(Exception):
    """A long-running operation that finished with an error."""

    def __init__(self, operation: str, message: str, *, code: str = "") -> None:
        super().__init__(f"operation {operation} failed: {message}")
        self.operation = operation
        self.message = message
        self.code = code

    @property
    def retryable(self) -> bool:
        # A compute operation that ends RESOURCE_NOT_READY succeeds when issued again.
        return self.code in ("RESOURCE_NOT_READY", "resourceNotReady")


class DeadlineExceeded(Exception):
    """The step's deadline passed while waiting or retrying."""


def from_exception(exc: BaseException) -> ApiError | None:
    """Translate a client library exception into an ApiError; None if it is not an API error."""
    if isinstance(exc, ApiError):
        return exc
    # Imported lazily: the CLI's start-up path must not import the client libraries.
    from google.api_core import exceptions as core_exc

    if isinstance(exc, core_exc.GoogleAPICallError):
        return _from_api_core(exc)
    try:
        from googleapiclient.errors import HttpError
    except ImportError:  # pragma: no cover - the package is a dependency
        return None
    if isinstance(exc, HttpError):
        return _from_http_error(exc)
    try:
        from google.cloud.exceptions import GoogleCloudError
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, GoogleCloudError):
        return _from_api_core(exc)
    return None


def _from_api_core(exc: Any) -> ApiError:
    code = int(exc.code or 0)
    reason = getattr(exc, "reason", None) or ""
    errors = getattr(exc, "errors", None) or []
    if not reason and errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason", "")
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    status = ""
    body = _json_body(getattr(response, "text", None) if response is not None else None)
    if body:
        status = body.get("error", {}).get("status", "")
    return ApiError(
        code,
        exc.message or str(exc),
        status=status,
        reason=reason,
        retry_after=_retry_after(headers.get("Retry-After") or headers.get("retry-after")),
        rate_quota=reason == RATE_QUOTA_REASON or _rate_quota(body),
    )


def _from_http_error(exc: Any) -> ApiError:
    body = _json_body(exc.content) or {}
    err = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
    errors = err.get("errors") or []
    reason = errors[0].get("reason", "") if errors and isinstance(errors[0], dict) else ""
    headers = exc.resp or {}
    return ApiError(
        int(exc.resp.status),
        err.get("message") or exc._get_reason(),
        status=err.get("status", ""),
        reason=reason,
        retry_after=_retry_after(headers.get("retry-after")),
        method=exc.uri or "",
        rate_quota=_rate_quota(body),
    )


def _rate_quota(body: dict[str, Any] | None) -> bool:
    details = ((body or {}).get("error") or {}).get("details") or []
    return any(isinstance(d, dict) and d.get("@type", "").endswith("google.rpc.ErrorInfo")
               and d.get("reason") == RATE_QUOTA_REASON for d in details)


def _json_body(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        data = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _retry_after(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
