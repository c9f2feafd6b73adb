"""Configuration: one table of settings, filled from the environment.

Every setting is declared once in ``SETTINGS`` with its environment variable,
type, default and a one-line description; the README's table is checked
against it by a test. ``load_config`` turns the environment (plus explicit
overrides, as tests and ``create_app(config)`` pass them) into a validated
mapping for Flask.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "IMAGE_REPO_"
DEV_SECRET_KEY = "dev-insecure-secret-key"  # noqa: S105 - the documented development default


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the variable to fix."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _json_object(value: str) -> dict:
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError("expected a JSON object")
    return parsed


def default_data_dir() -> Path:
    """A per-user data folder, following the XDG convention."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "image-repo"


@dataclass(frozen=True)
class Setting:
    key: str  # the Flask config key
    cast: Callable[[str], Any]
    default: Any
    doc: str
    env: str | None = None  # defaults to IMAGE_REPO_<key>

    @property
    def env_name(self) -> str:
        return self.env or ENV_PREFIX + self.key


SETTINGS: tuple[Setting, ...] = (
    Setting("ENV", str, "development", "`development` or `production`."),
    Setting(
        "SECRET_KEY",
        str,
        None,
        "Secret for signing (cursors, links). Required in production; "
        "`FLASK_SECRET_KEY1` is read as a fallback.",
    ),
    Setting(
        "DATA_DIR",
        Path,
        None,
        "Folder for the embedded default's database and image bytes "
        "(default `$XDG_DATA_HOME/image-repo` or `~/.local/share/image-repo`).",
    ),
    Setting(
        "DATABASE_URL",
        str,
        None,
        "SQLAlchemy URL of the metadata database (default: SQLite file `image-repo.db` "
        "in the data folder; PostgreSQL: `postgresql+psycopg://user@host/db`).",
    ),
    Setting(
        "CORS_ORIGINS",
        _list,
        [],
        "Comma-separated origins allowed by CORS (default: none, CORS off).",
    ),
    Setting(
        "MAX_UPLOAD_BYTES",
        int,
        100 * 1024 * 1024,
        "Largest accepted request body in bytes (larger: 413).",
    ),
    Setting("MAX_PIXELS", int, 100_000_000, "Largest accepted image, in pixels (larger: 413)."),
    Setting(
        "MAX_FRAMES",
        int,
        1000,
        "Most frames (GIF, APNG, WebP, AVIF, HEIF, MPO) or pages (TIFF) an image may have "
        "(more: 413 at upload, 422 for a rendition); counting stops at the limit.",
    ),
    Setting(
        "MAX_JPEG_SCANS",
        int,
        100,
        "Most scans a JPEG may have (progressive JPEGs have about 10; libjpeg walks every "
        "block on every scan). More: 413 at upload, 422 for a rendition.",
    ),
    Setting(
        "MAX_DECODED_PIXELS",
        int,
        250_000_000,
        "Most pixels one upload or rendition may decode, all frames together (an animated "
        "rendition decodes every frame). More: 413 at upload, 422 for a rendition.",
    ),
    Setting(
        "DECODE_TIMEOUT",
        float,
        5.0,
        "Seconds one upload's validation or one rendition may spend decoding, whatever the "
        "file; past it the request gets 422 and the worker carries on.",
    ),
    Setting(
        "METRICS_PUBLIC",
        _bool,
        True,
        "Serve `/metrics` without a key (else it needs the operator key or `metrics:read`).",
    ),
    Setting(
        "THUMBNAIL_SIZES",
        _json_object,
        {"small": 128, "thumb": 256, "medium": 512, "large": 1024},
        "JSON object of thumbnail preset name to long-edge pixels.",
    ),
    Setting("RENDER_MAX_SIDE", int, 4096, "Largest width or height a rendition may ask for."),
    Setting(
        "RENDER_ALLOW_UPSCALE",
        _bool,
        False,
        "Let renditions ask for `upscale=true` (bigger than the original).",
    ),
    Setting("RENDER_DEFAULT_FORMAT", str, "webp", "Output format when a request names none."),
    Setting(
        "RENDITION_PREVIEWS",
        _bool,
        True,
        "Keep a 1024 px preview of each large image (JPEGs at upload, other formats in a "
        "background job; a few per cent of its bytes); renditions up to 512 px start from it "
        "instead of decoding the original.",
    ),
    Setting(
        "RENDITION_FRONT",
        _bool,
        True,
        "Answer repeat requests for stored renditions in one query, before the full request "
        "stack (local data folder; the same rate-limit budget).",
    ),
    Setting(
        "RENDER_BACKGROUND",
        str,
        "#ffffff",
        "Colour transparent pixels become in formats without alpha (JPEG).",
    ),
    Setting(
        "TRASH_DAYS",
        int,
        30,
        "Days a deleted image stays in the tenant's trash (restorable) before `image-repo gc` "
        "purges it; 0 turns the trash off (a delete is final at once).",
    ),
    Setting(
        "AUTO_MIGRATE",
        _bool,
        False,
        "Apply database migrations when gunicorn starts (always done on the embedded default).",
    ),
    Setting(
        "S3_BUCKET",
        str,
        None,
        "Keep image bytes in this S3 bucket instead of the data folder.",
    ),
    Setting("S3_PREFIX", str, "", "Key prefix inside the bucket (e.g. `image-repo/`)."),
    Setting(
        "S3_ENDPOINT_URL",
        str,
        None,
        "S3-compatible endpoint (MinIO, Ceph RGW, R2); default AWS (`AWS_ENDPOINT_URL` works too).",
    ),
    Setting("S3_REGION", str, None, "Region (default: `AWS_DEFAULT_REGION`)."),
    Setting(
        "S3_ACCESS_KEY_ID",
        str,
        None,
        "Access key (default: boto3's usual sources, e.g. `AWS_ACCESS_KEY_ID`).",
    ),
    Setting("S3_SECRET_ACCESS_KEY", str, None, "Secret key (default: `AWS_SECRET_ACCESS_KEY`)."),
    Setting(
        "S3_ADDRESSING_STYLE",
        str,
        None,
        "`path` for servers without virtual-host buckets (MinIO, Ceph RGW); default `auto`.",
    ),
    Setting(
        "S3_PRESIGNED_REDIRECTS",
        _bool,
        False,
        "Answer downloads of originals and cached renditions with a redirect to a "
        "short-lived presigned S3 URL (moves bandwidth off the app).",
    ),
    Setting("S3_PRESIGN_SECONDS", int, 300, "Lifetime of a presigned URL, in seconds."),
    Setting(
        "REDIS_URL",
        str,
        None,
        "Redis URL for rate-limit counters shared by several instances (default: a file in "
        "the data folder, shared by one instance's processes).",
    ),
    # --- background jobs (image_repo.jobs) ---
    Setting(
        "QUEUE_URL",
        str,
        None,
        "Where queued jobs wait: `redis://host:6379/1`, or `sqlite:////path/queue.db` (default: "
        "Redis at `IMAGE_REPO_REDIS_URL` when set, else `queue.db` in the data folder).",
    ),
    Setting(
        "QUEUE_NAME",
        str,
        "image-repo",
        "Name of the queue in its store: instances with their own databases that share one "
        "Redis need names of their own.",
    ),
    Setting(
        "QUEUE_THREADS",
        int,
        2,
        "Worker threads `image-repo serve` runs for queued jobs on the embedded queue "
        "(0: none; run `image-repo worker`).",
    ),
    Setting(
        "JOB_LEASE",
        int,
        600,
        "Seconds a worker holds a job; a job still pending after its lease lost its worker "
        "(killed) and is queued again.",
    ),
    Setting("JOB_RETRIES", int, 4, "Times a failed job is retried before it is marked failed."),
    Setting(
        "JOB_RETRY_DELAY",
        int,
        10,
        "Seconds before a failed job's first retry; each further retry waits twice as long.",
    ),
    Setting(
        "RATELIMIT_READ",
        str,
        "600 per minute",
        "Read budget per API key (`limits` notation, e.g. `600 per minute`).",
    ),
    Setting("RATELIMIT_WRITE", str, "120 per minute", "Write budget per API key."),
    Setting("RATELIMIT_ENABLED", _bool, True, "Turn per-key rate limits on or off."),
    Setting(
        "GROUP_PERMISSIONS",
        _json_object,
        None,
        "JSON object mapping group name to a list of permissions, replacing the built-in map.",
    ),
    Setting(
        "OPERATOR_KEY_SHA256",
        str,
        None,
        "SHA-256 (hex) of the operator credential allowed to manage tenants over HTTP "
        "(default: tenant management over HTTP is off).",
    ),
    Setting(
        "BIND", str, "127.0.0.1:8000", "gunicorn: address to listen on (`0.0.0.0:8000` for all)."
    ),
    Setting(
        "WORKERS",
        int,
        None,
        "gunicorn: worker processes (default: CPU cores + 1).",
    ),
    Setting(
        "FORWARDED_ALLOW_IPS",
        str,
        "127.0.0.1",
        "gunicorn: proxies trusted to set `X-Forwarded-*` headers.",
    ),
    # --- faces and people (domain.faces) ---
    Setting(
        "FACES",
        _bool,
        False,
        "Allow face analysis (faces, descriptors, people); each tenant must also turn its own "
        "switch on (`image-repo tenants update NAME --faces on`, or `PATCH /account/faces`).",
    ),
    # --- signed URLs, share links, LAN discovery ---
    Setting(
        "SIGNED_URL_TTL",
        int,
        3600,
        "Seconds the signed URLs in `urls` (`?urls=true`) stay valid at most; their expiry is "
        "rounded down to a quarter of this, so the same URL comes back for a while (cacheable).",
    ),
    Setting(
        "SIGNED_URL_MAX_TTL",
        int,
        7 * 86400,
        "Longest `expires_in` the signImageUrl operation grants, in seconds.",
    ),
    Setting(
        "SHARE_DEFAULT_TTL",
        int,
        7 * 86400,
        "Seconds a share link lives when `expires_in` is not given.",
    ),
    Setting("SHARE_MAX_TTL", int, 90 * 86400, "Longest `expires_in` a share link may ask, in s."),
    Setting(
        "SHARE_RATELIMIT",
        str,
        "300 per minute",
        "Requests one share link may serve (pages and images together), `limits` notation.",
    ),
    Setting(
        "SHARE_PASSWORD_RATELIMIT",
        str,
        "10 per 15 minutes",
        "Password attempts one protected share link accepts, right or wrong.",
    ),
    Setting(
        "ADVERTISE",
        _bool,
        False,
        "Publish the service on the local network over mDNS/DNS-SD (`_image-repo._tcp`), "
        "as `image-repo serve --advertise` does.",
    ),
    Setting(
        "PROPAGATE_EXCEPTIONS",
        _bool,
        False,
        "Re-raise unhandled exceptions (debugging only; clients then get no JSON error).",
    ),
)

SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}

# Fixed settings: not meant to vary between deployments.
STATIC_CONFIG: dict[str, Any] = {
    "APP_NAME": "Image Repo",
    "API_TITLE": "Image Repo",
    "API_VERSION": "0.1.0",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": "/docs/assets/swagger-ui/",
    "OPENAPI_SWAGGER_UI_CONFIG": {"persistAuthorization": True, "tryItOutEnabled": True},
    "OPENAPI_REDOC_PATH": "/redoc",
    "OPENAPI_REDOC_URL": "/docs/assets/redoc/redoc.standalone.js",
}


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env_name)
        if raw is None and setting.key == "SECRET_KEY":
            raw = environ.get("FLASK_SECRET_KEY1")
        if raw is None:
            values[setting.key] = setting.default
            continue
        try:
            values[setting.key] = setting.cast(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.env_name} is invalid: {exc}") from exc
    return values


def _validate(config: dict[str, Any]) -> None:
    env = config["ENV"]
    if env not in {"development", "production"}:
        raise ConfigError(f"{ENV_PREFIX}ENV must be 'development' or 'production', not {env!r}")
    secret = config.get("SECRET_KEY")
    if env == "production" and (not secret or secret == DEV_SECRET_KEY):
        raise ConfigError(
            f"production needs a secret key: set {ENV_PREFIX}SECRET_KEY to a long random value"
        )
    for key in (
        "MAX_UPLOAD_BYTES",
        "MAX_PIXELS",
        "MAX_FRAMES",
        "MAX_JPEG_SCANS",
        "MAX_DECODED_PIXELS",
        "DECODE_TIMEOUT",
        "RENDER_MAX_SIDE",
        "S3_PRESIGN_SECONDS",
        "SIGNED_URL_TTL",
        "SIGNED_URL_MAX_TTL",
        "SHARE_DEFAULT_TTL",
        "SHARE_MAX_TTL",
    ):
        if config[key] <= 0:
            raise ConfigError(f"{SETTINGS_BY_KEY[key].env_name} must be positive")
    if config["TRASH_DAYS"] < 0:
        raise ConfigError(f"{ENV_PREFIX}TRASH_DAYS must be 0 (no trash) or more days")
    if config["RENDER_DEFAULT_FORMAT"] not in ("jpeg", "png", "webp", "avif"):
        raise ConfigError(f"{ENV_PREFIX}RENDER_DEFAULT_FORMAT must be jpeg, png, webp or avif")
    if config["SHARE_DEFAULT_TTL"] > config["SHARE_MAX_TTL"]:
        raise ConfigError(
            f"{ENV_PREFIX}SHARE_DEFAULT_TTL must not exceed {ENV_PREFIX}SHARE_MAX_TTL"
        )
    _validate_jobs(config)
    sizes = config["THUMBNAIL_SIZES"]
    if not sizes or not all(isinstance(v, int) and 0 < v <= 8192 for v in sizes.values()):
        raise ConfigError(
            f"{ENV_PREFIX}THUMBNAIL_SIZES must map names to pixel sizes from 1 to 8192"
        )


def _validate_jobs(config: dict[str, Any]) -> None:
    for key in ("JOB_LEASE", "JOB_RETRY_DELAY"):
        if config[key] <= 0:
            raise ConfigError(f"{SETTINGS_BY_KEY[key].env_name} must be positive")
    for key in ("JOB_RETRIES", "QUEUE_THREADS"):
        if config[key] < 0:
            raise ConfigError(f"{SETTINGS_BY_KEY[key].env_name} must be 0 or more")
    url = config.get("QUEUE_URL")
    if url and not url.startswith(("sqlite:///", "redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"{ENV_PREFIX}QUEUE_URL must be a redis:// URL or a sqlite:/// path, not {url!r}"
        )


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Settings from the environment, then ``overrides``, validated."""
    config = dict(STATIC_CONFIG)
    config.update(_from_environ(os.environ if environ is None else environ))
    config.update(overrides or {})
    if config["SECRET_KEY"] is None and config["ENV"] != "production":
        config["SECRET_KEY"] = DEV_SECRET_KEY
    data_dir = config["DATA_DIR"]
    config["DATA_DIR"] = Path(data_dir) if data_dir is not None else default_data_dir()
    config["EMBEDDED_DATABASE"] = not config["DATABASE_URL"]
    if config["EMBEDDED_DATABASE"]:
        config["DATABASE_URL"] = f"sqlite:///{config['DATA_DIR'] / 'image-repo.db'}"
    # The request body holds the file plus the other form fields.
    config["MAX_CONTENT_LENGTH"] = config["MAX_UPLOAD_BYTES"] + 1024 * 1024
    config["DEBUG"] = False
    _validate(config)
    return config
