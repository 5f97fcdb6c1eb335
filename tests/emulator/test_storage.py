"""Cloud Storage through google-cloud-storage: buckets, media up and down, generations and the
preconditions a remote ledger relies on."""

from __future__ import annotations

import base64
import hashlib

import google_crc32c
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from googleapiclient.discovery import build_from_document
from googleapiclient.http import MediaInMemoryUpload

from google_facts import discovery
from provision_emulator import Emulator

from .conftest import PROJECT


@pytest.fixture
def client(emulator: Emulator) -> storage.Client:
    return storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"{emulator.url}/storage"},
    )


@pytest.fixture
def bucket(client: storage.Client) -> storage.Bucket:
    return client.create_bucket("ledgers")


def test_bucket_create_get_and_duplicate(client: storage.Client) -> None:
    created = client.create_bucket("ledgers", location="europe-west1")
    got = client.get_bucket("ledgers")
    assert got.name == created.name == "ledgers"
    assert got.location == "EUROPE-WEST1"
    assert got.metageneration == 1 and got.time_created is not None
    assert [b.name for b in client.list_buckets()] == ["ledgers"]
    with pytest.raises(exceptions.Conflict, match="already own it"):
        client.create_bucket("ledgers")
    with pytest.raises(exceptions.NotFound, match="bucket does not exist"):
        client.get_bucket("missing")
    with pytest.raises(exceptions.BadRequest, match="Invalid bucket name"):
        client.create_bucket("Has-Upper-Case")


def test_upload_and_download_round_trip(bucket: storage.Bucket) -> None:
    blob = bucket.blob("runs/2024/ledger.json")  # slashes travel as %2F in the path
    blob.upload_from_string(b'{"serial": 1}', content_type="application/json")
    assert blob.generation and blob.metageneration == 1
    # The client checks the crc32c it sent in the metadata and the one in x-goog-hash.
    assert bucket.blob("runs/2024/ledger.json").download_as_bytes() == b'{"serial": 1}'

    fetched = bucket.get_blob("runs/2024/ledger.json")
    assert fetched.size == 13
    assert fetched.content_type == "application/json"
    # Base64 of the digests, as Google reports them (computed here by other code).
    assert fetched.md5_hash == base64.b64encode(hashlib.md5(b'{"serial": 1}').digest()).decode()
    crc = google_crc32c.Checksum(b'{"serial": 1}').digest()
    assert fetched.crc32c == base64.b64encode(crc).decode()
    assert fetched.generation == blob.generation
    assert fetched.etag


def test_binary_media_upload_keeps_every_byte(bucket: storage.Bucket) -> None:
    data = bytes(range(256)) * 4 + b"\r\n--not-a-boundary\r\n"
    blob = bucket.blob("blob.bin")
    blob.upload_from_string(data, content_type="image/png")
    assert bucket.blob("blob.bin").download_as_bytes() == data
    assert bucket.get_blob("blob.bin").content_type == "image/png"


def test_generation_grows_with_each_write(bucket: storage.Bucket) -> None:
    blob = bucket.blob("ledger")
    blob.upload_from_string(b"one")
    first = blob.generation
    blob.upload_from_string(b"two", if_generation_match=first)
    assert blob.generation > first
    assert isinstance(bucket.get_blob("ledger")._properties["generation"], str)


def test_if_generation_match_zero_means_must_not_exist(bucket: storage.Bucket) -> None:
    bucket.blob("ledger").upload_from_string(b"first", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed, match="conditionNotMet"):
        bucket.blob("ledger").upload_from_string(b"second", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed) as caught:
        bucket.blob("ledger").reload(if_generation_match=0)
    assert caught.value.errors[0]["reason"] == "conditionNotMet"
    assert bucket.blob("ledger").download_as_bytes() == b"first"


def test_stale_generation_is_refused_on_write_read_and_delete(bucket: storage.Bucket) -> None:
    blob = bucket.blob("ledger")
    blob.upload_from_string(b"v1")
    stale = blob.generation
    blob.upload_from_string(b"v2", if_generation_match=stale)
    current = blob.generation
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ledger").upload_from_string(b"v3", if_generation_match=stale)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ledger").reload(if_generation_match=stale)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ledger").download_as_bytes(if_generation_match=stale)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ledger").delete(if_generation_match=stale)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ledger").upload_from_string(b"v3", if_generation_not_match=current)
    with pytest.raises(exceptions.NotModified):  # a read whose NotMatch fails is 304
        bucket.blob("ledger").reload(if_generation_not_match=current)
    bucket.blob("ledger").delete(if_generation_match=current)
    assert bucket.get_blob("ledger") is None


def test_metageneration_precondition_and_patch(bucket: storage.Bucket) -> None:
    blob = bucket.blob("ledger")
    blob.upload_from_string(b"x")
    blob.metadata = {"lineage": "abc"}
    blob.patch(if_metageneration_match=1)
    assert blob.metageneration == 2
    assert bucket.get_blob("ledger").metadata == {"lineage": "abc"}
    with pytest.raises(exceptions.PreconditionFailed):
        blob.patch(if_metageneration_match=1)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ledger").reload(if_metageneration_match=1)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ledger").upload_from_string(b"y", if_metageneration_match=1)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ledger").delete(if_metageneration_match=1)


def test_list_with_prefix_and_delimiter(client: storage.Client, bucket: storage.Bucket) -> None:
    for name in ("a/1", "a/2", "a/sub/3", "b/1", "top"):
        bucket.blob(name).upload_from_string(name.encode())
    assert [b.name for b in client.list_blobs("ledgers", prefix="a/")] == ["a/1", "a/2", "a/sub/3"]
    listed = client.list_blobs("ledgers", prefix="a/", delimiter="/")
    assert [b.name for b in listed] == ["a/1", "a/2"]
    assert listed.prefixes == {"a/sub/"}
    paged = client.list_blobs("ledgers", max_results=10, page_size=2)
    assert [b.name for b in paged] == ["a/1", "a/2", "a/sub/3", "b/1", "top"]


def test_missing_object_is_404(bucket: storage.Bucket) -> None:
    assert bucket.get_blob("nothing") is None
    with pytest.raises(exceptions.NotFound, match="No such object: ledgers/nothing"):
        bucket.blob("nothing").download_as_bytes()
    with pytest.raises(exceptions.NotFound):
        bucket.blob("nothing").delete()


def test_a_bucket_with_objects_cannot_be_deleted(bucket: storage.Bucket) -> None:
    bucket.blob("ledger").upload_from_string(b"x")
    with pytest.raises(exceptions.Conflict, match="not empty"):
        bucket.delete()
    bucket.blob("ledger").delete()
    bucket.delete()
    with pytest.raises(exceptions.NotFound):
        bucket.reload()


def test_a_wrong_checksum_is_refused(bucket: storage.Bucket) -> None:
    blob = bucket.blob("ledger")
    blob.crc32c = "AAAAAA=="  # sent in the metadata; the bytes say otherwise
    with pytest.raises(exceptions.BadRequest, match="CRC32C"):
        blob.upload_from_string(b"data", checksum=None)
    assert bucket.get_blob("ledger") is None


def test_simple_media_upload_and_alt_media_on_the_json_path(
    emulator: Emulator, bucket: storage.Bucket
) -> None:
    # google-api-python-client sends uploads to the document's rootUrl, not to api_endpoint.
    document = dict(discovery.document("storage"), rootUrl=f"{emulator.url}/storage/")
    api = build_from_document(document, credentials=AnonymousCredentials())
    media = MediaInMemoryUpload(b"plain bytes", mimetype="text/csv", resumable=False)
    created = api.objects().insert(bucket="ledgers", name="a/b.csv", media_body=media).execute()
    assert created["contentType"] == "text/csv" and created["size"] == "11"
    assert api.objects().get_media(bucket="ledgers", object="a/b.csv").execute() == b"plain bytes"
