"""The one exception type operations raise; the wire layer turns it into a restJson1 error."""

from __future__ import annotations


class ServiceError(Exception):
    """An AWS error by its modeled code (``ResourceNotFoundException`` …).

    ``status`` is normally left out: the wire layer takes it from the service model's
    ``httpStatusCode`` for that error shape, so the status can never disagree with the model.
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidArgumentException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def in_use(message: str) -> ServiceError:
    return ServiceError("ResourceInUseException", message)


def limit(message: str) -> ServiceError:
    return ServiceError("ClientLimitExceededException", message)
