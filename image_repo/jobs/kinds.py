"""The analysis kinds there are: importing a module registers its kind.

Add a kind by writing a domain module that calls ``domain.analyses.register``
at import, and importing it here.
"""

from image_repo.domain import previews  # noqa: F401  ("preview")
