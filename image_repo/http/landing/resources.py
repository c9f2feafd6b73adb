from flask.views import MethodView

from image_repo.http.api import PUBLIC
from image_repo.http.errors import invalid
from image_repo.http.landing.blueprint import landing_bp
from image_repo.http.landing.models import LandingPageModel
from image_repo.http.landing.schemas import LandingQuerySchema, LandingSchema


@landing_bp.route("/")
class Landing(MethodView):
    @landing_bp.operation(
        "getLanding",
        permission=PUBLIC,
        errors={422: invalid("query", "name", "Length must be between 1 and 100.")},
    )
    @landing_bp.arguments(LandingQuerySchema(), location="query")
    @landing_bp.response(200, LandingSchema)
    def get(self, args):
        """Greet the caller

        Answers with a greeting and a sentence on what this service is. Needs no key.
        """
        return LandingPageModel(args["name"])
