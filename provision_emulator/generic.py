"""Generic resource semantics, chosen by a method's name: create/insert, get, list, delete,
patch, update, IAM policies and operations. Rules hook into them (apis/base.py) or replace them.
"""

from __future__ import annotations

import base64
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from google_facts import discovery
from provision_emulator import access, catalog, errors, filters, formats, schemas
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.cloud import Cloud, failure
from provision_emulator.store import Key, Resource, parent_of

if TYPE_CHECKING:
    from provision_emulator.apis.base import ApiRules

DEFAULT_PAGE = 500


async def dispatch(cloud: Cloud, call: Call) -> Any:
    rules = cloud.rules[call.api]
    if call.method.version != discovery.API_VERSIONS[call.api]:
        handler = rules.handlers.get(f"{call.method.version}:{call.method.id}")
        if handler is None:
            raise errors.unimplemented(f"The emulator does not implement {call.method.id} "
                                       f"{call.method.version}.")
        return handler(cloud, call)
    handler = rules.handlers.get(call.method.id)
    if handler is None:
        role = catalog.role(call.method)
        handler = GENERIC.get(role) if role else None
        if handler is None or not _generic_allowed(rules, call):
            raise errors.unimplemented(f"The emulator does not implement {call.method.id}.")
    result = handler(cloud, call)
    if inspect.isawaitable(result):
        result = await result
    return result


# Roles that behave the same for every collection of every API.
UNIVERSAL = frozenset({"getIamPolicy", "setIamPolicy", "testIamPermissions"})


def _generic_allowed(rules: ApiRules, call: Call) -> bool:
    return (
        rules.generic_collections is None
        or call.method.resource in rules.generic_collections
        or catalog.is_operations(call.method)
        or call.method.name in UNIVERSAL
    )


def collection(call: Call) -> Collection:
    coll = catalog.collections(call.api).get(call.method.resource)
    if coll is None:
        raise errors.unimplemented(f"The emulator does not implement {call.method.id}.")
    return coll


def existing(cloud: Cloud, call: Call, path: str, coll: Collection) -> Resource:
    """The resource at `path` as a read sees it, or the API's 404."""
    res = cloud.store.get(call.api, path)
    if res is None or not cloud.visible(res, call.now):
        raise cloud.rules[call.api].not_found(path, coll)
    return res


def commit(
    cloud: Cloud,
    call: Call,
    coll: Collection,
    path: str,
    *,
    effect: str,
    payload: dict[str, Any] | None = None,
    refs: list[Key] | None = None,
    error: errors.ApiError | None = None,
) -> dict[str, Any]:
    """Make a change: through an operation if the method returns one, else at once. `error`:
    the operation's end, a refusal Google makes only then (errors.FailsInOperation)."""
    rules = cloud.rules[call.api]
    if catalog.returns_operation(call.method):
        op = cloud.start_operation(
            call, target=path, collection=coll.name, effect=effect, payload=payload, refs=refs or ()
        )
        if error is not None:
            op.error = failure(error)
        return rules.render_operation(cloud, op, call.int_enums)
    if error is not None:
        raise error
    if effect == "delete":
        gone = cloud.remove(call.api, path)
        if gone is not None:
            cloud.landed(gone, removed=True)
        return {}
    assert payload is not None
    old = cloud.store.get(call.api, path)
    res = Resource(
        call.api, path, coll.name, payload, old.created if old else call.now, tuple(refs or ())
    )
    cloud.put(res)
    cloud.landed(res, removed=False)
    return rules.render(cloud, res)


def replay(cloud: Cloud, call: Call) -> dict[str, Any] | None:
    """Compute's requestId: a retried mutation answers the operation the first one started."""
    op = cloud.replayed(call)
    return None if op is None else cloud.rules[op.api].render_operation(cloud, op, call.int_enums)


def refuse_if_busy(cloud: Cloud, call: Call, path: str) -> None:
    pending = cloud.ops.pending(call.api, path)
    if pending is not None:
        raise cloud.rules[call.api].busy(path, pending)


# --- create, read, update, delete -----------------------------------------------------------


def create(cloud: Cloud, call: Call) -> dict[str, Any]:
    rules = cloud.rules[call.api]
    coll = collection(call)
    body = schemas.strip_output_only(call.api, call.method.request, call.body or {})
    again = replay(cloud, call)
    if again is not None:
        return again
    rid = rules.resource_id(call, coll, body)
    path = f"{call.path}/{rid}"
    return create_at(cloud, call, coll, path, body)


def create_at(
    cloud: Cloud, call: Call, coll: Collection, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    rules = cloud.rules[call.api]
    pending = cloud.ops.pending(call.api, path)
    if cloud.store.get(call.api, path) is not None or (pending and pending.effect == "put"):
        raise rules.already_exists(path, coll)
    if pending is not None:
        raise rules.busy(path, pending)
    refs = cloud.resolve_references(call, body, path)
    resource = rules.new_resource(cloud, call, coll, path, body)
    later = _hooked(rules.create_hooks.get(coll.name, ()), cloud, call, resource)
    if later is not None:
        return commit(cloud, call, coll, path, effect="put", payload=resource, refs=refs,
                      error=later)
    # Again: hooks may add references (a default network, a chosen subnetwork).
    refs = _union(refs, cloud.resolve_references(call, resource, path))
    return commit(cloud, call, coll, path, effect="put", payload=resource, refs=refs)


def _hooked(hooks: Any, *args: Any) -> errors.ApiError | None:
    """Run a collection's hooks (they refuse by raising); the refusal one leaves for the
    operation's end (errors.FailsInOperation), if any."""
    try:
        for hook in hooks:
            hook(*args)
    except errors.FailsInOperation as later:
        return later.error
    return None


def _union(first: list[Key], second: list[Key]) -> list[Key]:
    return list(dict.fromkeys([*first, *second]))


def get(cloud: Cloud, call: Call) -> dict[str, Any]:
    coll = collection(call)
    res = existing(cloud, call, cloud.rules[call.api].canonical(cloud, call.path), coll)
    return cloud.rules[call.api].render(cloud, res)


def delete(cloud: Cloud, call: Call) -> dict[str, Any]:
    rules = cloud.rules[call.api]
    coll = collection(call)
    again = replay(cloud, call)
    if again is not None:
        return again
    path = rules.canonical(cloud, call.path)
    res = cloud.store.get(call.api, path)
    if res is None:
        raise rules.not_found(path, coll)
    refuse_if_busy(cloud, call, path)
    users = cloud.store.referrers(call.api, path)
    if users:
        raise rules.in_use(res, users[0])
    for hook in rules.delete_hooks.get(coll.name, ()):
        hook(cloud, call, res)
    return commit(cloud, call, coll, path, effect="delete")


def update(cloud: Cloud, call: Call) -> dict[str, Any]:
    """patch and update: the API's rules say how the body combines with the resource."""
    rules = cloud.rules[call.api]
    coll = collection(call)
    again = replay(cloud, call)
    if again is not None:
        return again
    body = schemas.strip_output_only(call.api, call.method.request, call.body or {})
    path = rules.canonical(cloud, call.path)
    res = cloud.store.get(call.api, path)
    if res is None:
        if call.arg("allowMissing") == "true":
            return create_at(cloud, call, coll, path, body)
        raise rules.not_found(path, coll)
    refuse_if_busy(cloud, call, path)
    new = rules.apply_update(call, coll, res.body, body)
    refs = cloud.resolve_references(call, new, path)
    new = rules.updated_resource(cloud, call, coll, res.body, new)
    later = _hooked(rules.update_hooks.get(coll.name, ()), cloud, call, res, new)
    if later is not None:
        return commit(cloud, call, coll, path, effect="put", payload=new, refs=refs,
                      error=later)
    refs = _union(refs, cloud.resolve_references(call, new, path))
    return commit(cloud, call, coll, path, effect="put", payload=new, refs=refs)


def list_resources(cloud: Cloud, call: Call) -> dict[str, Any]:
    rules = cloud.rules[call.api]
    coll = collection(call)
    keep = filters.parse(call.arg("filter"))
    if "-" in call.path.split("/"):  # AIP-159: "-" reads every parent (all locations)
        pattern = call.path.split("/")
        candidates = [
            r
            for r in cloud.store.in_collection(call.api, coll.name)
            if _fits(parent_of(r.path).split("/"), pattern)
        ]
    else:
        candidates = cloud.store.children(call.api, call.path)
    bodies = [
        rules.render(cloud, r)
        for r in candidates
        if r.collection == coll.name and cloud.visible(r, call.now)
    ]
    page, token = paginate(call, [b for b in bodies if keep(b)])
    return rules.list_response(call, coll, page, token)


def _fits(segments: list[str], pattern: list[str]) -> bool:
    return len(segments) == len(pattern) and all(
        p in ("-", s) for s, p in zip(segments, pattern, strict=True)
    )


def paginate(call: Call, items: list[Any]) -> tuple[list[Any], str | None]:
    size_arg = call.arg("maxResults") or call.arg("pageSize")
    size = int(size_arg) if size_arg and int(size_arg) > 0 else DEFAULT_PAGE
    token = call.arg("pageToken")
    try:
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError as exc:
        raise errors.invalid(f"Invalid page token '{token}'.") from exc
    end = start + size
    following = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], following


# --- IAM policies ---------------------------------------------------------------------------


def iam_target(cloud: Cloud, call: Call) -> Key:
    path = cloud.rules[call.api].canonical(cloud, call.path)
    coll = collection(call)
    if not cloud.exists(call.api, path, coll):
        raise cloud.rules[call.api].not_found(path, coll)
    return (call.api, path)


def get_iam_policy(cloud: Cloud, call: Call) -> dict[str, Any]:
    return cloud.policy(iam_target(cloud, call), call.now)


def set_iam_policy(cloud: Cloud, call: Call) -> dict[str, Any]:
    key = iam_target(cloud, call)
    policy = dict((call.body or {}).get("policy") or {})
    given = policy.get("etag")
    if given and given != cloud.current_policy(key).get("etag"):
        raise cloud.rules[call.api].stale_policy(key[1])
    policy["etag"] = formats.fingerprint("policy", key, call.seq, call.now)
    policy.setdefault("version", 1)
    policy["bindings"] = [b for b in policy.get("bindings", []) if b.get("members")]
    if not policy["bindings"]:
        del policy["bindings"]
    cloud.set_policy(key, policy, call.now)
    return policy


def iam_permissions(cloud: Cloud, call: Call) -> dict[str, Any]:
    _, path = iam_target(cloud, call)
    asked = list((call.body or {}).get("permissions", []))
    held = access.test_permissions(cloud, path, asked)
    return {"permissions": held} if held else {}


# --- operations -----------------------------------------------------------------------------


def operation_get(cloud: Cloud, call: Call) -> dict[str, Any]:
    op = cloud.ops.get(call.api, call.path)
    if op is None:
        raise cloud.rules[call.api].not_found(call.path)
    return cloud.rules[call.api].render_operation(cloud, op, call.int_enums)


async def operation_wait(cloud: Cloud, call: Call) -> dict[str, Any]:
    """A long poll: answers when the operation is done, or after a bounded wait, and never
    blocks the loop (other requests are served meanwhile)."""
    op = cloud.ops.get(call.api, call.path)
    if op is None:
        raise cloud.rules[call.api].not_found(call.path)
    deadline = call.now + cloud.scaled(cloud.config.long_poll)
    timeout = (call.body or {}).get("timeout")
    if timeout:
        deadline = min(deadline, call.now + cloud.scaled(float(str(timeout).rstrip("s"))))
    while not op.done and cloud.now() < deadline:
        await cloud.clock.park(min(op.end, deadline), call.clock_session)
        cloud.advance(cloud.now())
    return cloud.rules[call.api].render_operation(cloud, op, call.int_enums)


def operation_list(cloud: Cloud, call: Call) -> dict[str, Any]:
    rules = cloud.rules[call.api]
    ops = [
        rules.render_operation(cloud, op, call.int_enums)
        for op in cloud.ops.under(call.api, call.path)
    ]
    page, token = paginate(call, ops)
    return rules.list_response(call, collection(call), page, token)


def operation_delete(cloud: Cloud, call: Call) -> dict[str, Any]:
    if cloud.ops.remove(call.api, call.path) is None:
        raise cloud.rules[call.api].not_found(call.path)
    cloud.changed = True
    return {}


Handler = Callable[[Cloud, Call], dict[str, Any] | Awaitable[dict[str, Any]]]

GENERIC: dict[str, Handler] = {
    "create": create,
    "get": get,
    "list": list_resources,
    "delete": delete,
    "patch": update,
    "update": update,
    "getIamPolicy": get_iam_policy,
    "setIamPolicy": set_iam_policy,
    "testIamPermissions": iam_permissions,
    "operation.get": operation_get,
    "operation.wait": operation_wait,
    "operation.list": operation_list,
    "operation.delete": operation_delete,
}
