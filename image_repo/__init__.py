"""Image Repo: a self-hostable image repository served as a REST microservice."""

__all__ = ["create_app"]


def __getattr__(name: str):
    # Lazy, so that importing a submodule (gunicorn's config module) does not
    # import the whole app before it has set up the process environment.
    if name == "create_app":
        from image_repo.http.app import create_app

        return create_app
    raise AttributeError(name)
