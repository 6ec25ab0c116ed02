"""The suite's picture: throughput and latency percentiles over time, open-loop run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # after choosing the backend

P99_TARGET_MS = 20.0


def plot_open_loop(series: Sequence[dict[str, Any]], rate: float, title: str,
                   path: Path) -> None:
    """Two panels sharing the time axis: requests/s (sent, answered, intended), then
    p50/p99 latency per second of intended send time; what is outside the measured window
    (the warmup, the last answers) is shaded."""
    t = [s["t"] for s in series]
    measured = [s["t"] for s in series if s["window"]]
    scheduled = [s for s in series if not measured or s["t"] <= measured[-1]]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6.5),
                                      constrained_layout=True)
    top.plot([s["t"] for s in scheduled], [s["sent"] for s in scheduled], marker=".",
             label="sent/s")
    top.plot(t, [s["completed"] for s in series], marker=".", label="answered/s")
    top.axhline(rate, linestyle="--", color="grey", label=f"intended {rate:,.0f}/s")
    if any(s["errors"] for s in series):
        top.plot(t, [s["errors"] for s in series], color="red", label="errors/s")
    top.set_ylabel("requests / s")
    top.set_ylim(bottom=0)
    top.legend(loc="lower right")
    top.set_title(title)

    lat_t = [s["t"] for s in series if s["p99_ms"] is not None]
    bottom.plot(lat_t, [s["p50_ms"] for s in series if s["p50_ms"] is not None],
                marker=".", label="p50")
    bottom.plot(lat_t, [s["p99_ms"] for s in series if s["p99_ms"] is not None],
                marker=".", label="p99")
    bottom.axhline(P99_TARGET_MS, linestyle="--", color="red",
                   label=f"p99 target {P99_TARGET_MS:g} ms")
    bottom.set_ylabel("latency, ms (from intended send time)")
    bottom.set_xlabel("seconds since start (by intended send time for latency)")
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="upper right")

    for ax in (top, bottom):  # the warmup before the window, the last answers after it
        if measured and t and t[0] < measured[0]:
            ax.axvspan(t[0], measured[0], color="grey", alpha=0.12)
        if measured and t and t[-1] > measured[-1]:
            ax.axvspan(measured[-1] + 1, t[-1], color="grey", alpha=0.12)
        ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)
