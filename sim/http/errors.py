"""The one failure type a route raises: an HTTP status and a message for the caller."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A 4xx (or 5xx) answer with a JSON body ``{"error": message, ...extra}``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status, **self.extra}
