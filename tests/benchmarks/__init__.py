"""Performance harness: files are ``bench_*.py``, collected only when asked for.

Run with ``.venv/bin/python -m pytest tests/benchmarks -o python_files='bench_*.py' -s``.
"""
