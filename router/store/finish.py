"""The common tail of a state change (lib.lua `finish`): the sweeper entry, the webhook
event and the idempotent answer, written by the same script as the change itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.store import codec


@final
@dataclass(frozen=True, slots=True)
class Finish:
    due_action: str = ""  # "" keep, "-" remove, else the new due time in ms
    event_id: str = ""
    event_body: bytes = b""
    webhook_url: str = ""  # "" : the merchant's default URL, looked up at delivery
    idem_key: str = ""  # "" when the change answers no idempotent request
    idem_owner: str = ""
    idem_status: int | None = None  # None: release the key instead of storing an answer
    idem_body: bytes = b""
    journal: bytes = b""  # the money this change moves, as a journal entry (ledger/entries.py)

    def args(self, due_member: str, merchant_id: str, ttl_s: int) -> list[str | bytes | int]:
        return [
            self.due_action,
            due_member,
            self.event_id,
            codec.pack(self.event_body) if self.event_id else b"",
            merchant_id,
            self.webhook_url,
            self.idem_owner,
            "" if self.idem_status is None else self.idem_status,
            codec.pack(self.idem_body) if self.idem_owner else b"",
            ttl_s,
            self.journal,
        ]
