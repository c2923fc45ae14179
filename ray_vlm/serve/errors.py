"""Errors a client can act on, and their OpenAI-style JSON body.

Body shape (what the ``openai`` client parses into ``APIStatusError``)::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": null}}
"""

from __future__ import annotations

from typing import Any


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status (4xx, or 5xx for our side).

    Raised in the HTTP front and in generation replicas (it crosses Ray as the cause of a
    ``RayTaskError``, which is also an instance of this class).
    """

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(status, message, param, code, type_)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
