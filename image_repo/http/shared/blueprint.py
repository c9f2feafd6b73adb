from pathlib import Path

from flask import Blueprint

# The public side of share links: pages and images for visitors with no key.
# A plain Flask blueprint (HTML pages, not operations of the API spec).
shared_bp = Blueprint(
    "shared",
    __name__,
    url_prefix="/s",
    template_folder=str(Path(__file__).parent / "templates"),
)
