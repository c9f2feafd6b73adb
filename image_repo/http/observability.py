"""Request ids, one JSON log line per request, and the request metrics.

The metrics themselves (``services.metrics``) belong to the app's services;
here they are counted for each answered request.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import UTC, datetime

from flask import Flask, g, has_app_context, request

from image_repo.http.access import access_for
from image_repo.http.context import current_services, http_state, services_of
from image_repo.imaging.render import Decode, add_observer
from image_repo.jobs.queue import observe as observe_queue
from image_repo.services.metrics import Metrics

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _write_log_line(line: str) -> None:
    # Straight to stdout, one flushed line per request: the logging module's
    # record machinery cost more than the request on cheap endpoints.
    stream = sys.stdout
    stream.write(line + "\n")
    stream.flush()


def metrics() -> Metrics:
    return current_services().metrics


def render_metrics() -> bytes:
    observe_queue(current_services(), metrics())
    return metrics().exposition()


def request_id_from(given: str | None) -> str:
    """The client's X-Request-ID when it is sane, else a new one."""
    return given if given and REQUEST_ID.match(given) else os.urandom(16).hex()


def _request_id() -> str:
    return request_id_from(request.headers.get("X-Request-ID"))


def record_request(
    app: Flask,
    *,
    request_id: str,
    method: str,
    route: str | None,
    operation: str,
    status: int,
    duration: float,
    tenant_id: str | None,
    key_id: str | None,
    remote_addr: str | None,
) -> None:
    """Count and time one answered request, and write its log line."""
    requests_child, latency_child = services_of(app).metrics.request_children(
        operation, method, str(status)
    )
    requests_child.inc()
    latency_child.observe(duration)
    _write_log_line(
        json.dumps(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "request_id": request_id,
                "method": method,
                "route": route,
                "operation": operation,
                "status": status,
                "duration_ms": round(duration * 1000, 2),
                "tenant_id": tenant_id,
                "key_id": key_id,
                "remote_addr": remote_addr,
            }
        )
    )


def operation_name(app: Flask, endpoint: str | None, method: str) -> str:
    """The operationId of a route (looked up once per endpoint and method)."""
    if endpoint is None:
        return "unmatched"
    names = http_state(app).operation_names
    name = names.get((endpoint, method))
    if name is None:
        access = access_for(app, endpoint, method)
        name = names[(endpoint, method)] = access.operation_id if access else endpoint
    return name


def _observe_rendition(decode: Decode) -> None:
    # The renderer tells every rendition made in the process; it counts for
    # the app whose request made it (none: a script or the CLI).
    if has_app_context():
        metrics().decode_seconds.labels("render").observe(decode.seconds)


def init_observability(app: Flask) -> None:
    add_observer(_observe_rendition)  # once per process, however many apps

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.request_id = _request_id()

    @app.after_request
    def _finish(response):
        started = g.get("started")
        request_id = g.get("request_id") or _request_id()
        response.headers["X-Request-ID"] = request_id
        if started is None:
            return response
        principal = g.get("principal")
        req = request._get_current_object()  # one context lookup instead of six
        rule = req.url_rule
        record_request(
            app,
            request_id=request_id,
            method=req.method,
            route=rule.rule if rule else None,
            operation=operation_name(app, req.endpoint, req.method),
            status=response.status_code,
            duration=time.perf_counter() - started,
            tenant_id=principal.tenant_id if principal else None,
            key_id=principal.key_id if principal else None,
            remote_addr=req.remote_addr,
        )
        return response
