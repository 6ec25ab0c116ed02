"""The grab benchmark's figures: folded from the driver runs, printed as a summary, and
turned into the capacity arithmetic of docs/capacity.md (cores and shards for a rate)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from loadtest.grab_redis import USER_READ_FOR_GRAB
from loadtest.grab_stack import DriverRun
from loadtest.phase import percentile
from loadtest.tables import cpu_line, render

RATIO_TARGET = 0.4  # grabs/s per gateway process against the hello-world
ROUND_TRIP_TARGET = 1.0  # Redis round trips on a grab's request path
PLANNED_LOAD = 0.5  # capacity is planned at half of saturation, as in docs/capacity.md
CAPACITY_RATES = {"2016 peak (409k/s)": 409_000, "2017 peak (760k/s)": 760_000}
ROUND_TRIP_NAMES = ("EVALSHA rp_grab", USER_READ_FOR_GRAB)  # what a grab request sends


def _latency(latencies_us: Sequence[int]) -> dict[str, float]:
    ordered = sorted(latencies_us)
    return {"p50_ms": percentile(ordered, 0.50) / 1000, "p99_ms": percentile(ordered, 0.99) / 1000,
            "max_ms": (ordered[-1] / 1000) if ordered else 0.0}


def _per(run: DriverRun, answers: int) -> dict[str, float]:
    """CPU µs per answer, per watched process."""
    if not answers:
        return {}
    return {name: round(1e6 * used / answers, 1) for name, used in run.cpu_s.items()}


def race_figures(run: DriverRun, racers: int) -> dict[str, Any]:
    r = run.result
    answers = sum(r["total_statuses"].values())
    return {"racers": racers, "answers": answers, "elapsed_s": round(r["window_s"], 3),
            "grabs_per_s": round(answers / max(r["window_s"], 1e-9), 1),
            **{k: round(v, 2) for k, v in _latency(r["latencies_us"]).items()},
            "statuses": r["total_statuses"], "granted_sum": sum(r["granted"]),
            "cpu_pct_of_core": run.cpu_pct, "cpu_us_per_grab": _per(run, answers),
            "redis_commands_per_grab": round(sum(run.commands.values()) / max(1, answers), 2)}


def loop_figures(run: DriverRun, server: str) -> dict[str, Any]:
    r = run.result
    answers = sum(r["window_statuses"].values())
    new = r["window_statuses"].get("201", 0)
    return {"requests": answers, "per_s": round(answers / r["window_s"], 1),
            "new_grabs_per_s": round(new / r["window_s"], 1),
            **{k: round(v, 2) for k, v in _latency(r["latencies_us"]).items()},
            "statuses": r["window_statuses"], "total_statuses": r["total_statuses"],
            "share_201": round(new / answers, 4) if answers else 0.0,
            "cpu_pct_of_core": run.cpu_pct, "cpu_us_per_request": _per(run, answers),
            "server": server, "driver_late_s": r["late_s"],
            "redis_commands_per_request": round(sum(run.commands.values()) / max(1, answers), 2)}


def round_trip_figures(rt: dict[str, Any]) -> dict[str, float]:
    """Per grab answered in the MONITOR sample: the grab script, the reads of its user
    (misses of the one-second user cache), everything else the clients sent (the payout
    sweeper, the webhook worker, the journal, their own user reads), and the commands
    scripts ran."""
    n = max(1, rt["grab_answers"])
    sent: dict[str, int] = rt["sent"]
    path = {name: sent.get(name, 0) / n for name in ROUND_TRIP_NAMES}
    background = sum(v for k, v in sent.items() if k not in ROUND_TRIP_NAMES) / n
    return {**{k: round(v, 3) for k, v in path.items()},
            "request_path": round(sum(path.values()), 3),
            "background": round(background, 3), "in_scripts": round(rt["in_scripts"] / n, 2)}


def capacity(gateway_us: float, redis_us: float, hot_redis_us: float) -> dict[str, Any]:
    """Gateway processes (cores) and Redis shards (masters) for each peak rate, at 100 %
    and at the planned load. One packet's ceiling is one shard's thread: 1 / (Redis CPU
    per answer in the race), a floor, since that CPU includes the racers' user reads,
    which a cluster serves from other shards."""
    rows = {}
    for name, rate in CAPACITY_RATES.items():
        cores = rate * gateway_us / 1e6
        shards = rate * redis_us / 1e6
        rows[name] = {"rate": rate, "gateway_cores_at_100pct": round(cores, 1),
                      "gateway_processes_planned": math.ceil(cores / PLANNED_LOAD),
                      "redis_cores_at_100pct": round(shards, 1),
                      "redis_shards_planned": math.ceil(shards / PLANNED_LOAD)}
    return {"gateway_us_per_grab": gateway_us, "redis_us_per_grab": redis_us,
            "planned_load": PLANNED_LOAD, "rates": rows,
            "one_packet_ceiling_per_s": round(1e6 / hot_redis_us) if hot_redis_us else None}


def derive(report: dict[str, Any]) -> None:
    """Add the ratio, round trips, targets and capacity to `report` (in place)."""
    many, hello, hot = report["many_packets"], report["hello"], report["hot_packet"]
    many["ratio_to_hello"] = round(many["per_s"] / hello["per_s"], 3) if hello["per_s"] else None
    # Per core: robust to a driver-bound hello-world and to the neighbours' load.
    server_us = hello["cpu_us_per_request"].get("target", 0.0)
    grab_us = many["cpu_us_per_request"].get("gateway", 0.0)
    many["cpu_ratio_to_hello"] = round(server_us / grab_us, 3) if grab_us else None
    rt = round_trip_figures(report["round_trips"])
    report["round_trips"]["per_grab"] = rt
    report["targets"] = [
        {"what": "grabs/s per gateway process / hello-world", "measured": many["ratio_to_hello"],
         "goal": f">= {RATIO_TARGET}",
         "met": many["ratio_to_hello"] is not None and many["ratio_to_hello"] >= RATIO_TARGET},
        {"what": "Redis round trips per grab (request path)", "measured": rt["request_path"],
         "goal": f"<= {ROUND_TRIP_TARGET:g}",
         "met": rt["request_path"] <= ROUND_TRIP_TARGET + 0.01},
    ]
    us = many["cpu_us_per_request"]
    report["capacity"] = capacity(us.get("gateway", 0.0), us.get("redis", 0.0),
                                  hot["cpu_us_per_grab"].get("redis", 0.0))


def render_summary(report: dict[str, Any]) -> str:
    derive(report)
    hot, hello, many = report["hot_packet"], report["hello"], report["many_packets"]
    mem, rt = report["memory"], report["round_trips"]["per_grab"]
    s = hot["statuses"]
    lines = ["", f"Hot packet: {hot['racers']:,} users race for one packet "
             f"({hot['answers']:,} answers in {hot['elapsed_s']:.2f} s)"]
    lines += render([
        ("grabs/s", "p50 ms", "p99 ms", "max ms", "201", "409 empty", "other"),
        (f"{hot['grabs_per_s']:,.0f}", f"{hot['p50_ms']:.1f}", f"{hot['p99_ms']:.1f}",
         f"{hot['max_ms']:.1f}", str(s.get("201", 0)), f"{s.get('409 red_packet_empty', 0):,}",
         str(sum(v for k, v in s.items() if k not in ("201", "409 red_packet_empty"))))])
    lines.append("  CPU per answer, µs: " + cpu_line(hot["cpu_us_per_grab"]))
    lines += ["", "Many packets: each request grabs a random packet as a random user"]
    rows = [("target", "req/s", "p50 ms", "p99 ms", "201 share", "ratio")]
    for name, f in (("hello-world", hello), ("grabs", many)):
        rows.append((name, f"{f['per_s']:,.0f}", f"{f['p50_ms']:.2f}", f"{f['p99_ms']:.2f}",
                     f"{f['share_201']:.3f}" if name == "grabs" else "-",
                     f"{f['per_s'] / hello['per_s']:.3f}" if hello["per_s"] else "-"))
    lines += render(rows)
    if many["cpu_ratio_to_hello"] is not None:
        lines.append(f"  per core: the hello-world server used "
                     f"{hello['cpu_us_per_request'].get('target', 0):.0f} µs per request, the "
                     f"gateway {many['cpu_us_per_request'].get('gateway', 0):.0f} µs per grab: "
                     f"{many['cpu_ratio_to_hello']:.3f}x")
    lines.append("  answers (grabs): " + ", ".join(f"{k} x{v:,}" for k, v in
                                                    many["statuses"].items()))
    for name, f in (("hello-world", hello), ("grabs", many)):
        lines.append(f"  CPU % of a core, {name}: " + cpu_line(f["cpu_pct_of_core"]))
        lines.append(f"  CPU µs per request, {name}: " + cpu_line(f["cpu_us_per_request"]))
    top = list(report["commands_in_window"].items())[:6]
    lines.append(f"  Redis commands per grab (window): {many['redis_commands_per_request']:.1f}"
                 " (" + ", ".join(f"{k} {v / max(1, many['requests']):.2f}" for k, v in top)
                 + ")")
    lines.append(f"  Redis round trips per grab (MONITOR sample): rp_grab script "
                 f"{rt['EVALSHA rp_grab']:.2f} + its user's read {rt[USER_READ_FOR_GRAB]:.2f} = "
                 f"{rt['request_path']:.2f}; background {rt['background']:.2f}; "
                 f"commands inside scripts {rt['in_scripts']:.1f}")
    lines += ["", "Redis memory (used_memory deltas; MEMORY USAGE by key):",
              f"  per user {mem['per_user_b']:,.0f} B, per open packet "
              f"{mem['per_open_packet_b']:,.0f} B, per grab {mem['per_grab_b']:,.0f} B",
              "  by key: " + ", ".join(f"{k} {v:,.0f} B" for k, v in mem["by_key_b"].items()),
              "  growth per open packet, by kind of key: " + ", ".join(
                  f"{k} {v:,.0f} B" for k, v in mem["per_open_packet_by_kind_b"].items()),
              "  growth per grab, by kind of key: " + ", ".join(
                  f"{k} {v:,.0f} B" for k, v in mem["per_grab_by_kind_b"].items())]
    lines += ["", "Targets:"]
    lines += render([("target", "measured", "goal", "result")] + [
        (t["what"], f"{t['measured']}", t["goal"], "PASS" if t["met"] else "MISS")
        for t in report["targets"]])
    cap = report["capacity"]
    lines += ["", f"Capacity at {cap['gateway_us_per_grab']:.0f} µs gateway and "
              f"{cap['redis_us_per_grab']:.0f} µs Redis CPU per grab "
              f"(planned at {cap['planned_load']:.0%} of saturation):"]
    for name, row in cap["rates"].items():
        lines.append(f"  {name}: gateway {row['gateway_cores_at_100pct']:,} cores busy -> "
                     f"{row['gateway_processes_planned']:,} processes; Redis "
                     f"{row['redis_cores_at_100pct']:,} cores busy -> "
                     f"{row['redis_shards_planned']:,} shards")
    if cap["one_packet_ceiling_per_s"]:
        lines.append(f"  one packet (one shard's thread): ~{cap['one_packet_ceiling_per_s']:,} "
                     "answers/s at the race's Redis CPU per answer (user reads included)")
    lines += ["", "Checks:"] + [f"  {'PASS' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}"
                                for c in report["checks"]]
    return "\n".join(lines)
