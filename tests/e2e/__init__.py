"""Tests against real servers: gunicorn, a browser, the generated SDK, fuzzing, many instances."""
