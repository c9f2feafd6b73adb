"""URL converters for our ids: a path matches a route only with a well-formed id,
so ``/images/timeline`` is never mistaken for an image and the spec states
each id's shape."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import BaseConverter

ID_BODY = "[a-z2-7]{20}"  # see image_repo.domain.ids.new_id


def _converter(prefix: str) -> type[BaseConverter]:
    return type(f"{prefix.title()}IdConverter", (BaseConverter,), {"regex": f"{prefix}_{ID_BODY}"})


CONVERTERS = {
    "image_id": _converter("img"),
    "collection_id": _converter("col"),
    "key_id": _converter("key"),
    "person_id": _converter("per"),
    "face_id": _converter("fce"),
    "share_id": _converter("shr"),
}


def register_converters(app: Flask, api) -> None:
    """Before any route is added: werkzeug compiles rules as they come."""
    for name, converter in CONVERTERS.items():
        app.url_map.converters[name] = converter
        api.register_converter(converter, lambda c: {"type": "string", "pattern": f"^{c.regex}$"})
