"""Moving data in and out of an instance: tenant archives, album ZIPs, whole-instance migration.

Unlike ``domain/`` (which only flushes: the request or command commits),
these are long runs that commit as they go, one image or one batch at a
time, so that an interruption loses nothing done and a re-run finishes the
rest. They call the domain for the rules (ingest, albums, tenants) and never
import Flask: the CLI and HTTP layers drive them.
"""
