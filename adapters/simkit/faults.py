"""The fault settings of `POST /sim/faults` (SANDBOX.md, "Breaking things")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import final


@final
@dataclass(frozen=True, slots=True)
class Faults:
    error_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    timeout_rate: float = 0.0
    drop_notify_rate: float = 0.0
    duplicate_notify_rate: float = 0.0

    @classmethod
    def from_json(cls, raw: object) -> Faults:
        """Validated settings; raises `ValueError` with a message fit for the caller."""
        if not isinstance(raw, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        values: dict[str, float] = {}
        for key, value in raw.items():
            if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
            if key.endswith("_rate") and value > 1:
                raise ValueError(f"{key} must be within [0, 1]")
            values[key] = float(value)
        return cls(**values)

    def to_json(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
