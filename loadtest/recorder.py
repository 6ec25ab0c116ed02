"""What the open-loop driver records: HdrHistograms and a per-second time series.

Times are `time.perf_counter()` seconds relative to the run's start; latencies are
recorded in microseconds. A request belongs to the measured window by its *intended* send
time (the schedule's, not the moment it really left), so the window holds exactly the
requests that the schedule put in it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 120_000_000  # two minutes: far above any request timeout
DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram(digits: int = DIGITS) -> Any:
    return HdrHistogram(LOWEST_US, HIGHEST_US, digits)


def summary_ms(hist: Any) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean of a microsecond histogram, in milliseconds."""
    if hist.get_total_count() == 0:
        return {}
    out = {f"p{p:g}": hist.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    out["max"] = hist.get_max_value() / 1000
    out["mean"] = hist.get_mean_value() / 1000
    return {k: round(v, 3) for k, v in out.items()}


@dataclass
class Second:
    """One second of the run: by actual send time, completion time and intended time."""

    sent: int = 0
    completed: int = 0
    errors: int = 0
    latency: Any = field(default_factory=lambda: new_histogram(2))  # by intended second

    def as_json(self, t: int, in_window: bool) -> dict[str, Any]:
        lat = self.latency
        has = lat.get_total_count() > 0
        return {"t": t, "window": in_window, "sent": self.sent, "completed": self.completed,
                "errors": self.errors,
                "p50_ms": round(lat.get_value_at_percentile(50) / 1000, 3) if has else None,
                "p99_ms": round(lat.get_value_at_percentile(99) / 1000, 3) if has else None}


@dataclass
class Recorder:
    window_start: float
    window_end: float
    corrected: Any = field(default_factory=new_histogram)  # from the intended send time
    uncorrected: Any = field(default_factory=new_histogram)  # from the actual send time
    lag: Any = field(default_factory=new_histogram)  # actual minus intended send time
    window_statuses: Counter[str] = field(default_factory=Counter)
    total_statuses: Counter[str] = field(default_factory=Counter)
    seconds: dict[int, Second] = field(default_factory=dict)
    sent_in_window: int = 0  # actually sent inside the window
    answered_in_window: int = 0  # answered inside the window (whenever intended)
    in_flight: int = 0
    max_in_flight: int = 0

    def _second(self, t: float) -> Second:
        key = int(t)
        found = self.seconds.get(key)
        if found is None:
            found = self.seconds[key] = Second()
        return found

    def in_window(self, intended: float) -> bool:
        return self.window_start <= intended < self.window_end

    def sent(self, intended: float, actual: float) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._second(actual).sent += 1
        if self.in_window(intended):
            self.lag.record_value(max(LOWEST_US, int((actual - intended) * 1e6)))
            if actual < self.window_end:
                self.sent_in_window += 1

    def done(self, intended: float, actual: float, finished: float, outcome: str) -> None:
        self.in_flight -= 1
        ok = outcome.isdigit() and int(outcome) < 400
        self.total_statuses[outcome] += 1
        second = self._second(finished)
        second.completed += 1
        if self.window_start <= finished < self.window_end:
            self.answered_in_window += 1
        if not ok:
            second.errors += 1
        corrected_us = max(LOWEST_US, int((finished - intended) * 1e6))
        self._second(intended).latency.record_value(corrected_us)
        if self.in_window(intended):
            self.window_statuses[outcome] += 1
            self.corrected.record_value(corrected_us)
            self.uncorrected.record_value(max(LOWEST_US, int((finished - actual) * 1e6)))

    def not_sent(self, intended: float) -> None:
        """The in-flight cap was reached: this request never left (an error)."""
        self.total_statuses["not_sent"] += 1
        self._second(intended).errors += 1
        if self.in_window(intended):
            self.window_statuses["not_sent"] += 1

    def series(self) -> list[dict[str, Any]]:
        if not self.seconds:
            return []
        last = max(self.seconds)
        return [self.seconds.get(t, Second()).as_json(
                    t, self.window_start <= t and t + 1 <= self.window_end + 1e-9)
                for t in range(last + 1)]
