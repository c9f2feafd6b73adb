"""Every shell example in README.md runs, in order, against a live gunicorn.

The ```sh blocks are read from README.md (fences may be indented, lines may be
continued with a backslash). Each command is handled by exactly one rule of
``RULES``: skipped for a stated reason, run as ``image-repo`` on the server's
data folder, or run as an HTTP example (httpie or curl). A command no rule
covers fails the test, so a new kind of example is handled on purpose.

HTTP examples run through bash in a scratch folder holding ``photo.jpg`` (a
corpus image), with ``:5000`` replaced by the live port, ``$KEY`` set to the
admin key the README's own ``tenants create ... --json`` prints, and the
placeholders ``IMAGE_ID`` (the image the README's upload made) and ``ETAG``
(its current ETag) as shell variables. Nothing runs in a terminal (standard
input is empty), as in a script: httpie gets ``--check-status`` and, unless
the example gives it itself, ``--ignore-stdin``; curl gets
``--fail-with-body``: any 4xx or 5xx fails. An example that gives
``--ignore-stdin`` (the README's way to script httpie) runs as written, and
is also run without it, to hold the README's word that it is needed. As the
service ignores unknown query parameters, every example is also checked
against the committed spec: a renamed operation, query parameter or body
field fails even where the server would still answer 200.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tests.support.corpus import corpus_path
from tests.support.live_server import gunicorn_server

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SPEC = json.loads((ROOT / "openapi" / "openapi.json").read_text())
VENV_BIN = Path(sys.executable).parent
PHOTO = corpus_path("valid/hopper.jpg")
README_PORT = "5000"
TIMEOUT_S = 60

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```sh[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)


@dataclass(frozen=True)
class Rule:
    pattern: str
    action: str  # "skip", "cli" or "http"
    reason: str


# First match wins: the skips come first.
RULES = (
    Rule(
        r"^python3 -m venv ",
        "skip",
        "creates the virtualenv and installs the project: this test runs inside that install",
    ),
    Rule(
        r"^\.venv/bin/pip install ",
        "skip",
        "installs extras into the virtualenv: this test runs inside that install",
    ),
    Rule(
        r"(^|\s)\.venv/bin/python -m pytest\b",
        "skip",
        "runs the test suite (or the benchmarks) itself",
    ),
    Rule(
        r"(^|\s)(\.venv/bin/)?python -m tests\.benchmarks\.",
        "skip",
        "benchmark tools (seeding a million rows, counting S3 requests): run on purpose only",
    ),
    Rule(
        r"\bgunicorn\b",
        "skip",
        "starts a server that runs until stopped; the fixture's gunicorn is started "
        "with the same config module (-c python:image_repo.gunicorn_conf)",
    ),
    Rule(
        r"\bimage-repo serve\b",
        "skip",
        "starts the development server, which runs until stopped",
    ),
    Rule(
        r"\bimage-repo worker\b",
        "skip",
        "a job worker, which runs until stopped (tests/e2e/test_job_workers.py runs it)",
    ),
    Rule(
        r"\bimage-repo migrate\b",
        "skip",
        "needs a target PostgreSQL and S3: tests/e2e/test_migrate.py runs it against both",
    ),
    Rule(
        r"^\.venv/bin/image-repo ",
        "cli",
        "the command line, on the live server's data folder",
    ),
    Rule(r"^(http|curl) ", "http", "an HTTP example, against the live server"),
)


def readme_commands(text: str | None = None) -> list[str]:
    """The commands of every ```sh block, continuation lines joined, comments dropped."""
    commands = []
    for match in FENCE.finditer(README.read_text() if text is None else text):
        indent = len(match["indent"])
        pending = ""
        for raw in match["body"].splitlines():
            line = raw[indent:] if raw[:indent].strip() == "" else raw
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1].strip() + " "
                continue
            command = (pending + line.strip()).strip()
            pending = ""
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def rule_for(command: str) -> Rule | None:
    return next((rule for rule in RULES if re.search(rule.pattern, command)), None)


# -- what an example asks of the API, read from its words --------------------------

HTTPIE_SEPARATORS = ("==", ":=@", ":=", "=@", "@", "=", ":")


@dataclass
class Call:
    method: str
    path: str
    query: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    form: bool = False


def _httpie_item(token: str) -> tuple[str, str] | None:
    """(separator, name) of an httpie request item, or None."""
    best = None
    for separator in HTTPIE_SEPARATORS:
        index = token.find(separator)
        if index > 0 and (best is None or index < best[0]):
            best = (index, separator)
    return (best[1], token[: best[0]]) if best else None


def parse_call(command: str) -> Call:
    """Method, path, query names and body field names of an httpie or curl example."""
    words = shlex.split(command, comments=True)
    if words[0] == "http":
        return _parse_httpie(words[1:])
    return _parse_curl(words[1:])


def _parse_httpie(words: list[str]) -> Call:
    options = [word for word in words if word.startswith("-")]
    rest = [word for word in words if not word.startswith("-") and word != ">"]
    method = rest.pop(0) if rest and rest[0].isalpha() and rest[0].isupper() else None
    url = rest.pop(0)
    parts = urlsplit(("http://localhost" + url) if url.startswith(":") else url)
    call = Call(method or "GET", parts.path or "/", form="-f" in options or "--form" in options)
    call.query = [name for name, _ in parse_qsl(parts.query)]
    for word in rest:
        item = _httpie_item(word)
        if item is None:
            continue  # a redirection target
        separator, name = item
        if separator == "==":
            call.query.append(name)
        elif separator != ":":  # ":" is a header
            call.fields.append(name)
    if method is None and call.fields:
        call.method = "POST"
    return call


def _parse_curl(words: list[str]) -> Call:
    method, url, fields, form = None, None, [], False
    words = iter(words)
    for word in words:
        if word in ("-X", "--request"):
            method = next(words)
        elif word in ("-H", "--header"):
            next(words)
        elif word in ("-F", "--form"):
            fields.append(next(words).split("=", 1)[0])
            form = True
        elif word in ("-d", "--data", "--json"):
            fields.extend(json.loads(next(words)))
        elif not word.startswith("-"):
            url = word
    parts = urlsplit(url)
    call = Call(method or ("POST" if fields else "GET"), parts.path or "/", form=form)
    call.query = [name for name, _ in parse_qsl(parts.query)]
    call.fields = fields
    return call


def spec_operation(method: str, path: str) -> dict | None:
    """The spec's operation for a concrete path (placeholders match any segment)."""
    templates = sorted(SPEC["paths"], key=lambda template: template.count("{"))
    for template in templates:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            operation = SPEC["paths"][template].get(method.lower())
            if operation is not None:
                return operation
    return None


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def spec_problems(command: str) -> list[str]:
    """What in an HTTP example the spec does not document."""
    call = parse_call(command)
    operation = spec_operation(call.method, call.path)
    if operation is None:
        return [f"{call.method} {call.path} is not an operation of the spec"]
    problems = []
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    problems += [
        f"query parameter {name!r} is not declared" for name in call.query if name not in declared
    ]
    if call.fields:
        content = operation.get("requestBody", {}).get("content", {})
        media_type = "multipart/form-data" if call.form else "application/json"
        if media_type not in content:
            return [*problems, f"{operation['operationId']} takes no {media_type} body"]
        properties = _resolve(content[media_type]["schema"]).get("properties", {})
        problems += [
            f"body field {name!r} is not declared" for name in call.fields if name not in properties
        ]
    return problems


# -- the static checks: fast, no server -----------------------------------------


def test_readme_has_examples_and_each_is_handled_on_purpose():
    commands = readme_commands()
    unhandled = [command for command in commands if rule_for(command) is None]
    assert not unhandled, f"README commands no rule of RULES handles: {unhandled}"
    actions = [rule_for(command).action for command in commands]
    # Guards the extraction itself: a README that changes its fences must not make this vacuous.
    assert actions.count("http") >= 10 and actions.count("cli") >= 2, actions


def scripted(command: str) -> bool:
    """An httpie example written for a script (it ignores standard input)."""
    return command.startswith("http --ignore-stdin ")


def test_readme_shows_how_to_script_httpie():
    # Pasted into a script, the plain examples send a POST (httpie reads standard input).
    examples = [c for c in readme_commands() if scripted(c)]
    assert examples, "no httpie example with --ignore-stdin, the way to script it"
    text = README.read_text()
    assert "no terminal" in text and "405" in text


def test_extraction_reads_indented_fences_and_continuations():
    text = "x\n  ```sh\n  A=1 \\\n    http :5000/\n  # a comment\n  ```\n```json\n{}\n```\n"
    assert readme_commands(text) == ["A=1 http :5000/"]


HTTP_EXAMPLES = [c for c in readme_commands() if (rule := rule_for(c)) and rule.action == "http"]


@pytest.mark.parametrize(
    "command",
    HTTP_EXAMPLES,
    ids=[f"{index}-{' '.join(c.split()[:3])}" for index, c in enumerate(HTTP_EXAMPLES)],
)
def test_readme_http_example_matches_the_spec(command):
    assert f":{README_PORT}" in command, "HTTP examples talk to the documented port"
    assert spec_problems(command) == []


def test_spec_check_catches_a_renamed_parameter():
    assert spec_problems('http :5000/images lmit==20 "Authorization:Bearer $KEY"') == [
        "query parameter 'lmit' is not declared"
    ]
    assert spec_problems("http -f POST :5000/images img@photo.jpg") == [
        "body field 'img' is not declared"
    ]
    assert spec_problems("curl http://127.0.0.1:5000/imagez") == [
        "GET /imagez is not an operation of the spec"
    ]


# -- the run ------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path):
    """A migrated, empty data folder and a gunicorn (two workers) serving it."""
    env = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "data")}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_REPO_")}
    subprocess.run(
        [sys.executable, "-m", "image_repo", "db", "upgrade"],
        env={**clean, **env}, check=True, capture_output=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    with gunicorn_server(env, workers=2) as base:
        yield base, env


class ReadmeSession:
    """Runs README commands one after the other, carrying KEY, IMAGE_ID and ETAG along."""

    def __init__(self, base: str, server_env: dict[str, str], cwd: Path):
        self.base = base
        self.port = base.rsplit(":", 1)[1]
        self.cwd = cwd
        clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_REPO_")}
        self.env = {
            **clean,
            **server_env,
            "PATH": f"{VENV_BIN}{os.pathsep}{clean.get('PATH', '')}",
            # httpie keeps its config and sessions here, not in the user's home.
            "HTTPIE_CONFIG_DIR": str(cwd / ".httpie"),
        }
        (cwd / "openapi").mkdir()  # commands that write into the checkout write here
        shutil.copyfile(PHOTO, cwd / "photo.jpg")

    def bash(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-eu", "-o", "pipefail", "-c", command],
            cwd=self.cwd, env=self.env, capture_output=True, timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,  # no terminal, as in a script
        )  # fmt: skip

    def run(self, command: str) -> None:
        rule = rule_for(command)
        if rule.action == "cli":
            self._cli(command)
        elif rule.action == "http":
            self._http(command)

    def _check(self, command: str, result: subprocess.CompletedProcess) -> None:
        assert result.returncode == 0, (
            f"README example failed (exit {result.returncode}): {command}\n"
            f"stdout: {result.stdout.decode(errors='replace')[:2000]}\n"
            f"stderr: {result.stderr.decode(errors='replace')[:2000]}"
        )

    def _cli(self, command: str) -> None:
        python = shlex.quote(sys.executable)
        prepared = command.replace(f":{README_PORT}", f":{self.port}")
        prepared = re.sub(
            r"(?<![\w/.])\.venv/bin/image-repo\b", f"{python} -m image_repo", prepared
        )
        prepared = re.sub(r"(?<![\w/.])\.venv/bin/", f"{shlex.quote(str(VENV_BIN))}/", prepared)
        result = self.bash(prepared)
        self._check(command, result)
        if re.search(r"\btenants create\b.*--json", command) and "KEY" not in self.env:
            # "KEY holds one": the admin key the README's own tenant creation printed.
            self.env["KEY"] = json.loads(result.stdout)["api_key"]

    def _http(self, command: str) -> None:
        assert "$KEY" not in command or "KEY" in self.env, (
            f"the README uses $KEY before any `tenants create --json` printed one: {command}"
        )
        if re.search(r"\bIMAGE_ID\b", command):
            self._ensure_image(trash_ok=parse_call(command).path.startswith("/trash/"))
        if re.search(r"\bETAG\b", command):
            response = self._api("GET", f"/images/{self.env['IMAGE_ID']}")
            self.env["ETAG"] = response.headers["ETag"]
        prepared = command.replace(f":{README_PORT}", f":{self.port}")
        prepared = re.sub(r"\bIMAGE_ID\b", "${IMAGE_ID}", prepared)
        prepared = re.sub(r"\bETAG\b", "${ETAG}", prepared)
        if prepared.startswith("http "):
            httpie = f"{shlex.quote(sys.executable)} -m httpie --check-status "
            if scripted(command):
                without = httpie + prepared.removeprefix("http --ignore-stdin ")
                refused = self.bash(without)
                assert refused.returncode != 0 and b"405" in refused.stdout, (
                    f"without --ignore-stdin and a terminal, httpie should send a POST: {command}"
                )
            else:
                httpie += "--ignore-stdin "
            prepared = httpie + prepared.removeprefix("http ")
        else:
            prepared = "curl --fail-with-body -sS " + prepared.removeprefix("curl ")
        result = self.bash(prepared)
        self._check(command, result)
        call = parse_call(command)
        if call.method == "POST" and call.path == "/images":
            self.env["IMAGE_ID"] = json.loads(result.stdout)["id"]
        for target in re.findall(r"(?<![0-9&>])>\s*([\w.-]+)", command):
            self._check_file(command, self.cwd / target)

    def _api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, self.base + path, headers={"X-API-Key": self.env["KEY"]}, timeout=30, **kwargs
        )

    def _ensure_image(self, *, trash_ok: bool = False) -> None:
        """An image for IMAGE_ID: the README's upload, or a new one once an example deleted
        it (for the trash's examples, the one the README deleted, while in the trash)."""
        image_id = self.env.get("IMAGE_ID")
        if image_id and self._api("GET", f"/images/{image_id}").status_code == 200:
            return
        if image_id and trash_ok and image_id in self._trashed():
            return
        # Not a README line: the README deletes its image before it shows renditions.
        response = self._api("POST", "/images", files={"image": PHOTO.read_bytes()})
        assert response.status_code in (200, 201), response.text
        self.env["IMAGE_ID"] = response.json()["id"]

    def _trashed(self) -> set[str]:
        response = self._api("GET", "/trash", params={"limit": 200})
        assert response.status_code == 200, response.text
        return {image["id"] for image in response.json()["items"]}

    @staticmethod
    def _check_file(command: str, path: Path) -> None:
        data = path.read_bytes() if path.exists() else b""
        signatures = {".webp": (8, b"WEBP"), ".avif": (4, b"ftyp"), ".jpg": (0, b"\xff\xd8")}
        offset, magic = signatures.get(path.suffix, (0, b""))
        assert data and data[offset : offset + len(magic)] == magic, (
            f"{command}: {path.name} is not a {path.suffix} file ({data[:16]!r})"
        )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_examples_run_in_order(live, tmp_path):
    base, server_env = live
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    session = ReadmeSession(base, server_env, cwd)
    ran = []
    for command in readme_commands():
        if rule_for(command).action != "skip":
            session.run(command)
            ran.append(command)
    assert any(c.startswith("http ") for c in ran) and any(c.startswith("curl ") for c in ran)
