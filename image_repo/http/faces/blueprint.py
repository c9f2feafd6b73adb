from image_repo.http.api import Blueprint

faces_bp = Blueprint(
    "faces",
    __name__,
    url_prefix="/",
    description="Faces found in images, the people they are grouped into, and the "
    "tenant's face-analysis switch.",
)
