"""The browser gallery at ``/app/``: a page, ES modules and CSS, served by the service.

No build step and nothing from elsewhere: the files in ``static/`` are what the
browser runs. The page talks to the JSON API with the key the person pasted
(kept in the tab's session storage).
"""

from image_repo.web.views import gallery_bp

__all__ = ["gallery_bp"]
