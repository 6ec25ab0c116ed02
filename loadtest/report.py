"""The suite's report: the figures as JSON, as a text table, and as a small HTML page."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.openloop import LAG_WARN_MS
from loadtest.tables import (
    backlog_line,
    cpu_line,
    cpu_per_request_lines,
    render,
    verdict_lines,
    verdict_rows,
)
from loadtest.targets import Verdict


def measurement_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = [["measurement", "req/s", "p50 ms", "p99 ms", "errors", "ratio"]]
    for p in report["closed_loop"]:
        rows.append([f"{p['target']} (closed loop, {report['connections']} conns)",
                     f"{p['rps']:,.0f}", f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}",
                     str(p["errors"]), f"{p['ratio']:.3f}" if p["ratio"] is not None else "-"])
    ol = report["open_loop"]
    lat = ol.get("latency_ms", {})
    rows.append([f"instant (open loop, {ol['rate']:,.0f}/s intended; answered/s)",
                 f"{ol['completed_rate']:,.0f}", f"{lat.get('p50', 0):.2f}",
                 f"{lat.get('p99', 0):.2f}", str(ol["errors"]), "-"])
    return rows


def text(report: dict[str, Any], verdicts: Sequence[Verdict]) -> str:
    lines = render(measurement_rows(report))
    lines.append("")
    lines += verdict_lines(verdicts)
    ol = report["open_loop"]
    unc = ol.get("uncorrected_latency_ms", {})
    lag = ol.get("send_lag_ms", {})
    lines.append(f"open loop: sent {ol['achieved_rate']:,.0f}/s of {ol['rate']:,.0f}/s "
                 f"({'kept up' if ol['kept_up'] else 'DID NOT KEEP UP'}); p99 uncorrected "
                 f"{unc.get('p99', 0):.2f} ms; driver send lag p99 {lag.get('p99', 0):.2f} ms")
    if ol["completed_rate"] < 0.97 * ol["achieved_rate"]:
        lines.append(f"open loop: the gateway answered {ol['completed_rate']:,.0f}/s of "
                     f"{ol['achieved_rate']:,.0f}/s sent: it was saturated, queues grew")
    if lag.get("p99", 0) > LAG_WARN_MS:
        lines.append("open loop: the driver itself sent late (send lag p99 above "
                     f"{LAG_WARN_MS:g} ms): it was short of CPU, and its delay is in the "
                     "latencies")
    for phase in [*report["closed_loop"], {"target": "open loop", **ol}]:
        queued = phase.get("backlog") or {}
        if phase["target"] != "hello-world" and (
                line := backlog_line(queued.get("start"), queued.get("end"))):
            lines.append(f"queued ({phase['target']}): {line}")
    lines.append("CPU during each window, % of one core:")
    for name, cpu in report["cpu_by_phase"].items():
        lines.append(f"  {name:<12}" + cpu_line(cpu))
    lines += cpu_per_request_lines({p["target"]: p["cpu_us_per_request"]
                                    for p in report["closed_loop"]})
    m = report["machine"]
    lines.append(f"machine: {m['cpus']} CPUs; load average {m['loadavg']} before, "
                 f"{m['loadavg_end']} after; other processes {m['other_cpu_pct_idle']}% "
                 "of a core before the run")
    if report.get("wrk_hello_rps"):
        lines.append(f"wrk, hello-world (reference only, not in the ratios): "
                     f"{report['wrk_hello_rps']:,.0f} req/s")
    ledger = report["ledger"]
    lines.append(f"bank ledger: {ledger['charges']} charges for {ledger['bank_ok_total']} "
                 f"successful bank creates -> {'OK' if ledger['ok'] else 'MISMATCH'}")
    return "\n".join(lines)


def _html_table(rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td{_cls(c)}>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cls(cell: str) -> str:
    return {"PASS": ' class="pass"', "MISS": ' class="miss"'}.get(cell, "")


def page(report: dict[str, Any], verdicts: Sequence[Verdict], png: Path | None) -> str:
    """A self-contained page: the targets, the measurements, the plot (inline base64)."""
    img = ""
    if png is not None and png.exists():
        data = base64.b64encode(png.read_bytes()).decode()
        img = f'<img alt="open-loop throughput and latency" src="data:image/png;base64,{data}">'
    notes = "".join(f"<li>{html.escape(v.name)}: {html.escape(v.note)}</li>"
                    for v in verdicts if v.note)
    notes = f"<ul>{notes}</ul>" if notes else ""
    m = report["machine"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>payrouter bench report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: .3em .7em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.pass {{ background: #d8f5d8; font-weight: bold; }}
.miss {{ background: #f8d8d8; font-weight: bold; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>payrouter bench report</h1>
<p>{html.escape(report["created_at"])}; {m["cpus"]} CPUs, load average {m["loadavg"]},
other processes {m["other_cpu_pct_idle"]}% of a core before the run; one gateway process;
everything on loopback. Ratios are to the hello-world measured by the same generator.</p>
<h2>Targets</h2>
{_html_table(verdict_rows(verdicts))}
{notes}
<h2>Measurements</h2>
{_html_table(measurement_rows(report))}
<h2>Open loop over time</h2>
{img}
<p>Full figures: <code>bench-report.json</code>.</p>
</body></html>
"""
