"""The performance targets of the standard suite, and how a run's figures meet them.

One 2-core machine, one gateway process, loopback:
- create-payment through `instant` >= 0.50 x the hello-world (closed loop, max rate);
- create-payment through the bank simulator >= 0.25 x the hello-world;
- create-payment through `instant` >= 2.0 x the naive peer (`loadtest.naive_peer`, a
  gateway written in an afternoon, on the same Redis, same generator and body);
- p99 < 20 ms at 70 % of instant's measured maximum, from the open-loop driver (latency
  from the intended send time: coordinated omission corrected). Valid only if the
  driver kept up with the rate and no request failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPEN_LOOP_FRACTION = 0.70


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    what: str
    value: float | None
    op: str  # ">=" or "<"
    target: float
    unit: str
    note: str = ""

    @property
    def passed(self) -> bool:
        if self.value is None or self.note:
            return False
        return self.value >= self.target if self.op == ">=" else self.value < self.target

    def shown(self, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.1f} {self.unit}" if self.unit else f"{value:.3f}"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "what": self.what, "value": self.value, "op": self.op,
                "target": self.target, "unit": self.unit, "pass": self.passed,
                "result": "PASS" if self.passed else "MISS", "note": self.note}


def closed_loop_verdicts(hello_rps: float, instant_rps: float, bank_rps: float,
                         peer_rps: float | None) -> list[Verdict]:
    """The throughput targets; `peer_rps` None: the naive peer was not run."""
    return [
        Verdict("instant_ratio", "create via instant / hello-world",
                _ratio(instant_rps, hello_rps), ">=", 0.50, ""),
        Verdict("bank_ratio", "create via bank simulator / hello-world",
                _ratio(bank_rps, hello_rps), ">=", 0.25, ""),
        Verdict("instant_peer_ratio", "create via instant / naive peer",
                _ratio(instant_rps, peer_rps or 0.0), ">=", 2.0, "",
                "" if peer_rps is not None else "the naive peer was not run"),
    ]


def verdicts(hello_rps: float, instant_rps: float, bank_rps: float, peer_rps: float,
             open_loop: dict[str, Any]) -> list[Verdict]:
    return [*closed_loop_verdicts(hello_rps, instant_rps, bank_rps, peer_rps),
            _open_loop_verdict(open_loop)]


def _ratio(rps: float, baseline: float) -> float | None:
    return round(rps / baseline, 4) if baseline else None


def _open_loop_verdict(open_loop: dict[str, Any]) -> Verdict:
    p99 = open_loop.get("latency_ms", {}).get("p99")
    notes = []
    if not open_loop.get("kept_up", False):
        notes.append(f"driver sent {open_loop.get('achieved_rate', 0):,.0f}/s of "
                     f"{open_loop.get('rate', 0):,.0f}/s intended")
    if open_loop.get("errors"):
        notes.append(f"{open_loop['errors']} failed requests")
    return Verdict("open_loop_p99_ms",
                   f"p99 at {OPEN_LOOP_FRACTION:.0%} of instant max (open loop, CO-corrected)",
                   p99, "<", 20.0, "ms", "; ".join(notes))
