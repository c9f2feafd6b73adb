"""Clients of a running Image Repo over HTTP (the bulk importer), apart from the server's code."""
