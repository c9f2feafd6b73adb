"""A fresh clone with nothing beside it must pass: nothing refers outside the repository."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = "../" + "shared"  # split so this file does not match itself


def test_nothing_refers_outside_the_repository():
    offenders = [
        str(path.relative_to(ROOT))
        for base in ("image_repo", "tests", ".ci")
        for path in (ROOT / base).rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".md", ".toml", ".cfg", ""}
        and OUTSIDE in path.read_text(errors="ignore")
    ]
    offenders += [
        name for name in ("README.md", "pyproject.toml") if OUTSIDE in (ROOT / name).read_text()
    ]
    assert offenders == []


def test_corpus_is_in_the_repository():
    from tests.support.corpus import CORPUS_DIR, corpus_files

    assert CORPUS_DIR.is_relative_to(ROOT)
    assert all((CORPUS_DIR / name).is_file() for name in corpus_files())
