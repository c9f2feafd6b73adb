"""``image-repo worker`` with one more analysis kind, ``hold``, that waits to be let go.

Run as ``python -m tests.support.holding_worker worker ...`` with the app's
environment. A ``hold`` job (for images whose file name starts with
``hold``) writes ``held-<image id>`` into ``HOLD_DIR`` once it has started,
then waits until ``release`` appears there: a test can kill the worker while
it is certainly in the middle of a job.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from image_repo.domain import analyses

KIND = "hold"


def applies(services, image) -> bool:
    return image.filename.startswith("hold")


def hold(services, session, image) -> None:
    folder = Path(os.environ["HOLD_DIR"])
    (folder / f"held-{image.id}").write_text(str(os.getpid()))
    while not (folder / "release").exists():
        time.sleep(0.02)  # in the worker: waits for the test, not a race in it


def register() -> None:
    analyses.register(KIND, hold, applies=applies)


if __name__ == "__main__":
    register()
    from image_repo.cli.main import main

    sys.argv[0] = "image-repo"
    main()
