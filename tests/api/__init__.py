"""Tests through Flask's test client (and the CLI runner), on SQLite and PostgreSQL."""
