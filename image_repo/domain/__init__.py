"""The framework-free core: what the service does, with explicit arguments.

images, image_fields (what clients set on an image, and how it is shown
back), ingest, tenancy, albums (collections), renditions, similar,
maintenance, permissions, errors, ids, locks, analyses (background work
on images and its state), previews. Nothing here imports Flask (a test checks): the HTTP
layer, the CLI and scripts call the same functions.

Who commits: the caller. A domain function writes through the session it is
given and flushes, so that the constraints it relies on are checked where it
stands, but it never commits nor rolls back the session. Where a refused
write is an expected answer (a name taken, the same bytes uploaded twice at
once), the write runs in a savepoint (``session.begin_nested()``), so that
only it is undone. The unit of work belongs to the caller, who commits it:
in the HTTP layer the request (``http.sessions``: when the view returns; an
exception rolls everything back), in the CLI each command's session scope
(``cli._session``), in a script or a test whoever opened the session.
"""
