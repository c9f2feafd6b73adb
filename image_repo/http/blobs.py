"""Sending a stored blob: sendfile for the data folder, ranged streams for S3,
or a redirect to a presigned URL when configured."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from flask import current_app, redirect, request, send_file
from flask_smorest import abort
from werkzeug.datastructures import ContentRange
from werkzeug.http import dump_options_header, parse_range_header
from werkzeug.wsgi import wrap_file

from image_repo.storage import BlobNotFound, BlobStore, StorageError

STREAM_CHUNK = 64 * 1024


def send_blob(
    store: BlobStore,
    key: str,
    *,
    mimetype: str,
    etag: str,
    size: int | None = None,
    last_modified: datetime | None = None,
    max_age: int,
    download_name: str | None = None,
    as_attachment: bool = False,
):
    """A response with the blob under ``key`` (conditional GET and Range included)."""
    _ignore_unusable_range()
    path = store.local_path(key)
    try:
        if path is not None:
            source = path
        elif _presigned_redirects(store):
            return _redirect(store, key, mimetype, download_name, as_attachment)
        else:
            return _stream(
                store,
                key,
                mimetype,
                etag,
                size,
                last_modified,
                max_age,
                download_name,
                as_attachment,
            )
    except BlobNotFound:
        abort(404, message="The image's bytes are missing; an operator should run fsck.")
    except StorageError:
        abort(503, message="The image store is not available.")
    return send_file(
        source,
        mimetype=mimetype,
        as_attachment=as_attachment,
        download_name=download_name,
        conditional=True,
        etag=etag,
        last_modified=last_modified,
        max_age=max_age,
    )


def _ignore_unusable_range() -> None:
    """Forget a Range header we will not serve, so the answer is 200 with the whole body.

    RFC 9110 14.2: a server ignores a Range it cannot parse or whose unit it
    does not know, and may ignore any other. We serve one byte range; a
    malformed header, another unit or several ranges are ignored rather than
    answered 416 (as werkzeug would). 416 stays for a single range that lies
    beyond the end.
    """
    value = request.environ.get("HTTP_RANGE")
    if value is None:
        return
    parsed = parse_range_header(value)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        del request.environ["HTTP_RANGE"]
        request.__dict__.pop("range", None)  # werkzeug caches the parsed header


def _presigned_redirects(store: BlobStore) -> bool:
    return bool(current_app.config.get("S3_PRESIGNED_REDIRECTS")) and store.supports_presigned_urls


def _disposition(download_name: str | None, as_attachment: bool) -> str | None:
    if not download_name:
        return None
    # Encode the name as send_file would (RFC 6266 / 5987).
    kind = "attachment" if as_attachment else "inline"
    try:
        download_name.encode("ascii")
        return dump_options_header(kind, {"filename": download_name})
    except UnicodeEncodeError:
        return f"{kind}; filename*=UTF-8''{quote(download_name, safe='')}"


def attachment(download_name: str) -> str:
    """A Content-Disposition that saves the body under ``download_name``."""
    return _disposition(download_name, True) or "attachment"


def _redirect(store, key, mimetype, download_name, as_attachment):
    url = store.presigned_url(
        key,
        expires_in=current_app.config["S3_PRESIGN_SECONDS"],
        response_content_type=mimetype,
        response_content_disposition=_disposition(download_name, as_attachment),
    )
    response = redirect(url, code=307)
    response.headers["Cache-Control"] = "private, no-store"  # the URL expires
    return response


def _stream(store, key, mimetype, etag, size, last_modified, max_age, download_name, as_attachment):
    response = current_app.response_class(mimetype=mimetype)
    response.set_etag(etag)
    if last_modified is not None:
        response.last_modified = last_modified
    response.cache_control.max_age = max_age
    response.accept_ranges = "bytes"
    disposition = _disposition(download_name, as_attachment)
    if disposition:
        response.headers["Content-Disposition"] = disposition
    # Decide 304 and 416 before touching the store.
    if request.if_none_match.contains(etag) or (
        not request.if_none_match
        and last_modified
        and request.if_modified_since
        and last_modified.replace(microsecond=0) <= request.if_modified_since
    ):
        response.status_code = 304
        return response
    if size is None:
        size = store.size(key)
    byte_range = (
        request.range.range_for_length(size)
        if request.range and _if_range_ok(etag, last_modified)
        else None
    )
    if request.range and byte_range is None and _if_range_ok(etag, last_modified):
        response.status_code = 416
        response.content_range = ContentRange("bytes", None, None, size)
        return response
    if byte_range is not None:
        start, stop = byte_range
        stream = store.open_range(key, start, stop - 1)
        response.status_code = 206
        response.content_range = ContentRange("bytes", start, stop, size)
        response.content_length = stop - start
    else:
        stream = store.open(key)
        response.content_length = size
    if request.method == "HEAD":
        stream.close()
        return response
    response.response = wrap_file(request.environ, stream, STREAM_CHUNK)
    response.direct_passthrough = True
    return response


def _if_range_ok(etag: str, last_modified: datetime | None) -> bool:
    if_range = request.if_range
    if not if_range.etag and not if_range.date:
        return True
    if if_range.etag:
        return if_range.etag == etag
    return last_modified is not None and last_modified.replace(microsecond=0) <= if_range.date
