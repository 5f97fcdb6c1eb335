"""What a resource kind declares. A kind is data plus, where Google needs it, a few hooks.

The engine reads a kind through this interface only; the API calls themselves live in an
`Adapter` (one per API family: compute through google-cloud-compute, the rest through the
discovery clients), so declaring a kind never repeats how its API is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google_facts import permissions

if TYPE_CHECKING:
    from orchestrator.kinds.adapter import Adapter

# The adapter verbs each planned action calls.
VERBS_OF = {"create": ("create",), "update": ("update",), "replace": ("delete", "create"),
            "delete": ("delete",)}

# RFC 1035 names, as compute and most Google resources demand.
RFC1035 = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"

MINUTE = 60.0


@dataclass(frozen=True)
class NotReady:
    """Why a resource whose operation is done is not usable yet. `final`: it never will be
    without a change (e.g. a PSC connection REJECTED), so waiting longer is pointless.
    `underway`: Google is getting it ready (a proxy's deployment PROGRESSING), so a run that
    stopped after asking for it waits for it rather than asking again."""

    message: str
    final: bool = False
    underway: bool = False


@dataclass(frozen=True)
class Kind:
    """One resource type the plan can declare.

    name: the plan's `kind:` value, "compute.network".
    api: the discovery document that describes it ("compute").
    schema: the discovery schema of `properties` and of the resource read back ("Network").
    schema_api: the document holding `schema`, when not the API's own ("provision" for the
        properties of resources this tool builds itself).
    path: the resource path template, filled from the step's scope fields and `name`
        ("projects/{project}/global/networks/{name}"), and for resources Google names by
        their contents, from properties too (a DNS record's `{type}`, an IAM member's
        `{role}` and `{member}`), so that two such steps never share a path.
    scope: the step fields `path` needs besides `name`, taken from `defaults` when omitted.
    name_pattern: the names Google accepts; checked at validation when the name is literal.
    mutable: fields changed in place; a change to any other field set by the plan replaces the
        resource (delete + create). None means the kind cannot be updated at all.
    fixed: dotted fields inside mutable ones that cannot change ("bgp.asn" of a router whose
        other "bgp" fields can).
    timeout: default per-step deadline in seconds (modelled on the Terraform provider's).
    serialize: a template naming the lock that mutations of this kind hold, for Google's
        "one operation at a time" parents ("organizations/{organization}", "routers/{router}").
    outputs: output names a reference may use beyond the schema's own fields.
    secret_fields: properties whose values are secrets (never stored, fingerprinted with a key).
    name_field: where the name goes in the create body ("name"; "" when it travels elsewhere).
    ready: for resources that become usable some time after their operation is done (an
        endpoint attachment's connection, a proxy deployment): given the resource as read,
        None when ready, else why not. The engine re-reads until ready or the deadline.
    caveat: for a resource Google reports usable within a limit (an endpoint attachment
        ACCEPTED_LIMITED_CAPACITY): given the resource as read, what limits it, or None. The
        step finishes, and the run says the caveat as a warning.
    delete_blockers: fragments of Google's messages for a delete refused only for a while
        (Service Networking's "still using this connection"), retried until the deadline.
    gone_when: fragments of the messages in which an API says a delete found nothing, besides
        404 (Service Networking's 400 "There is no peering ... for the network"): the delete
        is done, as a resumed one whose first call went through must be.
    configures: the step sets options on a resource that exists without it (the peering
        Service Networking makes): found live and unrecorded, it is taken over and updated,
        never refused as someone else's; its delete puts Google's defaults back.
    releases: fields whose reference does not hold what it names: Google deletes the named
        resource under it (a router interface's `linkedVpnTunnel`: the interface stays, its
        BGP session goes down until a tunnel of that name returns). A replacement of what such
        a field names does not replace this step.
    also: permissions Google documents for a verb beyond those of the methods its adapter
        calls (`Adapter.calls`), as (verb, permission, property): needed when the property is
        set, or always when it is "" (a forwarding rule's create uses its network).
    runs_as: the property naming the service account the resource runs as ("" when none):
        deploying it needs iam.serviceAccounts.actAs on that account.
    default_identity: with `runs_as` unset, the resource runs as its project's Compute Engine
        default service account (Cloud Run's service identity), which needs actAs too.
    left_on_destroy: the resource belongs to its project, not to the step (an enabled API,
        shared by everything in the project): found live and unrecorded, it is adopted without
        import; destroy forgets it without deleting it, and says so in these words.
    settle: for resources Google makes in an intermediate state the plan does not want (a
        certificate authority STAGED until enabled): given the resource as read, the call
        that moves it on (its operation waited for), or None when there is nothing to do.
        Made whenever the engine waits for the resource to be ready, so a run stopped between
        the create and this call finishes it.
    prepare_delete: a call Google requires before the delete (a certificate authority is
        disabled first), or None when there is nothing to do; its operation is waited for.
    settable: fields the schema marks output only that the kind sets with a call of their
        own (a managed instance group's namedPorts, through its instance group's
        setNamedPorts, in `settle`): a plan may set them.
    names_also: outputs that name what Google deletes with the resource (a managed instance
        group's instanceGroup): a step whose properties take one uses the resource, as one
        naming its path does (a replacement takes it along).
    """

    name: str
    api: str
    schema: str
    path: str
    adapter: Adapter
    scope: tuple[str, ...] = ("project",)
    name_pattern: str = RFC1035
    mutable: frozenset[str] | None = frozenset()
    fixed: frozenset[str] = frozenset()
    timeout: float = 20 * MINUTE
    serialize: str | None = None
    outputs: tuple[str, ...] = ("path",)
    secret_fields: frozenset[str] = frozenset()
    name_field: str = "name"
    ready: Callable[[dict[str, Any]], NotReady | None] | None = None
    caveat: Callable[[dict[str, Any]], str | None] | None = None
    schema_api: str = ""
    delete_blockers: tuple[str, ...] = ()
    gone_when: tuple[str, ...] = ()
    configures: bool = False
    left_on_destroy: str = ""
    releases: frozenset[str] = frozenset()
    also: tuple[tuple[str, str, str], ...] = ()
    runs_as: str = ""
    default_identity: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    settle: Callable[[Any, Any, dict[str, Any]], Any] | None = None
    prepare_delete: Callable[[Any, Any], Any] | None = None
    settable: frozenset[str] = frozenset()
    names_also: tuple[str, ...] = ()

    def permissions(self, action: str) -> tuple[str, ...]:
        """The permissions a step's `action` needs on its own project, in the order first
        needed: create, update and replace read it first (a plan reads every step), delete
        does not (nothing is read for it); anything else only reads."""
        verbs = (*(() if action == "delete" else ("read",)), *VERBS_OF.get(action, ()))
        calls = self.adapter.calls
        out = [p for verb in verbs for method in calls.get(verb, ())
               for p in permissions.required(method)]
        out += [p for verb, p, prop in self.also if verb in verbs and not prop]
        return tuple(dict.fromkeys(out))

    def uses(self, action: str, spec: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """The permissions `action` needs on what the step's properties name (a forwarding
        rule's network, which a Shared VPC keeps in its host project): (permission, value)."""
        verbs = VERBS_OF.get(action, ())
        return [(p, spec[prop]) for verb, p, prop in self.also
                if verb in verbs and prop and prop in spec]

    def changes_in_place(self, field: str) -> bool:
        """Whether a change of `field` (dotted, "bgp.asn") is an update rather than a replace."""
        top = field.split(".", 1)[0].split("[", 1)[0]
        if self.mutable is None or top not in self.mutable:
            return False
        return not any(field == f or field.startswith(f + ".") for f in self.fixed)

    @property
    def adopts_live(self) -> bool:
        """Whether a live, unrecorded resource of this kind is taken over as the step's."""
        return self.configures or bool(self.left_on_destroy)

    @property
    def schema_document(self) -> str:
        return self.schema_api or self.api

    def resource_path(
        self, name: str, scope: dict[str, str], properties: Mapping[str, Any] | None = None
    ) -> str:
        return self.path.format_map({**(properties or {}), **scope, "name": name})
