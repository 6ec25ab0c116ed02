"""wrk's hello-world figure, for reference only (never used in a ratio)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import orjson

from loadtest.generator import request_body
from loadtest.procs import PREEXEC

_WRK_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")


def wrk_rps(output: str) -> float | None:
    found = _WRK_RPS.search(output)
    return float(found.group(1)) if found else None


def run_wrk(wrk: str, url: str, connections: int, seconds: float, tmp: Path) -> float | None:
    """Run `wrk` (one thread) against the hello-world at `url`; its req/s, or None."""
    script = tmp / "post.lua"
    body = request_body(None, "wrk", 1).decode()
    script.write_text(f'wrk.method = "POST"\nwrk.body = {orjson.dumps(body).decode()}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    try:
        done = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "-s", str(script), url],
            capture_output=True, text=True, timeout=seconds + 30, check=False,
            preexec_fn=PREEXEC,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return wrk_rps(done.stdout)
