"""Plain-text tables of benchmark figures."""

from __future__ import annotations

from collections.abc import Sequence

from loadtest.phase import Phase
from loadtest.targets import Verdict


def render(rows: Sequence[Sequence[str]]) -> list[str]:
    """First column left-aligned, the others right-aligned; a rule under the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                         strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def phase_table(phases: Sequence[Phase], baseline: float) -> str:
    """Closed-loop phases: req/s, latency, errors, ratio to `baseline`, then what the CPU
    and Redis did and any warning."""
    rows = [("target", "req/s", "p50 ms", "p99 ms", "errors", "ratio")]
    for p in phases:
        rows.append((p.target, f"{p.rps:,.0f}", f"{p.p50_ms:.2f}", f"{p.p99_ms:.2f}",
                     str(p.error_count), f"{p.rps / baseline:.3f}" if baseline else "-"))
    lines = render(rows)
    for p in phases:
        if p.errors:
            lines.append(f"errors ({p.target}): "
                         + ", ".join(f"{k} x{v}" for k, v in p.errors.items()))
    lines.append("CPU during the window, % of one core:")
    for p in phases:
        lines.append(f"  {p.target:<12}" + cpu_line(p.cpu))
    lines += cpu_per_request_lines({p.target: p.cpu_us_per_request() for p in phases})
    for p in phases:
        if p.target != "hello-world" and set(p.statuses) - {"201"} - set(p.errors):
            lines.append(f"warning ({p.target}): 2xx other than 201 (not new payments): "
                         f"{p.statuses}")
    for p in phases:
        if (per := p.redis_per_request()) is not None:
            lines.append(f"Redis commands per request ({p.target}): {per:.1f}")
    for p in phases:
        if p.target != "hello-world" and (line := backlog_line(*p.backlog)):
            lines.append(f"Queued ({p.target}): {line}")
    late = [p for p in phases if p.generator_late_s > 0.2]
    for p in late:
        lines.append(f"warning ({p.target}): a generator began {p.generator_late_s:.2f} s "
                     "late; the window is shorter than asked")
    return "\n".join(lines)


def backlog_line(start: dict[str, int] | None, end: dict[str, int] | None) -> str:
    """The gateway's queues over a window: undelivered webhook events, unchained journal
    movements (window start -> end)."""
    if start is None or end is None:
        return ""
    return ", ".join(f"{name} {start[name]:,} -> {end[name]:,}" for name in end)


def cpu_line(cpu: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.0f}" for k, v in cpu.items())


def cpu_per_request_lines(by_target: dict[str, dict[str, float]]) -> list[str]:
    """Per target, each process's CPU µs per request (a naive peer's process is its
    `gateway`)."""
    lines = ["CPU per request in the window, µs (CPU time / requests completed):"]
    lines += [f"  {target:<12}" + cpu_line(us) for target, us in by_target.items()]
    return lines


def verdict_rows(verdicts: Sequence[Verdict]) -> list[list[str]]:
    rows = [["target", "measured", "goal", "result"]]
    for v in verdicts:
        goal = f"{v.op} {v.target:g}{' ' + v.unit if v.unit else ''}"
        rows.append([v.what, v.shown(v.value), goal, "PASS" if v.passed else "MISS"])
    return rows


def verdict_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """The targets table, then a line per note (why a target could not be met)."""
    return render(verdict_rows(verdicts)) + [f"note ({v.name}): {v.note}"
                                             for v in verdicts if v.note]
