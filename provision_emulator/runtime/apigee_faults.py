"""The Apigee runtime's own error answers: `{"fault": {"faultstring", "detail": {"errorcode",
"reason"}}}` (https://cloud.google.com/apigee/docs/api-platform/errorcatalog/mp-runtime-errorcatalog).

- No proxy for the host and path: 404 `messaging.adaptors.http.flow.ApplicationNotFound`,
  "Unable to identify proxy for host: H and url: U"
  (https://docs.apigee.com/api-platform/troubleshoot/runtime/404-unable-identify-proxy-host).
- The target's host does not resolve: 503 `protocol.http.NoResolvedHost`, "Unable to resolve
  host H", reason TARGET_CONNECT_HOST_NOT_REACHABLE
  (https://cloud.google.com/apigee/docs/api-platform/troubleshoot/playbooks/runtime/target-connect-host-not-reachable).
- No connection to the target: 503 `messaging.adaptors.http.flow.ServiceUnavailable`, "The
  Service is temporarily unavailable"
  (https://docs.apigee.com/api-platform/troubleshoot/runtime/503-service-unavailable).
- The TLS handshake fails: 503 `messaging.adaptors.http.flow.SslHandshakeFailed`, "SSL
  Handshake failed " and the cause (https://cloud.google.com/apigee/docs/release/known-issues).
A target's own error status reaches the client as the target sent it; the emulator's message
for what it does not evaluate is a 500 that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True)
class Fault:
    status: int
    body: dict[str, Any]

    @property
    def reason(self) -> str:
        return reason(self.status)


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _fault(status: int, code: str, message: str, why: str = "") -> Fault:
    detail = {"errorcode": code, **({"reason": why} if why else {})}
    return Fault(status, {"fault": {"faultstring": message, "detail": detail}})


def application_not_found(host: str, path: str) -> Fault:
    return _fault(404, "messaging.adaptors.http.flow.ApplicationNotFound",
                  f"Unable to identify proxy for host: {host} and url: {path}")


def unreachable(cause: str, detail: str) -> Fault:
    if cause == "dns":
        host = detail.removeprefix("unknown host ").split(":", 1)[0]
        return _fault(503, "protocol.http.NoResolvedHost", f"Unable to resolve host {host}",
                      "TARGET_CONNECT_HOST_NOT_REACHABLE")
    if cause == "tls":
        return _fault(503, "messaging.adaptors.http.flow.SslHandshakeFailed",
                      f"SSL Handshake failed {detail}")
    return _fault(503, "messaging.adaptors.http.flow.ServiceUnavailable",
                  "The Service is temporarily unavailable")


def not_modelled(what: str) -> Fault:
    return _fault(500, "emulator.NotModelled", f"Not evaluated by the emulator: {what}")
