"""The one exception the server turns into a JSON error answer."""

from __future__ import annotations


class ServeError(Exception):
    """A refused request: HTTP status, a message that says what to change, optional headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
