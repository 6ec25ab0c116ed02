"""A rail's answer before it is signed, the refusal that carries one, and compact JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import final


@final
@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    payload: Mapping[str, object] | None  # None: no body (204)
    withhold: bool = False  # applied, but the caller must never see the answer

    def body(self) -> bytes:
        return b"" if self.payload is None else dump_json(self.payload)


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message})


class Refused(Exception):
    """A request turned down before anything was applied; `reply` answers it."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.payload)
        self.reply = reply


def dump_json(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
