"""The grab load driver: one process, asyncio + uvloop + aiohttp client.

    python -m loadtest.grab_driver race --base-url URL --plan FILE [--connections 256]
    python -m loadtest.grab_driver loop --base-url URL --plan FILE [--seconds 10] ...
    python -m loadtest.grab_driver loop --hello-url URL --plan FILE ...

`race`: every user of the plan grabs the plan's one packet once, `--connections`
requests in flight at a time, from the wall-clock `--start-at` (the connections are
opened before it); it ends when all have been answered. `loop`: a closed
loop (one request in flight per connection) where each request grabs a random packet
of the plan as a random user of the plan, for `--warmup` + `--seconds` from the
wall-clock `--start-at`; with `--hello-url` the same requests go to the hello-world
instead, so the two throughputs are measured by the same client code.

It runs in its own process so that its CPU is never counted as the gateway's. The API
key comes from PAYROUTER_BENCH_API_KEY (argv is readable by other users). A progress
line a second goes to stderr; one JSON object to stdout at the end (see `Tally.result`).
An answer is counted by status and, for an error, by its code ("409 red_packet_empty").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

API_KEY_ENV = "PAYROUTER_BENCH_API_KEY"
_PROGRESS_EVERY_S = 1.0


def outcome_of(status: int, body: bytes) -> str:
    """"201", or "409 red_packet_empty": a status with the error's code when there is one."""
    if status < 400:
        return str(status)
    try:
        return f"{status} {orjson.loads(body)['error']['code']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return str(status)


class Tally:
    """What the driver saw: outcomes over the whole run and in the window, the latency of
    every request answered in the window, the amounts granted by new grabs."""

    def __init__(self) -> None:
        self.total: Counter[str] = Counter()
        self.window: Counter[str] = Counter()
        self.latencies_us: list[int] = []
        self.granted: list[int] = []  # the amount of every 201 grab
        self.winners: list[str] = []  # race: the users whose grab was new

    def add(self, outcome: str, latency_s: float, in_window: bool) -> None:
        self.total[outcome] += 1
        if in_window:
            self.window[outcome] += 1
            self.latencies_us.append(int(latency_s * 1e6))

    def result(self, window_s: float, cpu_s: float, late_s: float) -> dict[str, Any]:
        return {"window_s": window_s, "window_statuses": dict(self.window),
                "total_statuses": dict(self.total), "latencies_us": self.latencies_us,
                "granted": self.granted, "winners": self.winners, "cpu_s": cpu_s,
                "late_s": late_s}


class Grabber:
    """One keep-alive session posting grabs; records what each answer was."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, tally: Tally) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.tally = tally
        self.headers = {"Content-Type": "application/json"}
        if key := os.environ.get(API_KEY_ENV):
            self.headers["Authorization"] = f"Bearer {key}"

    async def grab(self, url: str, user: str, in_window: Callable[[float], bool],
                   keep_winner: bool = False) -> str:
        body = b'{"user":"' + user.encode() + b'"}'
        t0 = time.perf_counter()
        try:
            async with self.session.post(url, data=body, headers=self.headers) as resp:
                raw = await resp.read()
                outcome = outcome_of(resp.status, raw)
                if resp.status == 201:
                    self.tally.granted.append(int(orjson.loads(raw)["amount"]))
                    if keep_winner:
                        self.tally.winners.append(user)
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError as exc:
            outcome = type(exc).__name__
        t1 = time.perf_counter()
        self.tally.add(outcome, t1 - t0, in_window(t1))
        return outcome

    def grab_url(self, packet: str) -> str:
        return f"{self.base_url}/v1/red_packets/{packet}/grabs"


async def progress(tally: Tally, label: str, planned: Callable[[], str],
                   stop: asyncio.Event) -> None:
    """A line a second on stderr: answers per second, new grabs so far, what is left."""
    seen = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _PROGRESS_EVERY_S)
        done = sum(tally.total.values())
        errors = sum(v for k, v in tally.total.items() if not k.startswith("2"))
        print(f"{label}: {done - seen:,}/s, {done:,} answered, {len(tally.granted):,} new "
              f"grabs, {errors:,} other answers, {planned()}", file=sys.stderr, flush=True)
        seen = done


async def race(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    """Each user of the plan grabs its one packet once, `connections` at a time."""
    users: list[str] = plan["users"]
    tally = Tally()
    queue = iter(users)
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        grabber = Grabber(session, args.base_url, tally)
        url = grabber.grab_url(plan["packet"])
        # Open every connection first: the race measures grabs, not TCP handshakes.
        await asyncio.gather(*(_touch(session, f"{grabber.base_url}/healthz")
                               for _ in range(args.connections)))
        delay = args.start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        stop = asyncio.Event()
        begin = time.perf_counter()

        def left() -> str:
            done = sum(tally.total.values())
            rate = done / max(time.perf_counter() - begin, 1e-9)
            return f"ETA {(len(users) - done) / max(rate, 1.0):.0f} s"

        ticker = asyncio.create_task(progress(tally, "race", left, stop))
        c0 = time.process_time()

        async def worker() -> None:
            for user in queue:
                await grabber.grab(url, user, _always, keep_winner=True)

        await asyncio.gather(*(worker() for _ in range(args.connections)))
        elapsed = time.perf_counter() - begin
        cpu = time.process_time() - c0
        stop.set()
        await ticker
    return tally.result(elapsed, cpu, max(0.0, -delay))


async def loop(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    """Closed loop: random packet, random user, until the window ends."""
    packets: list[str] = plan["packets"]
    users: list[str] = plan["users"]
    tally = Tally()
    perf = time.perf_counter
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        grabber = Grabber(session, args.base_url or "", tally)
        delay = args.start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        begin = perf()
        w_start: float = begin + args.warmup
        w_end: float = w_start + args.seconds

        def in_window(t: float) -> bool:
            return w_start <= t <= w_end

        def left() -> str:
            return f"ETA {max(0.0, w_end - perf()):.0f} s"

        stop = asyncio.Event()
        ticker = asyncio.create_task(progress(tally, args.label, left, stop))
        choose = random.randrange
        fixed_url: str | None = args.hello_url

        async def worker() -> None:
            while perf() < w_end:
                url = fixed_url or grabber.grab_url(packets[choose(len(packets))])
                outcome = await grabber.grab(url, users[choose(len(users))], in_window)
                if not outcome[0].isdigit():
                    await asyncio.sleep(0.01)  # a refused connection must not spin

        async def cpu_in_window() -> float:
            await asyncio.sleep(max(0.0, w_start - perf()))
            c0 = time.process_time()
            await asyncio.sleep(max(0.0, w_end - perf()))
            return time.process_time() - c0

        cpu_task = asyncio.create_task(cpu_in_window())
        await asyncio.gather(*(worker() for _ in range(args.connections)))
        cpu = await cpu_task
        stop.set()
        await ticker
    return tally.result(args.seconds, cpu, max(0.0, -delay))


def _always(_: float) -> bool:
    return True


async def _touch(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url) as resp:
        await resp.read()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.grab_driver", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("race", "loop"))
    p.add_argument("--plan", type=Path, required=True,
                   help='JSON: race {"packet", "users"}; loop {"packets", "users"}')
    p.add_argument("--base-url", default="", help="the gateway, http://127.0.0.1:PORT")
    p.add_argument("--hello-url", help="loop: send every request here instead")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--start-at", type=float, default=0.0, help="unix time to begin at")
    p.add_argument("--timeout", type=float, default=15.0, help="per request, seconds")
    p.add_argument("--label", default="grabs", help="names the progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.connections < 1 or args.seconds <= 0 or args.warmup < 0:
        print("grab_driver: need --connections >= 1, --seconds > 0, --warmup >= 0",
              file=sys.stderr)
        return 2
    if not (args.base_url or args.hello_url):
        print("grab_driver: need --base-url (or, in loop mode, --hello-url)", file=sys.stderr)
        return 2
    plan = orjson.loads(args.plan.read_bytes())
    run: Callable[[argparse.Namespace, dict[str, Any]],
                  Coroutine[Any, Any, dict[str, Any]]] = race if args.mode == "race" else loop
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(args, plan))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
