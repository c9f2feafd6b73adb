"""Domain errors: what went wrong, in the domain's words.

The HTTP layer maps each class to one HTTP status (``http.errors``); the
domain itself knows nothing of HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class; ``message`` is a sentence for the client."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidInput(DomainError):
    pass


class PreconditionFailed(DomainError):
    pass


class QuotaExceeded(DomainError):
    pass


class TooLarge(DomainError):
    pass


class UnsupportedMedia(DomainError):
    pass


class BackendUnavailable(DomainError):
    pass
