"""The one error type of the router and its JSON envelope (see API.md, "Errors")."""

from __future__ import annotations

from typing import final

import orjson


@final
class RouterError(Exception):
    """An error answered to the caller as `{"error": {"code", "message", "param"?}}`."""

    __slots__ = ("code", "extra", "headers", "http_status", "message", "param")

    def __init__(
        self,
        http_status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> bytes:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return orjson.dumps({"error": error})


def validation_error(param: str, message: str) -> RouterError:
    return RouterError(422, "validation_error", message, param=param)


def not_found(what: str = "resource") -> RouterError:
    return RouterError(404, "not_found", f"No such {what}.")


def invalid_state(message: str) -> RouterError:
    return RouterError(409, "invalid_state", message)


def unauthorized() -> RouterError:
    return RouterError(401, "unauthorized", "Missing or invalid API key.")
