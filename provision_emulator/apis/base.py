"""The rules of one API: where it departs from the generic resource semantics.

`ApiRules` defaults are Google's one-platform conventions (AIP: full resource names, `createTime`,
`google.longrunning.Operation`). An API module subclasses it only to change a convention, and
registers hooks for the collections where Google has special behaviour:

    RULES = RunRules("run")

    @RULES.on_create("projects.locations.services")
    def _fill_uri(cloud, call, body): ...

Hooks raise `ApiError` to refuse a request. A method without a generic role and without a
registered handler answers 501, so a missing rule shows instead of silently succeeding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provision_emulator import catalog, errors, formats, schemas
from provision_emulator.call import Call
from provision_emulator.catalog import VAR, Collection
from provision_emulator.errors import ApiError
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud
    from provision_emulator.refs import Ref

EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"

# (cloud, call) -> JSON body, or an awaitable of one
Handler = Callable[["Cloud", Call], Any]
# (cloud, call, new resource body): validate (raise) and fill output-only fields in place
CreateHook = Callable[["Cloud", Call, dict[str, Any]], None]
# (cloud, call, current resource, new body)
UpdateHook = Callable[["Cloud", Call, Resource, dict[str, Any]], None]
# (cloud, call, resource about to be deleted)
DeleteHook = Callable[["Cloud", Call, Resource], None]
# (cloud, resource, body copy) -> body as read (fields derived from other resources)
ReadHook = Callable[["Cloud", Resource, dict[str, Any]], dict[str, Any]]
# (cloud, resource): after a put or a delete has landed (an operation's end, or at once)
LandedHook = Callable[["Cloud", Resource], None]
# (cloud, finished operation) -> what the operation reports as its response
Effect = Callable[["Cloud", Operation], Any]


class ApiRules:
    numeric_enums = True  # answer `enum-encoding=int` requests with numbers
    proto_package = ""  # "google.cloud.run.v2": for `@type` URLs in operations
    # Collections the generic create/read/update/delete serve; None: all. Methods of other
    # collections answer 501 unless a handler is registered (IAM policy methods and
    # operations stay generic everywhere).
    generic_collections: frozenset[str] | None = None
    # Path prefixes clients use besides the discovery paths, and what they stand for
    # (storage downloads: {"download/storage/v1/": "storage/v1/"}).
    path_aliases: dict[str, str] = {}
    # Collections whose resources clients poll as they poll operations, their status moving as
    # an operation of theirs ends (Cloud DNS changes: pending, then done).
    polled_collections: frozenset[str] = frozenset()
    # Methods of other versions of the API that clients call (gcloud reads a project's number
    # with Resource Manager v1): version -> method ids, each with a handler registered for
    # "VERSION:ID". Nothing of those versions is served generically.
    other_versions: dict[str, tuple[str, ...]] = {}
    # Methods Google's REST reference documents that the discovery document lacks (Apigee's
    # debugsessions.data.list), each with a handler and the reference cited where it is made.
    documented_methods: tuple[Any, ...] = ()
    # Collections without a create that Google makes alongside another resource (a managed
    # instance group's instance group), which other resources reference.
    made_alongside: frozenset[str] = frozenset()

    def __init__(self, api: str) -> None:
        self.api = api
        self.handlers: dict[str, Handler] = {}
        self.create_hooks: dict[str, list[CreateHook]] = {}
        self.update_hooks: dict[str, list[UpdateHook]] = {}
        self.delete_hooks: dict[str, list[DeleteHook]] = {}
        self.read_hooks: dict[str, list[ReadHook]] = {}
        self.stored_hooks: dict[str, list[LandedHook]] = {}
        self.removed_hooks: dict[str, list[LandedHook]] = {}
        self.effects: dict[str, Effect] = {}

    # --- registration ---------------------------------------------------------------------

    def handler(self, *method_ids: str) -> Callable[[Handler], Handler]:
        """Replace the generic behaviour of these methods (or give one to a special method);
        "VERSION:ID" names a method of one of `other_versions`."""

        def register(fn: Handler) -> Handler:
            for method_id in method_ids:
                self.handlers[method_id] = fn
            return fn

        return register

    def on_create(self, *collections: str) -> Callable[[CreateHook], CreateHook]:
        return self._hook(self.create_hooks, collections)

    def on_update(self, *collections: str) -> Callable[[UpdateHook], UpdateHook]:
        return self._hook(self.update_hooks, collections)

    def on_delete(self, *collections: str) -> Callable[[DeleteHook], DeleteHook]:
        return self._hook(self.delete_hooks, collections)

    def on_read(self, *collections: str) -> Callable[[ReadHook], ReadHook]:
        return self._hook(self.read_hooks, collections)

    def on_stored(self, *collections: str) -> Callable[[LandedHook], LandedHook]:
        """After a create or update lands: what Google makes alongside (a managed instance
        group's instance group)."""
        return self._hook(self.stored_hooks, collections)

    def on_removed(self, *collections: str) -> Callable[[LandedHook], LandedHook]:
        """After a delete lands: what goes with the resource."""
        return self._hook(self.removed_hooks, collections)

    def effect(self, name: str) -> Callable[[Effect], Effect]:
        """A named operation effect (names, not functions, are persisted with operations)."""

        def register(fn: Effect) -> Effect:
            self.effects[name] = fn
            return fn

        return register

    @staticmethod
    def _hook(table: dict[str, list[Any]], collections: tuple[str, ...]) -> Callable[[Any], Any]:
        def register(fn: Any) -> Any:
            for coll in collections:
                table.setdefault(coll, []).append(fn)
            return fn

        return register

    # --- identity and server-set fields ---------------------------------------------------

    def resource_id(self, call: Call, coll: Collection, body: dict[str, Any]) -> str:
        """The id a create gives its resource: `{singular}Id` parameter, else the body's name."""
        rid = call.arg(coll.singular_id_param) or str(body.get("name") or "").rsplit("/", 1)[-1]
        if not rid:
            raise errors.invalid(f"{coll.singular_id_param} must be set.")
        return rid

    def new_resource(
        self, cloud: Cloud, call: Call, coll: Collection, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        props = schemas.properties(self.api, coll.schema) if coll.schema else frozenset()
        out = dict(body)
        stamp = formats.rfc3339(call.now)
        fills = {
            "name": path,
            "uid": formats.uuid(self.api, path, call.seq),
            "createTime": stamp,
            "updateTime": stamp,
            "etag": formats.fingerprint(self.api, path, call.seq),
        }
        out.update({k: v for k, v in fills.items() if k in props})
        return out

    def updated_resource(
        self, cloud: Cloud, call: Call, coll: Collection, old: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        props = schemas.properties(self.api, coll.schema) if coll.schema else frozenset()
        out = dict(new)
        if "updateTime" in props:
            out["updateTime"] = formats.rfc3339(call.now)
        if "etag" in props:
            out["etag"] = formats.fingerprint(self.api, call.path, call.seq)
        return out

    def apply_update(
        self, call: Call, coll: Collection, old: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        """AIP-134: the fields named in `updateMask`, or every field without one."""
        mask = call.arg("updateMask")
        if not mask or mask.strip() == "*":
            return {**schemas.server_fields(self.api, coll.schema, old), **body}
        new = copy.deepcopy(old)
        for field_path in mask.split(","):
            parts = [schemas.camel(p) for p in field_path.strip().split(".")]
            schemas.set_path(new, parts, schemas.get_path(body, parts))
        return new

    def list_response(
        self, call: Call, coll: Collection, items: list[dict[str, Any]], token: str | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if items:
            out[coll.list_field or "items"] = items
        if token:
            out["nextPageToken"] = token
        return out

    def render(self, cloud: Cloud, res: Resource) -> dict[str, Any]:
        body = res.body
        for hook in self.read_hooks.get(res.collection, ()):
            body = hook(cloud, res, dict(body))
        return body

    def canonical(self, cloud: Cloud, path: str) -> str:
        """The stored path of a resource a request may name another way (by number, by `-`)."""
        return path

    def implicit(self, cloud: Cloud, path: str, coll: Collection) -> bool:
        """Resources that exist without having been created (projects, Google-owned images)."""
        return False

    # --- references -----------------------------------------------------------------------

    def expand_reference(self, call: Call, value: str) -> str:
        """A reference as the path it abbreviates (compute's project-relative forms)."""
        return value

    def normalize_reference(self, call: Call, ref: Ref, value: str) -> str:
        """How a resolved reference is stored and read back."""
        return value

    # --- Google's messages ----------------------------------------------------------------

    def not_found(self, path: str, coll: Collection | None = None) -> ApiError:
        return errors.not_found(f"Resource '{path}' was not found")

    def already_exists(self, path: str, coll: Collection) -> ApiError:
        return errors.already_exists(f"Resource '{path}' already exists")

    def busy(self, path: str, op: Operation) -> ApiError:
        return errors.aborted(
            f"Resource '{path}' is the subject of a conflicting operation: {op.path}"
        )

    def missing_reference(self, call: Call, ref: Ref) -> ApiError:
        return errors.not_found(f"Resource '{ref.path}' was not found")

    def stale_policy(self, path: str) -> ApiError:
        return errors.aborted(
            "There were concurrent policy changes. Please retry the whole read-modify-write "
            "with exponential backoff."
        )

    def in_use(self, target: Resource, referrer: Resource) -> ApiError:
        return errors.failed_precondition(
            f"Resource '{target.path}' is in use by '{referrer.path}'"
        )

    # --- operations -----------------------------------------------------------------------

    def operation_path(self, cloud: Cloud, call: Call, target: str) -> str:
        """Where an operation on `target` lives, from the API's own operations collections:
        run `projects/P/locations/L/operations/ID`, serviceusage `operations/ID`."""
        pairs = dict(zip(target.split("/")[::2], target.split("/")[1::2], strict=False))
        op_id = formats.uuid(self.api, "operation", target, call.seq, call.now)
        best: list[str] = []
        for coll in catalog.collections(self.api).values():
            if not catalog.is_operations_collection(coll.name):
                continue
            out: list[str] = []
            for i, seg in enumerate(coll.pattern[:-1]):
                # A variable takes the target's value after the same collection name.
                value = seg if seg != VAR else (pairs.get(coll.pattern[i - 1]) if i else None)
                if value is None:
                    break
                out.append(value)
            else:
                if len(out) >= len(best):
                    best = [*out, op_id]
        if not best:
            raise errors.unimplemented(f"{self.api} has no operations collection")
        return "/".join(best)

    def type_url(self, schema: str) -> str:
        return f"type.googleapis.com/{self.proto_package}.{schemas.message_name(schema)}"

    def operation_metadata(
        self, cloud: Cloud, op: Operation, int_enums: bool
    ) -> dict[str, Any] | None:
        return None

    def render_operation(self, cloud: Cloud, op: Operation, int_enums: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"name": op.path}
        metadata = self.operation_metadata(cloud, op, int_enums)
        if metadata is not None:
            out["metadata"] = metadata
        out["done"] = op.done
        if op.done and op.error:
            out["error"] = {"code": op.error["rpc_code"], "message": op.error["message"]}
        elif op.done:
            schema = op.info.get("response_schema")
            response = op.response if isinstance(op.response, dict) else {}
            if schema and int_enums and self.numeric_enums:
                response = schemas.to_numbers(self.api, schema, response)
            type_url = self.type_url(schema) if schema else EMPTY_TYPE
            out["response"] = {"@type": type_url, **response}
        return out


def project_by_id(cloud: Cloud, path: str) -> str:
    """`projects/NUMBER/...` as `projects/ID/...`: APIs that accept either store one."""
    segments = path.split("/")
    if len(segments) >= 2 and segments[0] == "projects" and segments[1].isdigit():
        project = cloud.project_id(segments[1])
        if project is not None:
            return "/".join(["projects", project, *segments[2:]])
    return path
