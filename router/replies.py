"""What a handler answers, decoupled from aiohttp so the engine can store it verbatim."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, final

import orjson

from router.errors import RouterError


@final
@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any) -> Reply:
        return cls(status, orjson.dumps(obj))

    @classmethod
    def error(cls, err: RouterError) -> Reply:
        return cls(err.http_status, err.body(), dict(err.headers))


@final
@dataclass(frozen=True, slots=True)
class IdemTicket:
    """Proof that this request owns an idempotency key until it stores its response."""

    shard: int
    merchant_id: str
    key: str
    owner: str
