"""Shared infrastructure the app, the CLI and the fast path are built on."""
