"""The baseline: a bare Flask app answering ``GET /`` with the same JSON as ours.

Served by gunicorn as ``tests.benchmarks.bare_app:app`` (the server's cwd is
the repository root), under the same config module and worker count as the
service, so the difference in throughput is what our stack adds per request.
"""

from __future__ import annotations

from flask import Flask, request

# The same constant the service answers with, so both bodies match byte for byte.
from image_repo.http.landing.models import SERVICE_INFO

app = Flask(__name__)


@app.get("/")
def landing():
    return {"hello": request.args.get("name", "guest"), "info": SERVICE_INFO}
