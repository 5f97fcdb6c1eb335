"""Where credentials may go: Google's API endpoints, and endpoints the person running provision
named on its command line. A plan is often written by someone else; the endpoints it names must
not be able to receive the credentials of whoever runs it.

Google's API endpoints are HTTPS under googleapis.com: the global ones (compute.googleapis.com),
regional and mTLS forms (*.mtls.googleapis.com, "Mutual TLS": https://google.aip.dev/auth/4114),
Private Service Connect endpoints for Google APIs (SERVICE-ENDPOINT.p.googleapis.com:
https://cloud.google.com/vpc/docs/configure-private-service-connect-apis), and Private Google
Access's private.googleapis.com and restricted.googleapis.com
(https://cloud.google.com/vpc/docs/configure-private-google-access).
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

GOOGLE_API_DOMAIN = "googleapis.com"


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the port given or the scheme's default."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: no origin anything is trusted with
        return parts.scheme.lower(), "", None
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def is_google_api(url: str) -> bool:
    """Whether `url` is an HTTPS endpoint of Google's APIs (and carries no user name or
    password, which would be sent along)."""
    parts = urlsplit(url)
    scheme, host, _ = origin(url)
    return (
        scheme == "https"
        and parts.username is None
        and (host == GOOGLE_API_DOMAIN or host.endswith("." + GOOGLE_API_DOMAIN))
    )


def is_trusted(url: str, named: Collection[str] = ()) -> bool:
    """Whether credentials may go to `url`: a Google API endpoint, or one at the origin of an
    endpoint the user named (--trust-endpoint)."""
    return is_google_api(url) or origin(url) in {origin(u) for u in named}
