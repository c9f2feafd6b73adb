import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from image_repo.config import DEV_SECRET_KEY, SETTINGS, ConfigError, load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_for_development(tmp_path):
    config = load_config(environ={"IMAGE_REPO_DATA_DIR": str(tmp_path)})
    assert config["ENV"] == "development"
    assert config["APP_NAME"] == "Image Repo"
    assert config["SECRET_KEY"] == DEV_SECRET_KEY
    assert config["DATA_DIR"] == tmp_path
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'image-repo.db'}"


def test_environment_variables_are_read():
    config = load_config(
        environ={
            "IMAGE_REPO_ENV": "production",
            "IMAGE_REPO_SECRET_KEY": "s3cret-value",
            "IMAGE_REPO_MAX_PIXELS": "1234",
            "IMAGE_REPO_CORS_ORIGINS": "https://a.example, https://b.example",
            "IMAGE_REPO_PROPAGATE_EXCEPTIONS": "false",
        }
    )
    assert config["ENV"] == "production"
    assert config["SECRET_KEY"] == "s3cret-value"
    assert config["MAX_PIXELS"] == 1234
    assert config["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert config["PROPAGATE_EXCEPTIONS"] is False


def test_tutorial_secret_variable_is_a_fallback():
    assert load_config(environ={"FLASK_SECRET_KEY1": "old"})["SECRET_KEY"] == "old"
    both = {"FLASK_SECRET_KEY1": "old", "IMAGE_REPO_SECRET_KEY": "new"}
    assert load_config(environ=both)["SECRET_KEY"] == "new"


@pytest.mark.parametrize("secret", [None, DEV_SECRET_KEY, ""])
def test_production_refuses_missing_or_default_secret(secret):
    environ = {"IMAGE_REPO_ENV": "production"}
    if secret is not None:
        environ["IMAGE_REPO_SECRET_KEY"] = secret
    with pytest.raises(ConfigError, match="IMAGE_REPO_SECRET_KEY"):
        load_config(environ=environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IMAGE_REPO_ENV", "staging"),
        ("IMAGE_REPO_MAX_PIXELS", "lots"),
        ("IMAGE_REPO_MAX_PIXELS", "0"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config(environ={name: value})


def _production_env_without_secret():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("IMAGE_REPO_SECRET_KEY", "FLASK_SECRET_KEY1")
    }
    env["IMAGE_REPO_ENV"] = "production"
    return env


def test_cli_refuses_to_start_in_production_without_secret():
    result = subprocess.run(
        [sys.executable, "-m", "image_repo", "routes"],
        env=_production_env_without_secret(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "IMAGE_REPO_SECRET_KEY" in lines[0]


def test_gunicorn_refuses_to_start_in_production_without_secret():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:image_repo.gunicorn_conf",
            "image_repo.wsgi:app",
        ],
        env=_production_env_without_secret(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "IMAGE_REPO_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_setting_is_in_the_readme_table():
    readme = README.read_text()
    rows = set(re.findall(r"^\| `(IMAGE_REPO_[A-Z0-9_]+)` \|", readme, re.MULTILINE))
    for setting in SETTINGS:
        assert setting.env_name in rows, f"{setting.env_name} is not in the README's table"
