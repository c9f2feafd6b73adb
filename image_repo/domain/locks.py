"""Named locks across processes: a file lock on one box, a Redis lock on many.

Used so that concurrent requests for the same missing rendition compute it
once: the first holds the lock and renders, the others wait and then find
it cached.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FileLocks:
    """``flock`` on a file per name; works between processes and threads of one box."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def hold(self, name: str, timeout_s: float = 120) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / hashlib.sha256(name.encode()).hexdigest()[:32]
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Blocking: a render takes well under a worker's timeout.
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class RedisLocks:
    """redis-py's Lock: one holder across every instance sharing the Redis."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    @contextmanager
    def hold(self, name: str, timeout_s: float = 120) -> Iterator[None]:
        lock = self.client.lock(
            f"image-repo:lock:{name}", timeout=timeout_s, blocking_timeout=timeout_s
        )
        acquired = lock.acquire()
        try:
            yield
        finally:
            if acquired:
                lock.release()
