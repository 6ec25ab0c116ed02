"""Child processes of a benchmark: start, watch, wait for readiness, stop.

Every child runs in its own session (Ctrl-C reaches only the benchmark, which stops the
children in order) and gets a parent-death signal on Linux, so a `kill -9` of the
benchmark still ends it. `Children.stop_all` stops them newest first: SIGTERM to the
child's process group, SIGKILL after `STOP_TIMEOUT_S`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import orjson

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    pass


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the benchmark dies (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


PREEXEC = die_with_parent if sys.platform == "linux" else None


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    out: Path | None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text[-lines:])


@dataclass
class Children:
    """Every process the benchmark starts; `stop_all` ends them, newest first."""

    logs: Path
    env: dict[str, str]
    items: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], *, capture: bool = False,
              env: Mapping[str, str] | None = None) -> Child:
        log = self.logs / f"{name}.log"
        out = self.logs / f"{name}.out" if capture else None
        with contextlib.ExitStack() as files:
            err_f: IO[bytes] = files.enter_context(log.open("wb"))
            out_f: IO[bytes] = files.enter_context(out.open("wb")) if out else err_f
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                env={**self.env, **(env or {})}, cwd=REPO_ROOT,
                # Its own session: Ctrl-C reaches only the benchmark, which then stops the
                # children in order (the gateway before the Redis it is writing to).
                start_new_session=True, preexec_fn=PREEXEC,
            )
        child = Child(name, proc, log, out)
        self.items.append(child)
        return child

    def stop(self, child: Child) -> None:
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGTERM)  # its group: workers included
            try:
                child.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        if child in self.items:
            self.items.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.items)):
            self.stop(child)

    def collect(self, child: Child, deadline: float) -> Any:
        """Wait (until the monotonic `deadline`) for a capturing child; its JSON stdout."""
        try:
            code = child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BenchError(f"{child.name} did not finish in time:\n{child.tail()}") from None
        assert child.out is not None
        if code != 0:
            raise BenchError(f"{child.name} exited with {code}:\n{child.tail()}")
        result = orjson.loads(child.out.read_bytes())
        self.stop(child)
        return result


def http_json(method: str, url: str, body: bytes | None = None, timeout: float = 5.0) -> Any:
    req = urllib.request.Request(url, data=body, method=method,  # noqa: S310 - loopback only
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return orjson.loads(resp.read())


def wait_ready(child: Child, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll `url` until it answers 200 (a child's readiness has no event to await)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise BenchError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        with contextlib.suppress(OSError, ValueError):
            http_json("GET", url, timeout=0.5)
            return
        time.sleep(0.05)
    raise BenchError(f"{child.name} not ready at {url} after {timeout_s:.0f} s:\n{child.tail()}")


def group_pids(pgid: int) -> list[int]:
    """A process and the processes of the group it leads (the gateway and its workers)."""
    time.sleep(0.2)
    found = [pgid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == pgid:
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                found.append(int(entry.name))
    return found


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """Cleanup must not be cut short by a second Ctrl-C."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
