"""Cloud Storage JSON API v1: buckets, and objects with media upload and download, generations
and the `if(Meta)generation(Not)Match` preconditions (what a remote ledger relies on).

Storage is synchronous and keyed by bucket name alone, so every method has its own handler here.
An object is stored under `b/{bucket}/o/{name with "/" escaped}`, its bytes (base64) beside its
metadata under MEDIA, which no answer shows.
"""

from __future__ import annotations

import base64
import email.message
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from provision_emulator import errors, generic, schemas
from provision_emulator.apis import checksums
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call, Raw
from provision_emulator.errors import ApiError
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

BUCKETS = "buckets"
OBJECTS = "objects"
MEDIA = "_media"
BASE_URL = "https://www.googleapis.com/storage/v1/"
DOWNLOAD_URL = "https://storage.googleapis.com/download/storage/v1/"
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
# Object fields a client may set; the rest are the server's.
WRITABLE = (
    "contentType",
    "contentEncoding",
    "contentDisposition",
    "contentLanguage",
    "cacheControl",
    "metadata",
    "customTime",
    "storageClass",
    "temporaryHold",
    "eventBasedHold",
)
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class StorageRules(ApiRules):
    numeric_enums = False
    generic_collections = frozenset()
    # google-cloud-storage downloads from `download/storage/v1/...?alt=media`.
    path_aliases = {"download/storage/v1/": "storage/v1/"}


RULES = StorageRules("storage")


# --- Google's forms and errors --------------------------------------------------------------


def _stamp(t: float) -> str:
    return (
        datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _etag(generation: int, metageneration: int) -> str:
    """Google's etag: the (generation, metageneration) message, base64 ("CAE=" for a bucket at
    metageneration 1)."""
    fields = (b"\x08" + _varint(generation) if generation else b"") + (
        b"\x10" + _varint(metageneration)
    )
    return base64.b64encode(fields).decode()


def _bucket_missing() -> ApiError:
    return errors.not_found("The specified bucket does not exist.")


def _object_missing(bucket: str, name: str) -> ApiError:
    return errors.not_found(f"No such object: {bucket}/{name}")


def _precondition_failed() -> ApiError:
    return ApiError(
        412,
        "At least one of the pre-conditions you specified did not hold.",
        reason="conditionNotMet",
        status="FAILED_PRECONDITION",
    )


def _conflict(message: str) -> ApiError:
    return ApiError(409, message, reason="conflict", status="ABORTED")


def _int_arg(call: Call, name: str) -> int | None:
    value = call.arg(name)
    return int(value) if value is not None else None


def _unmet(call: Call, current: dict[str, Any] | None) -> str | None:
    """The first precondition parameter `current` (None: no live object) fails, if any."""
    generation = int(current.get("generation", 0)) if current else 0
    metageneration = int(current["metageneration"]) if current else None
    tests = (
        ("ifGenerationMatch", lambda v: generation == v),
        ("ifGenerationNotMatch", lambda v: generation != v),
        ("ifMetagenerationMatch", lambda v: metageneration == v),
        ("ifMetagenerationNotMatch", lambda v: metageneration != v),
    )
    for name, holds in tests:
        value = _int_arg(call, name)
        if value is not None and not holds(value):
            return name
    return None


def _refuse_unmet(call: Call, current: dict[str, Any] | None) -> None:
    if _unmet(call, current) is not None:
        raise _precondition_failed()


def _not_modified(call: Call, current: dict[str, Any]) -> Raw | None:
    """Reads: a failed `...NotMatch` is 304 Not Modified, a failed `...Match` 412."""
    unmet = _unmet(call, current)
    if unmet is None:
        return None
    if unmet.endswith("NotMatch"):
        return Raw(b"", status=304)
    raise _precondition_failed()


# --- buckets --------------------------------------------------------------------------------


def _bucket_path(name: str) -> str:
    return f"b/{name}"


def _bucket(cloud: Cloud, name: str) -> Resource:
    res = cloud.store.get("storage", _bucket_path(name))
    if res is None:
        raise _bucket_missing()
    return res


@RULES.handler("storage.buckets.insert")
def insert_bucket(cloud: Cloud, call: Call) -> dict[str, Any]:
    given = call.body or {}
    name = str(given.get("name") or "")
    if not BUCKET_NAME.match(name) or ".." in name:
        raise errors.invalid(f"Invalid bucket name: '{name}'")
    project = cloud.project_id(call.arg("project") or "") or ""
    existing = cloud.store.get("storage", _bucket_path(name))
    if existing is not None:
        if existing.body["projectNumber"] == cloud.project_number(project):
            raise _conflict(
                "Your previous request to create the named bucket succeeded and you already own it."
            )
        raise _conflict(
            "The requested bucket name is not available. The bucket namespace is shared by all "
            "users of the system. Please select a different name and try again."
        )
    location = str(given.get("location") or "US").upper()
    stamp = _stamp(call.now)
    generation = int(call.now * 1_000_000)
    body = {
        **{k: v for k, v in given.items() if k not in ("id", "selfLink", "projectNumber")},
        "kind": "storage#bucket",
        "selfLink": BASE_URL + _bucket_path(name),
        "id": name,
        "name": name,
        "projectNumber": cloud.project_number(project),
        "generation": str(generation),
        "metageneration": "1",
        "location": location,
        "locationType": "multi-region" if location in ("US", "EU", "ASIA") else "region",
        "storageClass": given.get("storageClass") or "STANDARD",
        "rpo": "DEFAULT",
        "etag": _etag(0, 1),
        "timeCreated": stamp,
        "updated": stamp,
    }
    cloud.put(Resource("storage", _bucket_path(name), BUCKETS, body, call.now))
    return body


@RULES.handler("storage.buckets.get")
def get_bucket(cloud: Cloud, call: Call) -> dict[str, Any] | Raw:
    body = _bucket(cloud, call.params["bucket"]).body
    return _not_modified(call, body) or body


@RULES.handler("storage.buckets.list")
def list_buckets(cloud: Cloud, call: Call) -> dict[str, Any]:
    number = cloud.project_number(cloud.project_id(call.arg("project") or "") or "")
    prefix = call.arg("prefix") or ""
    bodies = sorted(
        (
            r.body
            for r in cloud.store.in_collection("storage", BUCKETS)
            if r.body["projectNumber"] == number and r.body["name"].startswith(prefix)
        ),
        key=lambda b: b["name"],
    )
    page, token = generic.paginate(call, bodies)
    return {"kind": "storage#buckets", "items": page} | ({"nextPageToken": token} if token else {})


@RULES.handler("storage.buckets.delete")
def delete_bucket(cloud: Cloud, call: Call) -> dict[str, Any]:
    res = _bucket(cloud, call.params["bucket"])
    _refuse_unmet(call, res.body)
    if cloud.store.children("storage", f"{res.path}/o"):
        raise _conflict("The bucket you tried to delete is not empty.")
    cloud.remove("storage", res.path)
    return {}


# --- objects --------------------------------------------------------------------------------


def _object_path(bucket: str, name: str) -> str:
    return f"b/{bucket}/o/{quote(name, safe='')}"


def _live(cloud: Cloud, call: Call) -> dict[str, Any]:
    """The object a get/delete/patch names (and `generation` pins), or 404."""
    bucket, name = call.params["bucket"], call.params["object"]
    _bucket(cloud, bucket)
    res = cloud.store.get("storage", _object_path(bucket, name))
    pinned = call.arg("generation")
    if res is None or (pinned is not None and pinned != res.body["generation"]):
        raise _object_missing(bucket, name)
    return res.body


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != MEDIA}


def _related_parts(content_type: str, raw: bytes) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related request body (RFC 2046)."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/related" or not isinstance(boundary, str):
        raise errors.invalid("Multipart uploads must be sent as multipart/related with a boundary.")
    parts = []
    for chunk in (b"\r\n" + raw).split(b"\r\n--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):  # the close delimiter
            break
        head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise errors.invalid("Malformed multipart body.")
        part = email.message.Message()
        for line in head.decode("latin-1").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                part[key.strip()] = value.strip()
        parts.append((part.get("Content-Type", ""), body))
    return parts


def _upload(call: Call) -> tuple[dict[str, Any], bytes, str | None]:
    """The metadata, the bytes and the media's own Content-Type of an objects.insert."""
    if not call.upload:  # the JSON path carries metadata only
        return dict(call.body or {}), b"", None
    upload_type = call.arg("uploadType")
    if upload_type == "media":
        return {}, call.raw, call.content_type or None
    if upload_type == "multipart":
        parts = _related_parts(call.content_type, call.raw)
        if len(parts) != 2:
            raise errors.invalid("A multipart upload has exactly two parts: metadata and media.")
        (_, meta_raw), (media_type, data) = parts
        try:
            metadata = json.loads(meta_raw or b"{}")
        except ValueError as exc:
            raise errors.invalid(f"Invalid JSON payload received. {exc}.") from exc
        metadata = schemas.camel_keys("storage", "Object", metadata)
        schemas.check_body(call.method, metadata, int_enums=False)
        return metadata, data, media_type or None
    if upload_type == "resumable":
        raise errors.unimplemented(
            "The emulator does not implement resumable uploads: use uploadType=multipart."
        )
    raise errors.invalid(
        "Upload requests must include an uploadType URL parameter and a URL path beginning "
        "with /upload/"
    )


def _check_sums(metadata: dict[str, Any], crc: str, md5: str) -> None:
    given_crc, given_md5 = metadata.get("crc32c"), metadata.get("md5Hash")
    if given_crc and given_crc != crc:
        raise errors.invalid(
            f'Provided CRC32C "{given_crc}" doesn\'t match calculated CRC32C "{crc}".'
        )
    if given_md5 and given_md5 != md5:
        raise errors.invalid(
            f'Provided MD5 hash "{given_md5}" doesn\'t match calculated MD5 hash "{md5}".'
        )


@RULES.handler("storage.objects.insert")
def insert_object(cloud: Cloud, call: Call) -> dict[str, Any]:
    bucket = call.params["bucket"]
    _bucket(cloud, bucket)
    metadata, data, media_type = _upload(call)
    name = call.arg("name") or metadata.get("name")
    if not name:
        raise errors.invalid("Required parameter: name")
    path = _object_path(bucket, name)
    current = cloud.store.get("storage", path)
    _refuse_unmet(call, current.body if current else None)
    crc, md5 = checksums.crc32c(data), checksums.md5(data)
    _check_sums(metadata, crc, md5)
    # Generations are microsecond times, and always grow for one name.
    generation = int(call.now * 1_000_000)
    if current is not None:
        generation = max(generation, int(current.body["generation"]) + 1)
    stamp = _stamp(call.now)
    quoted = path.split("/o/", 1)[1]
    body = {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{generation}",
        "selfLink": f"{BASE_URL}b/{bucket}/o/{quoted}",
        "mediaLink": f"{DOWNLOAD_URL}b/{bucket}/o/{quoted}?generation={generation}&alt=media",
        "name": name,
        "bucket": bucket,
        "generation": str(generation),
        "metageneration": "1",
        "contentType": media_type or DEFAULT_CONTENT_TYPE,
        "storageClass": "STANDARD",
        "size": str(len(data)),
        "md5Hash": md5,
        "crc32c": crc,
        "etag": _etag(generation, 1),
        "timeCreated": stamp,
        "updated": stamp,
        "timeStorageClassUpdated": stamp,
        "timeFinalized": stamp,
        **{k: metadata[k] for k in WRITABLE if metadata.get(k) is not None},
        MEDIA: base64.b64encode(data).decode(),
    }
    cloud.put(Resource("storage", path, OBJECTS, body, call.now))
    return _public(body)


def _download(body: dict[str, Any]) -> Raw:
    data = base64.b64decode(body[MEDIA])
    headers = {
        "x-goog-generation": body["generation"],
        "x-goog-metageneration": body["metageneration"],
        "x-goog-hash": f"crc32c={body['crc32c']},md5={body['md5Hash']}",
        "x-goog-stored-content-length": body["size"],
        "x-goog-storage-class": body["storageClass"],
        "ETag": body["etag"],
    }
    for field, header in (
        ("contentEncoding", "x-goog-stored-content-encoding"),
        ("cacheControl", "Cache-Control"),
        ("contentDisposition", "Content-Disposition"),
        ("contentLanguage", "Content-Language"),
    ):
        if body.get(field):
            headers[header] = body[field]
    return Raw(data, content_type=body["contentType"], headers=headers)


@RULES.handler("storage.objects.get")
def get_object(cloud: Cloud, call: Call) -> dict[str, Any] | Raw:
    body = _live(cloud, call)
    unchanged = _not_modified(call, body)
    if unchanged is not None:
        return unchanged
    return _download(body) if call.arg("alt") == "media" else _public(body)


@RULES.handler("storage.objects.list")
def list_objects(cloud: Cloud, call: Call) -> dict[str, Any]:
    bucket = _bucket(cloud, call.params["bucket"])
    prefix, delimiter = call.arg("prefix") or "", call.arg("delimiter")
    start, end = call.arg("startOffset"), call.arg("endOffset")
    items: list[dict[str, Any]] = []
    prefixes: dict[str, None] = {}
    for res in sorted(cloud.store.children("storage", f"{bucket.path}/o"), key=_name):
        name = _name(res)
        if not name.startswith(prefix) or (start and name < start) or (end and name >= end):
            continue
        rest = name[len(prefix) :]
        if delimiter and delimiter in rest:
            prefixes[prefix + rest.split(delimiter, 1)[0] + delimiter] = None
            continue
        items.append(_public(res.body))
    page, token = generic.paginate(call, items)
    out: dict[str, Any] = {"kind": "storage#objects"}
    if page:
        out["items"] = page
    if prefixes:
        out["prefixes"] = list(prefixes)
    if token:
        out["nextPageToken"] = token
    return out


def _name(res: Resource) -> str:
    return str(res.body["name"])


@RULES.handler("storage.objects.patch")
def patch_object(cloud: Cloud, call: Call) -> dict[str, Any]:
    current = _live(cloud, call)
    _refuse_unmet(call, current)
    given = call.body or {}
    new = dict(current)
    for field in WRITABLE:
        if field not in given:
            continue
        if given[field] is None:
            new.pop(field, None)
        elif field == "metadata":  # user metadata merges key by key; null removes a key
            merged = {**(current.get("metadata") or {}), **given[field]}
            new["metadata"] = {k: v for k, v in merged.items() if v is not None}
        else:
            new[field] = given[field]
    metageneration = int(current["metageneration"]) + 1
    new["metageneration"] = str(metageneration)
    new["etag"] = _etag(int(current["generation"]), metageneration)
    new["updated"] = _stamp(call.now)
    path = _object_path(call.params["bucket"], call.params["object"])
    cloud.put(Resource("storage", path, OBJECTS, new, call.now))
    return _public(new)


@RULES.handler("storage.objects.delete")
def delete_object(cloud: Cloud, call: Call) -> dict[str, Any]:
    current = _live(cloud, call)
    _refuse_unmet(call, current)
    cloud.remove("storage", _object_path(call.params["bucket"], call.params["object"]))
    return {}
