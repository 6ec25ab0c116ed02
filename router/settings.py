"""Frozen settings, read once from TOML + environment and passed down (never global).

Each table of the settings file is a `msgspec.Struct`: router/config_file.py converts the
file into them in one pass, and the `Meta` constraints below are what it checks. Code
that builds settings itself (tests, sandbox mode) is trusted with the ranges; the Redis
URL is checked on every construction because it also comes from the environment and CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from adapters.base import Scene
from adapters.currencies import is_known
from router.security import Secret
from router.store.cluster import SCHEME as CLUSTER_SCHEME
from router.store.cluster import ClusterURL

DEFAULT_DATA_DIR = Path(".payrouter")

Seconds = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class SettingsError(ValueError):
    """A configuration file or variable that cannot be used; the message says which key."""


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One table of the settings file: a misspelt key is an error, not a silent default."""


class RateLimit(Section, frozen=True):
    rps: Annotated[float, msgspec.Meta(gt=0)]
    burst: Count

    def interval_ms(self) -> float:
        """GCRA emission interval: milliseconds between two requests at the steady rate."""
        return 1000.0 / self.rps


class ServerSettings(Section, frozen=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080
    workers: Count = 1
    public_url: str | None = None  # how rails reach /v1/notify/*; default http://host:port
    max_body_bytes: Count = 64 * 1024

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class RedisSettings(Section, frozen=True):
    url: str | None = None  # None: start the embedded redis-server under data_dir
    # Hash-tag shards: outbox streams and sweeper sets, one per shard; ids carry the shard
    # as two hex digits.
    shards: Annotated[int, msgspec.Meta(ge=1, le=256)] = 16
    # "default": AOF fsync every second (a crash of the Redis host loses at most ~1 s).
    # "strict": the embedded server fsyncs every write, and with wait_replicas > 0 every
    # state change waits for that many replicas before it is answered (see docs).
    durability: Literal["default", "strict"] = "default"
    command_timeout_s: Seconds = 5.0  # a Redis that answers nothing for this long is down
    wait_replicas: Annotated[int, msgspec.Meta(ge=0)] = 0
    wait_timeout_ms: Count = 100  # never 0: WAIT 0 would block forever

    def __post_init__(self) -> None:
        if self.url is not None:
            _check_redis_url(self.url)


class RailSettings(Section, frozen=True):
    name: str
    base_url: str = ""
    keys_dir: Path | None = None
    timeout_s: Seconds = 10.0
    rate_limit: RateLimit | None = None  # outbound quota that protects the rail
    # The file's other keys in the rail's table: `adapter`, `dedicated`, `failover_codes`
    # for the router, the rest for the adapter (e.g. `sub_mchid`).
    options: dict[str, Any] = {}


class LimitSettings(Section, frozen=True):
    merchant: RateLimit = RateLimit(rps=2000.0, burst=4000)
    payer: RateLimit = RateLimit(rps=10.0, burst=20)


class IdempotencySettings(Section, frozen=True):
    ttl_s: Count = 25 * 3600  # API.md promises at least 24 h
    lease_s: Seconds = 30.0  # an in-flight claim older than this is taken over


class SweeperSettings(Section, frozen=True):
    interval_s: Seconds = 1.0  # how often each process looks for due work
    first_check_s: Seconds = 15.0  # a payment left processing is first looked at after this
    query_every_s: Seconds = 5.0
    confirm_window_s: Seconds = 30.0  # payer-code payments still unpaid after this: reversed
    unknown_window_s: Seconds = 60.0  # an order the rail never saw is reversed after this
    order_expiry_s: Seconds = 7200.0  # unpaid QR orders are closed after this
    # A charge the rail still does not know after this failed for good: longer than the
    # rails' ~5-minute window for a request's signed timestamp, so it cannot land later.
    never_seen_s: Seconds = 360.0
    lease_s: Seconds = 30.0
    batch: Count = 200


class WebhookSettings(Section, frozen=True):
    retry_schedule_s: tuple[Seconds, ...] = (
        15, 60, 300, 900, 1800, 3600, 3600, 7200, 7200, 7200, 14400, 14400, 21600,
    )  # about 24 h in all, then the event is dead-lettered
    timeout_s: Seconds = 5.0
    claim_idle_s: Seconds = 60.0  # a read but unacknowledged entry is reclaimed after this
    concurrency: Count = 64
    poll_interval_s: Seconds = 0.05  # how often an idle process looks for new events
    shards_per_read: Count = 16  # outbox streams one read covers (rotating over all shards)


class RuleSettings(Section, frozen=True):
    """One routing rule: when `match` holds, try `candidates` ordered by `strategy`.

    `match` is checked against its known keys by router/routing/rules.py."""

    name: str
    candidates: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]
    match: dict[str, Any] = {}
    strategy: Literal["priority", "weighted", "success_rate", "cost"] = "priority"
    weights: dict[str, NonNegative] = {}


class BreakerSettings(Section, frozen=True):
    window_s: Seconds = 10.0  # error rate and latency are judged over this window
    min_calls: Count = 10  # fewer calls than this in the window: no verdict
    # Open at or above this share of failed calls.
    error_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    latency_ms: NonNegative = 0.0  # open when p99 latency is above this (0: latency not used)
    cool_down_s: Seconds = 10.0  # open this long, then half-open
    probes: Count = 5  # calls let through while half-open to test recovery


class RoutingSettings(Section, frozen=True):
    rules: tuple[RuleSettings, ...] = ()
    rules_file: Path | None = None  # rules kept in their own file, reloaded when it changes
    max_attempts: Count = 2  # attempts per payment, failovers included
    fees: dict[str, tuple[float, int]] = {}  # rail: (percent, fixed)
    breaker: BreakerSettings = BreakerSettings()
    sync_interval_s: Seconds = 0.5  # how often a process shares its health figures


class SocialSettings(Section, frozen=True):
    """Red packets and transfers (API.md, "Red packets")."""

    min_share: Count = 1  # fen; a payout rail with a minimum (WeChat: 10) needs it raised
    max_packet_amount: Count = 20_000  # 200.00 CNY
    max_count: Count = 100
    funding_check_s: Seconds = 30.0  # a packet still awaiting payment is looked at after this
    grab_rate: RateLimit = RateLimit(rps=50_000.0, burst=100_000)  # per merchant per shard


class PointsSettings(Section, frozen=True):
    """Merchant points (WeChat Pay's "gifts upon payment"; API.md, "Merchant points"): what
    a payment must be to earn its merchant a point, and what a point is worth."""

    scenes: tuple[Scene, ...] = (Scene.NATIVE, Scene.QUICKPAY)
    currency: str = "CNY"
    min_amount: Count = 100  # minor units: 1.00 CNY
    points_per_payer: Count = 1  # per distinct payer, per merchant, per day
    value_per_point: Count = 100  # minor units of `currency` a point is worth (1 CNY)
    timezone: str = "Asia/Shanghai"  # whose midnight starts a new day

    def __post_init__(self) -> None:
        if not is_known(self.currency):
            raise ValueError(f"unknown currency {self.currency!r}")
        try:
            ZoneInfo(self.timezone)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None


class InvoiceSettings(Section, frozen=True):
    """E-invoices (API.md, "E-invoices (fapiao)")."""

    # The rate of the one item an invoice asked for without items gets (basis points:
    # 600 is 6 %, the VAT rate of most services).
    default_tax_rate_bp: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 600


class Settings(Section, frozen=True):
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    rails: tuple[RailSettings, ...] = ()
    limits: LimitSettings = LimitSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    sweeper: SweeperSettings = SweeperSettings()
    webhooks: WebhookSettings = WebhookSettings()
    routing: RoutingSettings = RoutingSettings()
    social: SocialSettings = SocialSettings()
    points: PointsSettings = PointsSettings()
    invoices: InvoiceSettings = InvoiceSettings()
    sandbox: bool = False  # enables /v1/sandbox/* (drives simulators)
    data_dir: Path = DEFAULT_DATA_DIR
    admin_token: Secret | None = None
    key_pepper: Secret | None = None  # None: one is kept in Redis
    default_method: str | None = None  # rail used when a payment names none

    def rail(self, name: str) -> RailSettings | None:
        for rail in self.rails:  # a handful of rails: a scan beats building a dict
            if rail.name == name:
                return rail
        return None


def _check_redis_url(url: str) -> None:
    """A clear error at start-up for a URL the client cannot use (never echoing it: it
    may hold a password)."""
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == CLUSTER_SCHEME:
        try:
            ClusterURL.parse(url)
        except ValueError as exc:
            raise SettingsError(f"settings: redis.url: {exc}") from None
    elif scheme not in ("redis", "unix"):
        raise SettingsError(f"settings: redis.url: unsupported scheme {scheme!r}; use "
                            f"redis://, unix:// or {CLUSTER_SCHEME}://host:port[,host:port...]")
