"""Where a load balancer sends a request, from its live configuration: the URL map's host and
path rules, and a serverless NEG's URL mask.

Google's rules, as documented:
- URL maps (https://cloud.google.com/load-balancing/docs/url-map-concepts): a host rule's hosts
  match the request's host exactly or by a leading `*` wildcard; its path matcher's path rules
  match a path exactly, or by prefix when they end in `/*`, the longest match winning; the path
  matcher's default service, then the URL map's, takes what no rule matches. Route rules
  (advanced traffic management) are not followed here.
- URL masks (https://cloud.google.com/load-balancing/docs/negs/serverless-neg-concepts#url_masks):
  a template of the request's host and path in which `<service>` (and `<tag>`) stand for the
  Cloud Run service (and its tag) the request goes to; the request's path is passed on
  unchanged.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any
from urllib.parse import urlsplit


class NotFollowed(Exception):
    """The configuration routes by rules this check does not evaluate; says which."""


def route(url_map: dict[str, Any], host: str, path: str) -> tuple[str | None, str]:
    """The backend service link a request for host+path reaches, and how (evidence)."""
    name = url_map.get("name", "")
    rule = next((r for r in url_map.get("hostRules", [])
                 if any(_host_matches(h, host) for h in r.get("hosts", []))), None)
    if rule is None:
        return _default(url_map, f"URL map {name}: no host rule for {host}")
    matcher = next((m for m in url_map.get("pathMatchers", [])
                    if m.get("name") == rule.get("pathMatcher")), None)
    if matcher is None:
        return None, f"URL map {name}: host rule for {host} names no path matcher"
    if matcher.get("routeRules"):
        raise NotFollowed(f"URL map {name}: path matcher {matcher['name']} routes by route "
                          "rules, which are not evaluated")
    best: tuple[int, str] | None = None
    for path_rule in matcher.get("pathRules", []):
        for pattern in path_rule.get("paths", []):
            length = _path_matches(pattern, path)
            if length is not None and (best is None or length > best[0]):
                best = (length, path_rule.get("service", ""))
    if best is not None and best[1]:
        return best[1], f"URL map {name}: a path rule of {matcher['name']} matches {path}"
    if matcher.get("defaultService"):
        return matcher["defaultService"], (
            f"URL map {name}: {host}{path} goes to path matcher {matcher['name']}'s default "
            "service")
    return _default(url_map, f"URL map {name}: path matcher {matcher['name']} has no rule "
                    f"for {path}")


def _default(url_map: dict[str, Any], why: str) -> tuple[str | None, str]:
    if url_map.get("defaultService"):
        return url_map["defaultService"], f"{why}; the default service takes it"
    if url_map.get("defaultRouteAction") or url_map.get("defaultUrlRedirect"):
        raise NotFollowed(f"{why}; its default route action or redirect is not evaluated")
    return None, f"{why}, and it has no default service"


def _host_matches(pattern: str, host: str) -> bool:
    return pattern == "*" or fnmatch.fnmatchcase(host.lower(), pattern.lower())


def _path_matches(pattern: str, path: str) -> int | None:
    if pattern.endswith("/*"):
        prefix = pattern[:-1]
        return len(prefix) if path.startswith(prefix) or path == prefix[:-1] else None
    return len(pattern) if path == pattern else None


def url_mask_service(mask: str, host: str, path: str) -> str | None:
    """The Cloud Run service a URL mask sends host+path to, or None when it does not match."""
    if "://" in mask:
        parts = urlsplit(mask)
        mask = parts.netloc + parts.path
    host_part, _, path_part = mask.partition("/")
    path_part = "/" + path_part if path_part or mask.endswith("/") else ""
    pattern = (_template(host_part, "[^.]+") if host_part else "[^/]*") + (
        _template(path_part, "[^/]+") if path_part else "")
    found = re.match(f"^{pattern}(?=/|$)", host.lower() + path)
    if found is None:
        return None
    return found.groupdict().get("service")


def _template(text: str, wildcard: str) -> str:
    out = ""
    for piece in re.split(r"(<service>|<tag>)", text):
        if piece in ("<service>", "<tag>"):
            out += f"(?P<{piece[1:-1]}>{wildcard})"
        else:
            out += re.escape(piece.lower())
    return out


def serves_port(port: int, rule: dict[str, Any]) -> bool:
    """Whether a forwarding rule takes traffic on `port` (portRange "443" or "8000-8080", or
    ports, or allPorts)."""
    if rule.get("allPorts"):
        return True
    if rule.get("ports"):
        return str(port) in rule["ports"]
    return bool(rule.get("portRange")) and port_in(port, rule["portRange"])


def port_in(port: int, spec: str) -> bool:
    """Whether `port` is in a port spec as Google writes them: "443" or "8000-8080"."""
    low, _, high = str(spec).partition("-")
    return int(low) <= port <= int(high or low)
