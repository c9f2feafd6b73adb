"""Blob store on S3 or an S3-compatible service (MinIO, Ceph, R2, ...): the many-box backend.

Each key is an object named ``<prefix><key>`` in one bucket. S3 makes an
object visible only once its upload is complete, so a reader never meets half
a blob: small blobs go up with one PUT, large ones as a multipart upload that
is completed at the end, or aborted if the input stream fails.

Configuration comes from the arguments; whatever is not given falls back to
boto3's usual sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, ~/.aws, instance roles).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from image_repo.storage.base import (
    CHUNK_SIZE,
    BlobNotFound,
    BlobStore,
    InvalidKey,
    StorageError,
    clamp_range,
    validate_key,
    validate_prefix,
)

MiB = 1024 * 1024
# S3 refuses parts below 5 MiB (except the last) and uploads of more than 10,000 parts.
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10_000
# Error codes S3 (and its imitators) use for a missing object; HEAD has no body, only "404".
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the SigV4 limit


class S3ObjectStream(io.RawIOBase):
    """A streaming S3 body: reads go to the network, errors become StorageError.

    ``length`` is the number of bytes the stream yields in all (for a
    Content-Length header). Closing it before the end drops the connection.
    """

    def __init__(self, body: Any, length: int, key: str) -> None:
        super().__init__()
        self._body = body
        self._key = key
        self.length = length

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._body.read(None if size is None or size < 0 else size)
        except (BotoCoreError, OSError) as exc:
            raise StorageError(f"S3 read of {self._key} failed: {exc}") from exc

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


class S3BlobStore(BlobStore):
    """Blobs as objects under ``prefix`` in ``bucket``. Safe to share between
    threads (boto3 clients are); build it after forking, as connections are
    not shared between processes."""

    supports_presigned_urls = True

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: Any = None,
        multipart_threshold: int = 8 * MiB,
        part_size: int = 8 * MiB,
        addressing_style: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        config: Config | None = None,
    ) -> None:
        """``client`` replaces everything about the connection (endpoint,
        credentials, timeouts). ``addressing_style`` "path" suits MinIO and
        other servers without per-bucket host names; ``config`` is merged over
        the defaults for anything else (e.g. max_pool_connections)."""
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        if multipart_threshold < 1:
            raise ValueError("multipart_threshold must be positive")
        self.bucket = bucket
        # The prefix is a folder: "a/b", "/a/b/" and "a/b/" all store under "a/b/".
        folder = prefix.strip("/")
        self.prefix = f"{folder}/" if folder else ""
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        if client is None:
            client = _make_client(
                endpoint_url=endpoint_url,
                region=region,
                access_key_id=access_key_id,
                secret_access_key=secret_access_key,
                config=_client_config(
                    addressing_style, connect_timeout, read_timeout, max_attempts, config
                ),
            )
        self.client = client

    def __repr__(self) -> str:
        return f"S3BlobStore({self.bucket!r}, prefix={self.prefix!r})"

    # -- writing --------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, durable: bool = True) -> int:
        name = self._name(key)
        head = _read_full(stream, self.multipart_threshold)
        if len(head) < self.multipart_threshold:
            with self._backend("write", key):
                self.client.put_object(Bucket=self.bucket, Key=name, Body=head)
            return len(head)
        return self._put_multipart(key, name, stream, head)

    def delete(self, key: str) -> None:
        name = self._name(key)
        with self._backend("delete", key, missing_ok=True):
            self.client.delete_object(Bucket=self.bucket, Key=name)

    def cleanup_temp(self, older_than: timedelta) -> int:
        """Abort multipart uploads under the prefix started before ``older_than``
        ago (left by a crashed process); return how many.

        S3 has no temp files, but an unfinished multipart upload keeps its parts
        (and bills for them) until aborted. As for the local store, keep
        ``older_than`` well above the longest upload.
        """
        cutoff = datetime.now(UTC) - older_than
        aborted = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._backend("list uploads under", self.prefix or "/"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", []):
                    key = upload["Key"][len(self.prefix) :]
                    if upload["Initiated"] < cutoff and _is_key(key):
                        self._abort(upload["Key"], upload["UploadId"])
                        aborted += 1
        return aborted

    # -- reading --------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        with self._backend("open", key, reading=True):
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        return S3ObjectStream(response["Body"], response["ContentLength"], key)  # type: ignore[return-value]

    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        # S3 would answer a reversed range with the whole object and an empty
        # blob with 416, so the range is checked here against the real size.
        first, last = clamp_range(start, end, self.size(key))
        with self._backend("read", key, reading=True):
            response = self.client.get_object(
                Bucket=self.bucket, Key=self._name(key), Range=f"bytes={first}-{last}"
            )
        return S3ObjectStream(response["Body"], response["ContentLength"], key)  # type: ignore[return-value]

    def size(self, key: str) -> int:
        return self._head(key)["ContentLength"]

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except BlobNotFound:
            return False
        return True

    def modified_at(self, key: str) -> datetime:
        return self._head(key)["LastModified"].astimezone(UTC)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        # S3 lists in UTF-8 byte order, which is lexicographic for our ASCII keys.
        with self._backend("list", prefix or "/"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    if _is_key(key):  # skip whatever else shares the bucket
                        yield key

    def presigned_url(
        self,
        key: str,
        *,
        expires_in: int = 300,
        response_content_type: str | None = None,
        response_content_disposition: str | None = None,
    ) -> str:
        """A URL that GETs the blob without credentials for ``expires_in`` seconds.

        Made locally (no request, no check that the blob exists). It names the
        store's endpoint, so clients must be able to reach that endpoint.
        """
        if not 1 <= expires_in <= _MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be 1..{_MAX_PRESIGN_SECONDS} seconds")
        params = {"Bucket": self.bucket, "Key": self._name(key)}
        if response_content_type:
            params["ResponseContentType"] = response_content_type
        if response_content_disposition:
            params["ResponseContentDisposition"] = response_content_disposition
        with self._backend("sign a URL for", key):
            return self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_in
            )

    def check(self) -> None:
        """Raise StorageError unless the bucket exists and answers (for health checks:
        on a missing bucket, HEAD of a key says "not found" like a missing blob)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(
                f"S3 bucket {self.bucket!r} is not usable: {_describe(exc)}"
            ) from exc

    # -- helpers --------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _head(self, key: str) -> dict[str, Any]:
        name = self._name(key)
        with self._backend("stat", key, reading=True):
            return self.client.head_object(Bucket=self.bucket, Key=name)

    def _put_multipart(self, key: str, name: str, stream: BinaryIO, head: bytearray) -> int:
        with self._backend("start upload of", key):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=name)[
                "UploadId"
            ]
        try:
            parts, size = self._upload_parts(key, name, upload_id, stream, head)
            with self._backend("complete upload of", key):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self._abort(name, upload_id)
            raise
        return size

    def _upload_parts(
        self, key: str, name: str, upload_id: str, stream: BinaryIO, buffer: bytearray
    ) -> tuple[list[dict[str, Any]], int]:
        """Upload ``buffer`` then the rest of ``stream`` in part_size parts; at most
        one part (or the threshold's worth, if larger) is held in memory."""
        parts: list[dict[str, Any]] = []
        size = 0
        while True:
            if len(buffer) < self.part_size:
                buffer += _read_full(stream, self.part_size - len(buffer))
            if not buffer:
                break  # the stream ended exactly on a part boundary
            if len(buffer) <= self.part_size:
                part, buffer = buffer, bytearray()
            else:
                part, buffer = buffer[: self.part_size], buffer[self.part_size :]
            number = len(parts) + 1
            if number > MAX_PARTS:
                raise StorageError(f"cannot write {key}: more than {MAX_PARTS} parts")
            with self._backend("write", key):
                response = self.client.upload_part(
                    Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=part
                )
            parts.append({"ETag": response["ETag"], "PartNumber": number})
            size += len(part)
            if len(part) < self.part_size:
                break  # a short part is the last one
        return parts, size

    def _abort(self, name: str, upload_id: str) -> None:
        # Best effort: the caller's own exception matters more, and cleanup_temp
        # sweeps any upload this fails to abort.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)

    @contextlib.contextmanager
    def _backend(
        self, action: str, key: str, *, reading: bool = False, missing_ok: bool = False
    ) -> Iterator[None]:
        """Report S3 failures as StorageError (the HTTP layer's 503); a missing
        object while reading is BlobNotFound."""
        try:
            yield
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                if reading:
                    raise BlobNotFound(key) from exc
                if missing_ok:
                    return
            raise StorageError(
                f"cannot {action} {key} in S3 bucket {self.bucket!r}: {_describe(exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(
                f"cannot {action} {key} in S3 bucket {self.bucket!r}: {_describe(exc)}"
            ) from exc


def _client_config(
    addressing_style: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
    extra: Config | None,
) -> Config:
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # Presigned URLs would otherwise be SigV2 on some endpoints, which newer
        # AWS regions and several S3-compatible servers refuse.
        signature_version="s3v4",
        # botocore's default since 1.36 (checksums on every upload) is refused by
        # several S3-compatible servers; the keys are SHA-256s that fsck verifies.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": addressing_style} if addressing_style else None,
    )
    return config.merge(extra) if extra is not None else config


def _make_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    config: Config,
) -> Any:
    # A session of our own: boto3's default session is not thread-safe, clients are.
    try:
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        return session.client("s3", endpoint_url=endpoint_url, config=config)
    except (BotoCoreError, ValueError) as exc:
        raise StorageError(f"cannot set up the S3 client: {exc}") from exc


def _read_full(stream: BinaryIO, size: int) -> bytearray:
    """Read up to ``size`` bytes, fewer only at the end of the stream. Errors
    reading ``stream`` propagate unchanged: they are the caller's, not S3's."""
    buffer = bytearray()
    while len(buffer) < size:
        chunk = stream.read(min(CHUNK_SIZE, size - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or "error"
        message = error.get("Message") or ""
        return f"{code} (HTTP {status}) {message}".strip()
    return str(exc)


def _is_key(name: str) -> bool:
    try:
        validate_key(name)
    except InvalidKey:
        return False
    return True
