"""A local Google Cloud control plane that the real client libraries talk to over HTTP.

Each API is served under `/{api}` (point a client's `api_endpoint` at `{url}/{api}`), with routes
and schemas from the discovery documents shipped in google-api-python-client, and an admin API
under `/_emulator/`. See `Emulator` for in-process use and `serve` for a standalone server.
"""

from provision_emulator.faults import Faults
from provision_emulator.server import Emulator, serve

__all__ = ["Emulator", "Faults", "serve"]
