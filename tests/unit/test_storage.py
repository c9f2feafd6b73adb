"""BlobStore contract suite, run against every backend (``blob_store`` fixture).

Tests above the "local only" line use nothing but the BlobStore interface, so
a new backend joins by adding a param to ``blob_store``. The S3 backend runs
on moto's S3 server (``s3_server``), and is skipped where boto3 or moto is
not installed.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from image_repo.storage import (
    BlobNotFound,
    BlobStore,
    InvalidKey,
    InvalidRange,
    LocalBlobStore,
    StorageError,
    blob_key,
    rendition_key,
    rendition_prefix,
    validate_key,
)
from image_repo.storage.base import CHUNK_SIZE
from image_repo.storage.local import TEMP_PREFIX
from tests.support.s3_server import (
    CREDENTIALS,
    REGION,
    new_bucket,
    raw_client,
    reset,
    s3_unavailable,
)

BIG = CHUNK_SIZE * 2 + 12345  # more than two chunks, not a multiple of the chunk size


S3_MISSING = s3_unavailable()  # why S3 cannot be tested here, or None
needs_s3 = pytest.mark.skipif(S3_MISSING is not None, reason=str(S3_MISSING))


@pytest.fixture(params=["local", pytest.param("s3", marks=needs_s3)])
def blob_store(request, tmp_path) -> BlobStore:
    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture(scope="module")
def s3_client(s3_endpoint):
    """A plain boto3 client, to look at the bucket behind the store's back."""
    return raw_client(s3_endpoint)


@pytest.fixture(scope="module")
def store_client(s3_endpoint):
    """A client as S3BlobStore makes it, shared: making one costs ~0.1 s."""
    return make_s3_store(s3_endpoint, "unused").client


@pytest.fixture
def s3_bucket(s3_endpoint, s3_client):
    """A fresh, empty bucket; the server forgets it after the test."""
    yield new_bucket(s3_client)
    reset(s3_endpoint)


def make_s3_store(endpoint: str | None, bucket: str, **options):
    from image_repo.storage.s3 import S3BlobStore

    if "client" not in options:
        options.update(endpoint_url=endpoint, region=REGION, **CREDENTIALS)
    options.setdefault("prefix", "blobs")
    return S3BlobStore(bucket, **options)


@pytest.fixture
def s3_store(store_client, s3_bucket):
    # Under a prefix, so that the contract suite checks it is stripped everywhere.
    return make_s3_store(None, s3_bucket, client=store_client)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_for(data: bytes) -> str:
    return blob_key(sha(data))


def payload(n: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating bytes (a repeated pattern would hide offset bugs)."""
    out = bytearray()
    block = seed.to_bytes(8, "big")
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def put_bytes(store: BlobStore, data: bytes, key: str | None = None) -> str:
    key = key or key_for(data)
    assert store.put(key, io.BytesIO(data)) == len(data)
    return key


def read_all(stream) -> bytes:
    with stream:
        return stream.read()


class TrickleStream(io.RawIOBase):
    """Returns at most ``step`` bytes per read, as a socket would."""

    def __init__(self, data: bytes, step: int = 7000) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(self._step if size < 0 else min(size, self._step))


class FailingStream(io.RawIOBase):
    """Yields ``good`` bytes, then fails like a dropped client connection."""

    def __init__(self, good: int, on_read=None) -> None:
        self._left = good
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._on_read:
            self._on_read()
        if self._left <= 0:
            raise ConnectionResetError("client went away")
        n = self._left if size < 0 else min(size, self._left)
        self._left -= n
        return b"x" * n


# -- keys ---------------------------------------------------------------------

SHA = "ab" + "cd" + "0" * 60


def test_key_shapes():
    assert blob_key(SHA) == f"originals/ab/cd/{SHA}"
    assert rendition_prefix(SHA) == f"renditions/ab/cd/{SHA}/"
    assert rendition_key(SHA, "0123456789abcdef") == f"renditions/ab/cd/{SHA}/0123456789abcdef"
    assert validate_key(blob_key(SHA)) == blob_key(SHA)
    assert validate_key(rendition_key(SHA, "deadbeef")).startswith(rendition_prefix(SHA))


@pytest.mark.parametrize("bad", ["", "AB" + SHA[2:], SHA[:-1], SHA + "0", "../" + SHA[3:], None])
def test_key_builders_reject_bad_hashes(bad):
    with pytest.raises(InvalidKey):
        blob_key(bad)
    with pytest.raises(InvalidKey):
        rendition_prefix(bad)


@pytest.mark.parametrize("digest", ["", "abc", "ABCDEF0123", "0123456789abcdeg", "../aaaaaaaa"])
def test_rendition_key_rejects_bad_digests(digest):
    with pytest.raises(InvalidKey):
        rendition_key(SHA, digest)


INVALID_KEYS = [
    "",
    "originals",
    f"originals/ab/cd/{SHA}/",  # trailing slash
    f"/originals/ab/cd/{SHA}",  # absolute
    f"originals/ab/cd/../cd/{SHA}",
    f"originals/ab/cd/{SHA}/../../../../etc/passwd",
    f"../originals/ab/cd/{SHA}",
    f"originals/AB/CD/{SHA.upper()}",  # upper case
    f"Originals/ab/cd/{SHA}",
    f"thumbs/ab/cd/{SHA}",  # unknown prefix
    f"originals/ab/ce/{SHA}",  # fan-out does not match the hash
    f"originals/ab/cd/{SHA}/deadbeef",  # originals have no digest
    f"renditions/ab/cd/{SHA}",  # renditions need one
    f"renditions/ab/cd/{SHA}/DEADBEEF",
    f"originals//ab/cd/{SHA}",
    f"originals/ab/cd/{SHA}\n",
    f"originals\\ab\\cd\\{SHA}",
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_rejected_by_every_method(blob_store, key):
    with pytest.raises(InvalidKey):
        validate_key(key)
    calls = [
        lambda: blob_store.put(key, io.BytesIO(b"data")),
        lambda: blob_store.open(key),
        lambda: blob_store.open_range(key, 0, 1),
        lambda: blob_store.size(key),
        lambda: blob_store.delete(key),
        lambda: blob_store.exists(key),
        lambda: blob_store.modified_at(key),
        lambda: blob_store.local_path(key),
    ]
    for call in calls:
        with pytest.raises(InvalidKey):
            call()
    assert list(blob_store.iter_keys()) == []


def test_invalid_keys_are_value_errors():
    # The HTTP layer may map ValueError to 4xx; a KeyError would read as "not found".
    assert issubclass(InvalidKey, ValueError)
    assert issubclass(InvalidRange, ValueError)
    assert issubclass(BlobNotFound, KeyError)
    assert not issubclass(StorageError, (KeyError, ValueError))


@pytest.mark.parametrize(
    "prefix", ["/", "/originals", "../", "originals/../", "ORIGINALS/", "a//b"]
)
def test_invalid_prefixes_rejected(blob_store, prefix):
    with pytest.raises(InvalidKey):
        list(blob_store.iter_keys(prefix))


# -- put / open ---------------------------------------------------------------


def test_round_trip_larger_than_a_chunk(blob_store):
    data = payload(BIG)
    key = put_bytes(blob_store, data)
    assert read_all(blob_store.open(key)) == data
    assert blob_store.size(key) == BIG
    assert blob_store.exists(key)


def test_put_from_a_stream_of_short_reads(blob_store):
    data = payload(CHUNK_SIZE + 1, seed=1)
    key = key_for(data)
    assert blob_store.put(key, TrickleStream(data)) == len(data)
    assert read_all(blob_store.open(key)) == data


def test_empty_blob(blob_store):
    key = put_bytes(blob_store, b"")
    assert blob_store.size(key) == 0
    assert read_all(blob_store.open(key)) == b""


def test_put_file(blob_store, tmp_path):
    data = payload(5000, seed=2)
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    key = key_for(data)
    assert blob_store.put_file(key, src) == len(data)
    assert read_all(blob_store.open(key)) == data


def test_missing_blob_raises_blob_not_found(blob_store):
    key = key_for(b"never stored")
    assert not blob_store.exists(key)
    for call in (
        lambda: blob_store.open(key),
        lambda: blob_store.open_range(key, 0, 0),
        lambda: blob_store.size(key),
        lambda: blob_store.modified_at(key),
    ):
        with pytest.raises(BlobNotFound):
            call()


def test_re_put_same_key_is_harmless(blob_store):
    data = payload(3000, seed=3)
    key = put_bytes(blob_store, data)
    put_bytes(blob_store, data, key)
    assert read_all(blob_store.open(key)) == data
    assert list(blob_store.iter_keys()) == [key]


def test_re_put_replaces_whole_content(blob_store):
    # The store does not check hashes; a second put must replace, never mix.
    key = rendition_key(SHA, "deadbeef")
    put_bytes(blob_store, payload(BIG, seed=4), key)
    shorter = payload(100, seed=5)
    put_bytes(blob_store, shorter, key)
    assert read_all(blob_store.open(key)) == shorter
    assert blob_store.size(key) == 100


def test_open_stream_survives_re_put(blob_store):
    key = rendition_key(SHA, "deadbeef")
    old = payload(BIG, seed=6)
    put_bytes(blob_store, old, key)
    with blob_store.open(key) as reader:
        first = reader.read(10)
        put_bytes(blob_store, payload(BIG, seed=7), key)
        rest = reader.read()
    # A reader sees one complete version, never a mix of both.
    assert first + rest in (old, payload(BIG, seed=7))


def test_failing_stream_stores_nothing(blob_store):
    key = key_for(b"whatever")
    with pytest.raises(ConnectionResetError):
        blob_store.put(key, FailingStream(CHUNK_SIZE + 10))
    assert not blob_store.exists(key)
    assert list(blob_store.iter_keys()) == []
    with pytest.raises(BlobNotFound):
        blob_store.open(key)


def test_failing_re_put_keeps_the_old_blob(blob_store):
    data = payload(BIG, seed=8)
    key = put_bytes(blob_store, data)
    with pytest.raises(ConnectionResetError):
        blob_store.put(key, FailingStream(CHUNK_SIZE * 2 + 1))
    assert read_all(blob_store.open(key)) == data
    assert list(blob_store.iter_keys()) == [key]


def test_blob_is_invisible_while_being_written(blob_store):
    key = key_for(b"in progress")
    seen = []
    stream = FailingStream(CHUNK_SIZE * 3, on_read=lambda: seen.append(blob_store.exists(key)))
    with pytest.raises(ConnectionResetError):
        blob_store.put(key, stream)
    assert len(seen) >= 3  # observed between chunks, after some were written
    assert not any(seen)
    assert list(blob_store.iter_keys()) == []


def test_partial_blob_never_readable_during_put(blob_store):
    data = payload(CHUNK_SIZE * 3, seed=9)
    key = key_for(data)
    observed = []

    class Watching(io.BytesIO):
        def read(self, size=-1):
            if blob_store.exists(key):  # pragma: no cover - would be the bug
                observed.append(read_all(blob_store.open(key)))
            return super().read(size)

    blob_store.put(key, Watching(data))
    assert observed == []
    assert read_all(blob_store.open(key)) == data


# -- ranges -------------------------------------------------------------------


@pytest.fixture
def ranged(blob_store):
    data = payload(BIG, seed=10)
    return blob_store, put_bytes(blob_store, data), data


@pytest.mark.parametrize(
    "start, end",
    [
        (0, 0),  # first byte
        (BIG - 1, BIG - 1),  # last byte
        (CHUNK_SIZE - 3, CHUNK_SIZE + 3),  # middle, across a chunk boundary
        (12345, 2 * CHUNK_SIZE),  # middle, long
        (0, BIG - 1),  # whole
        (BIG - 10, BIG + 1000),  # end past the blob: cut to the last byte
    ],
)
def test_open_range(ranged, start, end):
    store, key, data = ranged
    with store.open_range(key, start, end) as stream:
        got = stream.read()
        assert stream.read() == b""
    assert got == data[start : end + 1]


def test_open_range_in_small_reads(ranged):
    store, key, data = ranged
    pieces = []
    with store.open_range(key, 100, 100 + 5000) as stream:
        while piece := stream.read(999):
            pieces.append(piece)
    assert b"".join(pieces) == data[100:5101]


@pytest.mark.parametrize("start, end", [(BIG, BIG), (BIG + 5, BIG + 10), (10, 9), (-1, 5)])
def test_unsatisfiable_ranges(ranged, start, end):
    store, key, _ = ranged
    with pytest.raises(InvalidRange):
        store.open_range(key, start, end)


# -- delete, listing, times ---------------------------------------------------


def test_delete_is_idempotent(blob_store):
    key = put_bytes(blob_store, b"to be deleted")
    blob_store.delete(key)
    blob_store.delete(key)
    blob_store.delete(key_for(b"never stored"))
    assert not blob_store.exists(key)
    with pytest.raises(BlobNotFound):
        blob_store.open(key)
    assert list(blob_store.iter_keys()) == []


def test_put_after_delete(blob_store):
    key = put_bytes(blob_store, b"again")
    blob_store.delete(key)
    put_bytes(blob_store, b"again")
    assert read_all(blob_store.open(key)) == b"again"


def test_iter_keys_with_prefixes(blob_store):
    originals = [put_bytes(blob_store, f"image {i}".encode()) for i in range(6)]
    sha0 = originals[0].rsplit("/", 1)[1]
    sha1 = originals[1].rsplit("/", 1)[1]
    renditions0 = [
        put_bytes(blob_store, f"r{d}".encode(), rendition_key(sha0, d))
        for d in ("0123abcd", "ffff0000", "89ab89ab")
    ]
    renditions1 = [put_bytes(blob_store, b"r", rendition_key(sha1, "0123abcd"))]
    everything = originals + renditions0 + renditions1

    assert list(blob_store.iter_keys()) == sorted(everything)
    assert list(blob_store.iter_keys("originals/")) == sorted(originals)
    assert list(blob_store.iter_keys("renditions/")) == sorted(renditions0 + renditions1)
    assert list(blob_store.iter_keys(rendition_prefix(sha0))) == sorted(renditions0)
    # A prefix may end inside a name, as S3 allows.
    assert list(blob_store.iter_keys(f"originals/{sha0[:1]}")) == sorted(
        k for k in originals if k.startswith(f"originals/{sha0[:1]}")
    )
    assert list(blob_store.iter_keys(rendition_prefix(sha0) + "ff")) == [renditions0[1]]
    assert list(blob_store.iter_keys(rendition_prefix("e" * 64))) == []
    assert list(blob_store.iter_keys("nothing/here/")) == []


def test_delete_renditions_by_prefix(blob_store):
    original = put_bytes(blob_store, b"photo")
    sha_ = original.rsplit("/", 1)[1]
    for d in ("aaaaaaaa", "bbbbbbbb"):
        put_bytes(blob_store, d.encode(), rendition_key(sha_, d))
    for key in list(blob_store.iter_keys(rendition_prefix(sha_))):
        blob_store.delete(key)
    assert list(blob_store.iter_keys()) == [original]


def test_modified_at_is_utc(blob_store):
    before = datetime.now(UTC)
    key = put_bytes(blob_store, b"timed")
    after = datetime.now(UTC)
    stamp = blob_store.modified_at(key)
    assert stamp.utcoffset() == timedelta(0)
    # File systems round times; a second either side is the widest we allow.
    assert before - timedelta(seconds=1) <= stamp <= after + timedelta(seconds=1)


def test_local_path_is_the_blob_or_none(blob_store):
    data = payload(1000, seed=11)
    key = put_bytes(blob_store, data)
    path = blob_store.local_path(key)
    assert path is None or Path(path).read_bytes() == data


def test_local_path_of_missing_blob_is_none(blob_store):
    assert blob_store.local_path(key_for(b"absent")) is None


# -- local only ---------------------------------------------------------------


@pytest.fixture
def local_store(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_local_files_sit_at_their_key(local_store):
    data = payload(BIG, seed=12)
    key = put_bytes(local_store, data)
    assert local_store.local_path(key) == local_store.root / key
    assert all_files(local_store.root) == [local_store.root / key]


def test_local_no_temp_files_after_success(local_store):
    for i in range(3):
        put_bytes(local_store, payload(BIG, seed=20 + i))
    assert not [p for p in all_files(local_store.root) if p.name.startswith(TEMP_PREFIX)]


def test_local_failed_put_leaves_no_file(local_store):
    with pytest.raises(ConnectionResetError):
        local_store.put(key_for(b"x"), FailingStream(CHUNK_SIZE * 2))
    assert all_files(local_store.root) == []


def test_local_cleanup_temp_removes_only_stale_temp_files(local_store):
    key = put_bytes(local_store, b"keep me")
    folder = (local_store.root / key).parent
    stale = folder / f"{TEMP_PREFIX}crashed"
    fresh = folder / f"{TEMP_PREFIX}uploading"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(stale, (two_hours_ago, two_hours_ago))

    assert list(local_store.iter_keys()) == [key]  # temp files are never listed
    assert local_store.cleanup_temp(timedelta(hours=1)) == 1
    assert not stale.exists()
    assert fresh.exists()
    assert local_store.exists(key)
    assert local_store.cleanup_temp(timedelta(0)) == 1
    assert not fresh.exists()


def test_local_delete_prunes_empty_folders(local_store):
    key = put_bytes(local_store, b"lonely")
    local_store.delete(key)
    assert list(local_store.root.iterdir()) == []
    put_bytes(local_store, b"lonely")  # folders come back on demand
    assert local_store.exists(key)


def test_local_delete_keeps_folders_in_use(local_store):
    a = put_bytes(local_store, b"a", rendition_key(SHA, "aaaaaaaa"))
    b = put_bytes(local_store, b"b", rendition_key(SHA, "bbbbbbbb"))
    local_store.delete(a)
    assert local_store.exists(b)


def test_local_symlink_out_of_root_is_refused(local_store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / SHA).write_bytes(b"secret")
    (local_store.root / "originals" / "ab").mkdir(parents=True)
    (local_store.root / "originals" / "ab" / "cd").symlink_to(outside)
    with pytest.raises(InvalidKey):
        local_store.open(blob_key(SHA))
    with pytest.raises(InvalidKey):
        local_store.put(blob_key(SHA), io.BytesIO(b"overwrite"))
    assert (outside / SHA).read_bytes() == b"secret"
    assert list(local_store.iter_keys()) == []  # symlinks are not followed


def test_local_symlinked_file_out_of_root_is_refused(local_store, tmp_path):
    # The folder is real (and remembered as such); the file itself leads out.
    inside = put_bytes(local_store, b"real", blob_key("abcd" + "1" * 60))
    folder = local_store.local_path(inside).parent
    (tmp_path / "secret").write_bytes(b"secret")
    key = blob_key(SHA)  # same folder
    (folder / SHA).symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidKey):
        local_store.open(key)
    with pytest.raises(InvalidKey):
        local_store.local_path(key)
    assert local_store.open(inside).read() == b"real"


def test_local_ignores_stray_files(local_store):
    key = put_bytes(local_store, b"real")
    (local_store.root / "README").write_text("not a blob")
    (local_store.root / "originals" / "notes.txt").write_text("not a blob")
    assert list(local_store.iter_keys()) == [key]


def test_local_file_system_failure_is_a_storage_error(local_store):
    # A file where the "originals" folder belongs: mkdir fails with an OSError.
    (local_store.root / "originals").write_text("in the way")
    with pytest.raises(StorageError):
        put_bytes(local_store, b"blocked")
    assert list(local_store.iter_keys()) == []


# -- S3 only ------------------------------------------------------------------

MiB = 1024 * 1024
PART = 5 * MiB  # S3's (and moto's) smallest part but the last


@pytest.fixture
def s3_calls(store_client) -> list[tuple[str, int | None]]:
    """The S3 operations made through ``store_client`` during the test, as
    (name, body size)."""
    calls: list[tuple[str, int | None]] = []

    def note(params, model, **_):
        body = params.get("Body")
        calls.append((model.name, None if body is None else len(body)))

    events = store_client.meta.events
    events.register("before-parameter-build.s3.*", note, unique_id="s3_calls")
    yield calls
    events.unregister("before-parameter-build.s3.*", unique_id="s3_calls")


def big_payload(n: int, seed: int) -> bytes:
    """Like payload(), much faster for the multi-MiB blobs multipart needs."""
    return random.Random(seed).randbytes(n)


def operations(calls) -> list[str]:
    return [name for name, _ in calls]


def uploaded_parts(calls) -> list[int]:
    return [size for name, size in calls if name == "UploadPart"]


def stream_sha(stream) -> str:
    digest = hashlib.sha256()
    with stream:
        while chunk := stream.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture
def small_parts(store_client, s3_bucket):
    """A store that goes multipart early."""
    return make_s3_store(
        None, s3_bucket, client=store_client, multipart_threshold=PART, part_size=PART
    )


def test_s3_multipart_upload_streams_in_parts(small_parts, s3_client, s3_calls):
    data = big_payload(2 * PART + MiB + 123, seed=30)
    key = key_for(data)
    calls = s3_calls
    stream = TrickleStream(data, step=300_000)
    read_at_upload = []  # how far the input was read when each part went up
    events = small_parts.client.meta.events
    watch = "before-parameter-build.s3.UploadPart"
    events.register(watch, lambda **_: read_at_upload.append(stream._data.tell()), "watch")
    try:
        assert small_parts.put(key, stream) == len(data)
    finally:
        events.unregister(watch, unique_id="watch")

    assert operations(calls) == ["CreateMultipartUpload"] + ["UploadPart"] * 3 + [
        "CompleteMultipartUpload"
    ]
    assert uploaded_parts(calls) == [PART, PART, MiB + 123]
    # Streamed: never more than the part being sent was read ahead.
    assert read_at_upload == [PART, 2 * PART, len(data)]
    assert stream_sha(small_parts.open(key)) == sha(data)
    assert small_parts.size(key) == len(data)
    head = s3_client.head_object(Bucket=small_parts.bucket, Key="blobs/" + key)
    assert head["ETag"].strip('"').endswith("-3")  # S3's mark of a 3-part object
    with small_parts.open_range(key, PART - 10, PART + 10) as stream:
        assert stream.read() == data[PART - 10 : PART + 11]


@pytest.mark.parametrize(
    "threshold, size, parts",
    [
        (PART, PART - 1, []),  # below the threshold: one PUT
        (PART, PART, [PART]),  # at it: multipart, one part
        (PART, 2 * PART, [PART, PART]),  # ends on a part boundary
        (MiB, PART + 1000, [PART, 1000]),  # threshold below the part size
        (2 * PART + MiB, 2 * PART + MiB - 1, []),
        (2 * PART + MiB, 2 * PART + MiB, [PART, PART, MiB]),  # threshold above the part size
    ],
)
def test_s3_threshold_and_part_sizes(store_client, s3_bucket, s3_calls, threshold, size, parts):
    store = make_s3_store(
        None, s3_bucket, client=store_client, multipart_threshold=threshold, part_size=PART
    )
    data = big_payload(size, seed=31)
    put_bytes(store, data)
    assert uploaded_parts(s3_calls) == parts
    assert ("PutObject" in operations(s3_calls)) == (not parts)
    assert stream_sha(store.open(key_for(data))) == sha(data)


def test_s3_failing_stream_aborts_the_multipart_upload(small_parts, s3_client, s3_calls):
    key = key_for(b"never complete")
    calls = s3_calls
    with pytest.raises(ConnectionResetError):
        small_parts.put(key, FailingStream(2 * PART + 1000))
    assert uploaded_parts(calls) == [PART, PART]  # parts went up before the failure
    assert operations(calls)[-1] == "AbortMultipartUpload"
    assert not small_parts.exists(key)
    assert list(small_parts.iter_keys()) == []
    bucket = small_parts.bucket
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_s3_prefix_holds_every_object(store_client, s3_bucket, s3_client):
    def store(prefix: str):
        return make_s3_store(None, s3_bucket, client=store_client, prefix=prefix)

    key = put_bytes(store("/tenant-a/blobs/"), b"prefixed")
    listed = s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [item["Key"] for item in listed] == [f"tenant-a/blobs/{key}"]
    # The same folder however the prefix is spelt; strays in it are skipped.
    s3_client.put_object(Bucket=s3_bucket, Key="tenant-a/blobs/README", Body=b"not a blob")
    s3_client.put_object(Bucket=s3_bucket, Key=f"tenant-a/blobs/{key}.bak", Body=b"no")
    assert list(store("tenant-a/blobs").iter_keys()) == [key]
    assert store("tenant-a/blobs").exists(key)
    # Other prefixes (and the bare bucket) see none of it.
    assert not store("tenant-b").exists(key)
    assert list(store("tenant-b").iter_keys()) == []
    assert list(store("").iter_keys()) == []


def test_s3_presigned_url_serves_the_bytes(s3_store):
    import requests

    data = payload(100_000, seed=32)
    key = put_bytes(s3_store, data)
    url = s3_store.presigned_url(
        key,
        expires_in=60,
        response_content_type="image/png",
        response_content_disposition='attachment; filename="a.png"',
    )
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"] == 'attachment; filename="a.png"'
    partial = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert partial.status_code == 206
    assert partial.content == data[10:20]
    assert "X-Amz-Signature=" in url  # SigV4, which every region and imitator accepts


def test_s3_presigned_url_checks_its_arguments(s3_store):
    with pytest.raises(InvalidKey):
        s3_store.presigned_url("../etc/passwd")
    for bad in (0, 8 * 24 * 3600):
        with pytest.raises(ValueError):
            s3_store.presigned_url(key_for(b"x"), expires_in=bad)


def test_s3_streams_report_their_length(s3_store):
    data = payload(5000, seed=33)
    key = put_bytes(s3_store, data)
    with s3_store.open(key) as stream:
        assert stream.length == 5000
    with s3_store.open_range(key, 4000, 10_000) as stream:
        assert stream.length == 1000
        assert stream.read() == data[4000:]


@needs_s3
def test_s3_dead_endpoint_is_a_storage_error(tmp_path):
    from tests.support.live_server import free_port

    store = make_s3_store(
        f"http://127.0.0.1:{free_port()}", "nowhere", connect_timeout=0.5, max_attempts=1
    )
    key = key_for(b"x")
    calls = [
        lambda: store.put(key, io.BytesIO(b"x")),
        lambda: store.open(key),
        lambda: store.open_range(key, 0, 0),
        lambda: store.size(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: list(store.iter_keys()),
        lambda: store.cleanup_temp(timedelta(0)),
        store.check,
    ]
    started = datetime.now(UTC)
    for call in calls:
        with pytest.raises(StorageError, match=r"127\.0\.0\.1"):
            call()
    assert datetime.now(UTC) - started < timedelta(seconds=10)


def test_s3_missing_bucket_is_a_storage_error(s3_endpoint, store_client):
    store = make_s3_store(None, "no-such-bucket", client=store_client)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        put_bytes(store, b"lost")
    with pytest.raises(StorageError, match="no-such-bucket"):
        store.check()


def test_s3_check_passes_on_a_usable_bucket(s3_store):
    s3_store.check()


def test_s3_cleanup_temp_aborts_stale_uploads(s3_store, s3_client):
    bucket = s3_store.bucket
    mine = f"blobs/{key_for(b'crashed')}"
    foreign = f"elsewhere/{key_for(b'crashed')}"
    for name in (mine, foreign):
        s3_client.create_multipart_upload(Bucket=bucket, Key=name)
    # moto dates every upload 2010-11-10: only a century is "too young" here.
    assert s3_store.cleanup_temp(timedelta(days=36500)) == 0
    assert s3_store.cleanup_temp(timedelta(0)) == 1
    left = s3_client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [upload["Key"] for upload in left] == [foreign]


def test_s3_config_from_aws_environment(monkeypatch, s3_endpoint, s3_bucket):
    from image_repo.storage import S3BlobStore

    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    store = S3BlobStore(s3_bucket)
    key = put_bytes(store, b"configured by the environment")
    assert list(store.iter_keys()) == [key]


@needs_s3
def test_s3_rejects_parts_smaller_than_s3_allows():
    from image_repo.storage.s3 import S3BlobStore

    with pytest.raises(ValueError, match="part_size"):
        S3BlobStore("bucket", part_size=PART - 1, client=object())


@needs_s3
def test_s3_read_failure_is_a_storage_error():
    from botocore.exceptions import ResponseStreamingError

    from image_repo.storage.s3 import S3ObjectStream

    class BrokenBody:
        def read(self, amt=None):
            raise ResponseStreamingError(error="connection reset")

        def close(self):
            pass

    with (
        pytest.raises(StorageError, match="connection reset"),
        S3ObjectStream(BrokenBody(), 10, key_for(b"x")) as stream,
    ):
        stream.read(5)
