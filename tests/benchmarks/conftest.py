"""Fixtures for the benchmarks (``bench_*.py``, run on purpose only; see harness.py).

Kept import-light: the default test run loads this file too, while collecting
no benchmark.
"""

from __future__ import annotations

import secrets

import pytest

from .harness import BenchSettings, LoadResult, load


@pytest.fixture(scope="session")
def bench_settings() -> BenchSettings:
    """Run lengths, connections, rounds and workers, from ``BENCH_*`` variables."""
    return BenchSettings.from_env()


@pytest.fixture
def run_load(bench_settings):
    """``run_load(url, seconds=None, *, headers=None, ...)`` -> LoadResult.

    ``load`` with this run's connections, threads and load tool filled in;
    pass ``headers={"X-API-Key": key}`` for endpoints that need a key.
    """
    tool = bench_settings.tool()

    def run(url: str, seconds: float | None = None, **kwargs) -> LoadResult:
        kwargs.setdefault("connections", bench_settings.connections)
        kwargs.setdefault("threads", bench_settings.threads)
        kwargs.setdefault("tool", tool)
        return load(url, bench_settings.seconds if seconds is None else seconds, **kwargs)

    return run


@pytest.fixture
def service_env(tmp_path) -> dict[str, str]:
    """Environment for a production-mode service with its own data folder."""
    return {
        "IMAGE_REPO_ENV": "production",
        "IMAGE_REPO_SECRET_KEY": secrets.token_urlsafe(48),
        "IMAGE_REPO_DATA_DIR": str(tmp_path / "data"),
    }
