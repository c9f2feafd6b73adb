from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import text

from image_repo.domain.permissions import METRICS_READ
from image_repo.http.api import PUBLIC
from image_repo.http.context import blob_store
from image_repo.http.errors import ErrorExample
from image_repo.http.observability import render_metrics
from image_repo.http.operations.blueprint import operations_bp
from image_repo.http.operations.schemas import LiveSchema, ReadySchema
from image_repo.http.sessions import db_session
from image_repo.storage import blob_key

# Any well-formed key: readiness asks the store about it, it need not exist.
PROBE_KEY = blob_key("0" * 64)


def _check(name: str, probe) -> str:
    try:
        probe()
    except Exception as exc:  # any failure means not ready; say which and why
        current_app.logger.warning("readiness: %s failed: %s", name, exc)
        return f"failed: {type(exc).__name__}"
    return "ok"


@operations_bp.route("health/live")
class Live(MethodView):
    @operations_bp.operation("getLiveness", permission=PUBLIC)
    @operations_bp.response(200, LiveSchema)
    def get(self):
        """Is the process answering?

        Touches no dependency: for a liveness probe.
        """
        return {"status": "ok"}


@operations_bp.route("health/ready")
class Ready(MethodView):
    @operations_bp.operation(
        "getReadiness",
        permission=PUBLIC,
        errors={
            503: ErrorExample(
                "Not ready: database unavailable.",
                {"database": ["failed: OperationalError"]},
            )
        },
    )
    @operations_bp.response(200, ReadySchema)
    def get(self):
        """Can this instance serve requests?

        One database query and one storage round trip; 503 names the dependency that failed.
        """
        checks = {
            "database": _check("database", lambda: db_session().execute(text("SELECT 1"))),
            "storage": _check("storage", lambda: blob_store().exists(PROBE_KEY)),
        }
        failed = [name for name, state in checks.items() if state != "ok"]
        if failed:
            abort(
                503,
                message=f"Not ready: {', '.join(failed)} unavailable.",
                errors={name: [checks[name]] for name in failed},
            )
        return {"status": "ok", "checks": checks}


@operations_bp.route("metrics")
class Metrics(MethodView):
    @operations_bp.operation("getMetrics", permission=METRICS_READ, public_when="METRICS_PUBLIC")
    @operations_bp.doc(
        responses={
            "200": {
                "description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self):
        """Prometheus metrics

        Requests by operation and status with latency histograms, bytes uploaded,
        rendition cache hits and misses, decode time. Public unless configured otherwise.
        """
        return current_app.response_class(
            render_metrics(),
            mimetype="text/plain",
            content_type="text/plain; version=0.0.4; charset=utf-8",
        )
