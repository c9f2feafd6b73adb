"""Blob store on a local folder: the one-box default.

Each key is a file under ``root`` at the key's own path. Writes go to a temp
file in the destination folder and are renamed over the final name only once
complete and fsynced, so a reader (or a crash) never meets half a blob. Temp
files start with ``.tmp-``: listings skip them and ``cleanup_temp`` removes
the ones a crash left behind. Files are created with mode 0600 (mkstemp):
only the service's user reads the images.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from image_repo.storage.base import (
    CHUNK_SIZE,
    BlobNotFound,
    BlobStore,
    InvalidKey,
    RangeReader,
    StorageError,
    clamp_range,
    validate_key,
    validate_prefix,
)

TEMP_PREFIX = ".tmp-"
# mkstemp may race with delete() pruning an empty folder; a few retries settle it.
_MKSTEMP_ATTEMPTS = 3
# Folders already found to stay under root; cleared when full (fan-out folders
# are few: two levels of 256).
_REAL_FOLDERS_MAX = 100_000


@contextlib.contextmanager
def _backend(action: str, key: str, *, reading: bool = False) -> Iterator[None]:
    """Report file system failures as StorageError (the HTTP layer's 503); a
    missing file while reading is BlobNotFound."""
    try:
        yield
    except FileNotFoundError as exc:
        if reading:
            raise BlobNotFound(key) from exc
        raise StorageError(f"cannot {action} {key}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise StorageError(f"cannot {action} {key}: {exc.strerror or exc}") from exc


class LocalBlobStore(BlobStore):
    has_local_files = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create blob folder {root}: {exc}") from exc
        self.root = Path(root).resolve()
        self._root = str(self.root)
        self._real_folders: set[str] = set()

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    # -- writing --------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, durable: bool = True) -> int:
        path = self._path(key)
        fd, tmp = self._mkstemp(path.parent, key)
        f = os.fdopen(fd, "wb")
        try:
            size = _copy(stream, f, key)
            with _backend("write", key):
                f.flush()
                if durable:
                    os.fsync(f.fileno())
                f.close()
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                f.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # The rename is durable only once the folder entry is on disk too.
        if durable:
            _fsync_dir(path.parent)
        return size

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror or exc}") from exc
        self._prune(path.parent)

    def cleanup_temp(self, older_than: timedelta) -> int:
        """Remove temp files older than ``older_than`` (left by a crash); return how many.

        Keep ``older_than`` well above the longest upload, or a put in progress
        loses its temp file and fails.
        """
        cutoff = datetime.now(UTC) - older_than
        removed = 0
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    if _mtime(path.stat().st_mtime) < cutoff:
                        path.unlink()
                        removed += 1
        return removed

    # -- reading --------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with _backend("open", key, reading=True):
            return open(path, "rb")  # the caller closes it

    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        f = self.open(key)
        try:
            with _backend("read", key, reading=True):
                first, last = clamp_range(start, end, os.fstat(f.fileno()).st_size)
                f.seek(first)
        except BaseException:
            f.close()
            raise
        return RangeReader(f, last - first + 1)  # type: ignore[return-value]

    def size(self, key: str) -> int:
        path = self._path(key)
        with _backend("stat", key, reading=True):
            return path.stat().st_size

    def exists(self, key: str) -> bool:
        path = self._path(key)
        with _backend("stat", key):
            return path.is_file()

    def modified_at(self, key: str) -> datetime:
        path = self._path(key)
        with _backend("stat", key, reading=True):
            return _mtime(path.stat().st_mtime)

    def local_path(self, key: str) -> Path | None:
        """The blob's file (for sendfile); None if the blob is missing.

        A missing blob is then reported by open() as BlobNotFound, exactly as
        for stores without local files.
        """
        path = self._path(key)
        with _backend("stat", key):
            return path if path.is_file() else None

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        # Walk only the deepest folder the prefix names completely.
        folder = prefix.rpartition("/")[0]
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        for key in _walk(start, folder):
            if key.startswith(prefix) and _is_key(key):
                yield key

    # -- helpers --------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file for a key; the key is validated and must stay under root."""
        path = os.path.join(self._root, *validate_key(key).split("/"))
        # Keys cannot hold "..", but a symlink planted inside root could lead
        # out. Resolving the whole path costs an lstat per component on every
        # request that sends a file, so folders found real are remembered and
        # only the file itself is looked at each time (os.path, not pathlib,
        # for the same reason).
        folder = os.path.dirname(path)
        if folder not in self._real_folders:
            self._check_inside(folder, key)
            if len(self._real_folders) >= _REAL_FOLDERS_MAX:
                self._real_folders.clear()
            self._real_folders.add(folder)
        try:
            is_link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            is_link = False  # missing (or unreadable): the caller's operation says so
        if is_link:
            self._check_inside(path, key)
        return Path(path)

    def _check_inside(self, path: str, key: str) -> None:
        real = os.path.realpath(path)
        if real != path and not real.startswith(self._root + os.sep):
            raise InvalidKey(f"blob key resolves outside the store: {key!r}")

    def _mkstemp(self, folder: Path, key: str) -> tuple[int, str]:
        for _ in range(_MKSTEMP_ATTEMPTS):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
            except FileNotFoundError:
                continue  # a concurrent delete() pruned the folder: make it again
            except OSError as exc:
                raise StorageError(f"cannot write {key}: {exc.strerror or exc}") from exc
        raise StorageError(f"cannot write {key}: its folder keeps disappearing")

    def _prune(self, folder: Path) -> None:
        """Remove folders emptied by a delete, up to (not including) root."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or already gone): stop climbing
            folder = folder.parent


def _copy(stream: BinaryIO, f: BinaryIO, key: str) -> int:
    """Copy in chunks. Errors reading ``stream`` propagate unchanged: they are the
    caller's (a client that went away), not the store's."""
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        with _backend("write", key):
            f.write(chunk)
        size += len(chunk)
    return size


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        return  # deleted meanwhile: nothing left to make durable
    except OSError as exc:
        raise StorageError(f"cannot sync folder {folder}: {exc.strerror or exc}") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems cannot fsync a folder; the data itself is synced.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise StorageError(f"cannot sync folder {folder}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def _walk(folder: Path, rel: str) -> Iterator[str]:
    """Relative paths of the files under ``folder`` in lexicographic order.

    Sorting each folder gives global key order because "/" sorts before every
    character a key name may hold. Dot files (temp files) and symlinks are skipped.
    """
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing stored there (or removed while we walked)
    except OSError as exc:
        raise StorageError(f"cannot list {folder}: {exc.strerror or exc}") from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        name = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), name)
        elif entry.is_file(follow_symlinks=False):
            yield name


def _is_key(name: str) -> bool:
    try:
        validate_key(name)
    except InvalidKey:
        return False
    return True


def _mtime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
