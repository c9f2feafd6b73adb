"""The WSGI application for gunicorn.

``gunicorn -c python:image_repo.gunicorn_conf image_repo.wsgi:app``
"""

from image_repo.http.app import create_app

app = create_app()
