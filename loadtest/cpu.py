"""CPU accounting from /proc: per process, the whole machine, and the hypervisor's steal."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def _machine_cpu_s() -> tuple[float, float]:
    """(busy, steal) core-seconds since boot, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq = values[:7]
    steal = values[7] if len(values) > 7 else 0
    return (user + nice + system + irq + softirq) / _CLK_TCK, steal / _CLK_TCK


@dataclass
class CpuSample:
    procs: dict[str, float]
    busy: float
    steal: float
    at: float

    @staticmethod
    def take(pids: Mapping[str, Sequence[int]]) -> CpuSample:
        busy, steal = _machine_cpu_s()
        procs = {name: sum(_proc_cpu_s(p) for p in ps) for name, ps in pids.items()}
        return CpuSample(procs, busy, steal, time.monotonic())


def cpu_seconds(a: CpuSample, b: CpuSample) -> dict[str, float]:
    """CPU time (user + system) each watched process used over [a, b], in seconds."""
    return {name: b.procs[name] - a.procs[name] for name in a.procs}


def cpu_share(a: CpuSample, b: CpuSample) -> dict[str, float]:
    """Percent of one core per process over [a, b]; `other` is the rest of the machine."""
    span = max(b.at - a.at, 1e-9)
    share = {name: 100.0 * used / span for name, used in cpu_seconds(a, b).items()}
    machine = 100.0 * (b.busy - a.busy) / span
    share["other"] = max(0.0, machine - sum(share.values()))
    share["steal"] = 100.0 * (b.steal - a.steal) / span
    return {k: round(v) for k, v in share.items()}


def machine_info(idle_sample_s: float = 1.0) -> dict[str, Any]:
    """Cores, load average, and what the rest of the machine uses while we run nothing
    (% of one core, over `idle_sample_s`): the noise the figures carry."""
    before = CpuSample.take({})
    time.sleep(idle_sample_s)
    share = cpu_share(before, CpuSample.take({}))
    return {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "other_cpu_pct_idle": share["other"], "steal_pct_idle": share["steal"]}
