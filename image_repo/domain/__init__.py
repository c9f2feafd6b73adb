"""Framework-free logic: images, ingest, tenancy, albums, renditions, similar, maintenance, permissions, errors, ids, locks."""
