"""Who hears of each rendition made: a process-wide list of observers.

The pipeline tells every observer, once per rendition it made, which source
it decoded (the original, or its preview) and how long the rendition took
from the first read to the last encoded byte. The HTTP layer feeds this into
its decode-time histogram; tests use it to see what was decoded (a cached
rendition decodes nothing, a small one decodes the preview). Nothing is
told of a rendition that failed or of a preview found too small to serve.

Observers run in the rendering thread and must be quick; one that raises is
logged and never fails the rendition.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decode:
    """One rendition made: from which source, in how many seconds."""

    source: Literal["original", "preview"]
    seconds: float


Observer = Callable[[Decode], None]

# Replaced whole under the lock, read without it: notify() never waits.
_observers: tuple[Observer, ...] = ()
_lock = threading.Lock()


def add_observer(observer: Observer) -> None:
    """Tell ``observer`` of every rendition made in this process from now on (once, if added twice)."""
    global _observers
    with _lock:
        if observer not in _observers:
            _observers = (*_observers, observer)


def remove_observer(observer: Observer) -> None:
    global _observers
    with _lock:
        _observers = tuple(o for o in _observers if o != observer)


@contextmanager
def observing() -> Iterator[list[Decode]]:
    """A list that collects the renditions made, in any thread, until the block ends."""
    seen: list[Decode] = []
    add_observer(seen.append)
    try:
        yield seen
    finally:
        remove_observer(seen.append)


def notify(event: Decode) -> None:
    for observer in _observers:
        try:
            observer(event)
        except Exception:
            log.exception("a rendition observer failed")
