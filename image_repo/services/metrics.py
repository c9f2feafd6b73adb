"""The service's Prometheus metrics, framework-free.

Metrics work across gunicorn's worker processes through prometheus-client's
multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (the gunicorn
config module sets it); otherwise each set keeps its own registry, so two
apps in one process share nothing.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry
        labels = ["operation", "method", "status"]
        self.requests = Counter(
            "image_repo_requests", "Requests answered.", labels, registry=registry
        )
        self.latency = Histogram(
            "image_repo_request_duration_seconds",
            "Time to answer a request.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.uploaded_bytes = Counter(
            "image_repo_uploaded_bytes", "Bytes of newly stored originals.", registry=registry
        )
        self.rendition_cache = Counter(
            "image_repo_rendition_cache", "Rendition requests by cache result.", ["result"],
            registry=registry,
        )  # fmt: skip
        self.decode_seconds = Histogram(
            "image_repo_decode_seconds",
            "Time spent decoding images.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._request_children: dict = {}
        self._init_jobs(registry)

    def _init_jobs(self, registry: CollectorRegistry | None) -> None:
        # Background jobs (image_repo.jobs): what they did, how long they took,
        # and how many wait in the queue (set when /metrics is read).
        self.jobs = Counter(
            "image_repo_jobs",
            "Jobs ended, by analysis kind and outcome (done, failed, retry, duplicate, gone, ...).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.job_seconds = Histogram(
            "image_repo_job_duration_seconds",
            "Time a job took, by analysis kind.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "image_repo_queue_depth",
            "Jobs waiting in the queue (not counting retries scheduled for later).",
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    @classmethod
    def for_process(cls) -> Metrics:
        # In multiprocess mode the values live in files, not in a registry.
        return cls(None if multiprocess_mode() else CollectorRegistry())

    def request_children(self, operation: str, method: str, status: str):
        """The labelled request counter and histogram, looked up once per label set."""
        labels = (operation, method, status)
        children = self._request_children.get(labels)
        if children is None:
            children = self._request_children[labels] = (
                self.requests.labels(*labels),
                self.latency.labels(*labels),
            )
        return children

    def exposition(self) -> bytes:
        """The text format: every process's values in multiprocess mode, else this set's."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
