"""Client construction: one place that knows endpoints, credentials and thread safety.

Clients are cached per thread (the google-cloud clients' requests sessions, the discovery
services' httplib2 connections: httplib2 is not thread-safe), and the engine runs steps on a
pool of threads; a discovery service itself is shared. A Deployment keeps that pool from one
run to the next, so that each thread builds its clients once: building them took more CPU than
a no-op re-apply's requests. They are built one at a time: the first build imports the client
libraries, and threads importing the same modules at once can deadlock on Python's import locks
(`_DeadlockError` on requests.exceptions, seen in a destroy).

The google-cloud-* clients retry some methods on their own, for up to ten wall-clock minutes:
that would stack under the engine's retry policy and ignore the step's deadline and the run's
clock, so their methods are called with retry=None.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Collection, Mapping
from typing import Any

from google_facts import discovery
from orchestrator.gcp import trust
from orchestrator.version import USER_AGENT

_BUILD_LOCK = threading.Lock()


@functools.cache
def _takes_retry(cls: type, name: str) -> bool:
    attr = inspect.getattr_static(cls, name, None)
    if not inspect.isfunction(attr):
        return False
    return "retry" in inspect.signature(attr).parameters


class _EngineRetries:
    """A google-cloud client whose methods leave retrying to the engine (retry=None)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if _takes_retry(type(self._client), name):
            return functools.partial(attr, retry=None)
        return attr


class ClientFactory:
    """Builds the Google clients for one run.

    emulator_url: "http://127.0.0.1:PORT" of an emulator; every API is then served under
        `{emulator_url}/{api}`. None means Google itself.
    endpoints: per-API root URLs (e.g. Private Service Connect endpoints for Google APIs),
        taking precedence over both. With Google's credentials, each must be one they may go
        to (gcp/trust.py): Google's, or one of `trusted`, named by the user.
    """

    def __init__(
        self,
        *,
        credentials: Any,
        emulator_url: str | None = None,
        endpoints: Mapping[str, str] | None = None,
        trusted: Collection[str] = (),
    ) -> None:
        self.credentials = credentials
        self.emulator_url = emulator_url.rstrip("/") if emulator_url else None
        self.endpoints = {k: v.rstrip("/") for k, v in (endpoints or {}).items()}
        untrusted = sorted(url for url in self.endpoints.values()
                           if not trust.is_trusted(url, trusted))
        if untrusted and self.emulator_url is None:  # the emulator is reached anonymously
            raise ValueError(
                f"{untrusted[0]} is not a Google API endpoint, and credentials go to no other "
                "unless named with --trust-endpoint"
            )
        self._local = threading.local()
        self._services: dict[str, Any] = {}  # api -> its discovery service, for every thread
        self._shared_lock = threading.Lock()

    def root(self, api: str) -> str | None:
        """The API's root URL (Google's `rootUrl` equivalent), or None for the default."""
        if api in self.endpoints:
            return self.endpoints[api]
        if self.emulator_url:
            return f"{self.emulator_url}/{api}"
        return None

    def _cached(self, key: tuple[Any, ...], build: Any) -> Any:
        cache = self._local.__dict__.setdefault("clients", {})
        if key not in cache:
            with _BUILD_LOCK:
                cache[key] = build()
        return cache[key]

    @staticmethod
    def _client_info() -> Any:
        from google.api_core.gapic_v1.client_info import ClientInfo

        return ClientInfo(user_agent=USER_AGENT)

    @staticmethod
    def _named(client: Any) -> Any:
        """A GAPIC REST client whose User-Agent header names the tool. Its ClientInfo goes to
        x-goog-api-client only; the header would say python-requests, and the transport has no
        public handle on its session."""
        client.transport._session.headers["User-Agent"] = USER_AGENT
        return client

    def _options(self, api: str) -> Any:
        from google.api_core.client_options import ClientOptions

        root = self.root(api)
        return ClientOptions(api_endpoint=root) if root else None

    def compute(self, client_name: str) -> Any:
        """A google-cloud-compute client by class name ("NetworksClient")."""

        def build() -> Any:
            from google.cloud import compute_v1

            cls = getattr(compute_v1, client_name)
            return _EngineRetries(self._named(
                cls(credentials=self.credentials, client_options=self._options("compute"),
                    client_info=self._client_info())
            ))

        return self._cached(("compute", client_name), build)

    def run_services(self) -> Any:
        def build() -> Any:
            from google.cloud import run_v2

            return _EngineRetries(self._named(
                run_v2.ServicesClient(
                    credentials=self.credentials,
                    transport="rest",
                    client_options=self._options("run"),
                    client_info=self._client_info(),
                )
            ))

        return self._cached(("run",), build)

    def dns(self, project: str) -> Any:
        def build() -> Any:
            from google.cloud import dns

            return dns.Client(
                project=project, credentials=self.credentials, client_options=self._options("dns"),
                client_info=self._client_info(),
            )

        return self._cached(("dns", project), build)

    def storage(self) -> Any:
        """A google-cloud-storage client: a Cloud Storage ledger's."""

        def build() -> Any:
            from google.cloud import storage

            # project=None: objects need none (their bucket names them), and leaving it unset
            # would have the library look one up in the environment.
            return storage.Client(
                project=None, credentials=self.credentials,
                client_options=self._options("storage"), client_info=self._client_info(),
            )

        return self._cached(("storage",), build)

    def discovery(self, api: str) -> Any:
        """A google-api-python-client service built from the shipped discovery document.

        One service per API for all threads (a service is about 1 MB, and a wide plan's
        hundreds of waiting steps would each build theirs); each request goes over the calling
        thread's own http, as the library's thread-safety page prescribes (httplib2 is not
        thread-safe): through the `requestBuilder` it documents for this."""
        from googleapiclient.http import HttpRequest

        def request(_http: Any, *args: Any, **kwargs: Any) -> Any:
            return HttpRequest(self._http(), *args, **kwargs)

        http = self._http()  # first: building it takes the build lock too

        def build() -> Any:
            from googleapiclient import discovery as gdiscovery

            options = None
            root = self.root(api)
            if root:
                service_path = discovery.document(api).get("servicePath", "")
                options = {"api_endpoint": f"{root}/{service_path}"}
            return gdiscovery.build(
                api,
                discovery.API_VERSIONS[api],
                http=http,
                requestBuilder=request,
                static_discovery=True,
                cache_discovery=False,
                client_options=options,
            )

        with self._shared_lock:
            if api not in self._services:
                with _BUILD_LOCK:
                    self._services[api] = build()
            return self._services[api]

    def _http(self) -> Any:
        """This thread's authorized httplib2 connection, naming the tool in its user agent."""

        def build() -> Any:
            import google_auth_httplib2
            from googleapiclient.http import build_http, set_user_agent

            return set_user_agent(
                google_auth_httplib2.AuthorizedHttp(self.credentials, http=build_http()),
                USER_AGENT,
            )

        return self._cached(("http",), build)

    def url(self, api: str, path: str) -> str:
        """The URL of `path` (below the API's root: "v1/organizations/o") on its endpoint."""
        return f"{self.root(api) or f'https://{api}.googleapis.com'}/{path}"

    def session(self) -> Any:
        """An authorized HTTP session, for the few calls whose bodies are not JSON (an Apigee
        bundle's zip) and that the discovery clients cannot send raw."""

        def build() -> Any:
            from google.auth.transport.requests import AuthorizedSession

            session = AuthorizedSession(self.credentials)
            session.headers["User-Agent"] = USER_AGENT
            return session

        return self._cached(("session",), build)
