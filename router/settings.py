"""Frozen settings, read once from TOML + environment and passed down (never global)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from router.security import Secret
from router.store.cluster import SCHEME as CLUSTER_SCHEME
from router.store.cluster import ClusterURL

DEFAULT_DATA_DIR = Path(".payrouter")


class SettingsError(ValueError):
    """A configuration file or variable that cannot be used; the message says which key."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    rps: float
    burst: int

    def interval_ms(self) -> float:
        """GCRA emission interval: milliseconds between two requests at the steady rate."""
        return 1000.0 / self.rps


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    public_url: str | None = None  # how rails reach /v1/notify/*; default http://host:port
    max_body_bytes: int = 64 * 1024

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str | None = None  # None: start the embedded redis-server under data_dir
    shards: int = 16  # hash-tag shards: outbox streams and sweeper sets, one per shard
    # "default": AOF fsync every second (a crash of the Redis host loses at most ~1 s).
    # "strict": the embedded server fsyncs every write, and with wait_replicas > 0 every
    # state change waits for that many replicas before it is answered (see docs).
    durability: str = "default"
    command_timeout_s: float = 5.0  # a Redis that answers nothing for this long is down
    wait_replicas: int = 0
    wait_timeout_ms: int = 100

    def __post_init__(self) -> None:
        if self.durability not in ("default", "strict"):
            raise SettingsError('[redis] durability must be "default" or "strict"')
        if not 1 <= self.shards <= 256:  # ids carry the shard as two hex digits
            raise SettingsError("[redis] shards must be between 1 and 256")
        if self.url is not None:
            _check_redis_url(self.url)


@dataclass(frozen=True, slots=True)
class RailSettings:
    name: str
    base_url: str = ""
    keys_dir: Path | None = None
    timeout_s: float = 10.0
    rate_limit: RateLimit | None = None  # outbound quota that protects the rail
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LimitSettings:
    merchant: RateLimit = RateLimit(rps=2000.0, burst=4000)
    payer: RateLimit = RateLimit(rps=10.0, burst=20)


@dataclass(frozen=True, slots=True)
class IdempotencySettings:
    ttl_s: int = 25 * 3600  # API.md promises at least 24 h
    lease_s: float = 30.0  # an in-flight claim older than this is taken over


@dataclass(frozen=True, slots=True)
class SweeperSettings:
    interval_s: float = 1.0  # how often each process looks for due work
    first_check_s: float = 15.0  # a payment left processing is first looked at after this
    query_every_s: float = 5.0
    confirm_window_s: float = 30.0  # payer-code payments still unpaid after this are reversed
    unknown_window_s: float = 60.0  # an order the rail never saw is reversed after this
    order_expiry_s: float = 7200.0  # unpaid QR orders are closed after this
    # A charge the rail still does not know after this failed for good: longer than the
    # rails' ~5-minute window for a request's signed timestamp, so it cannot land later.
    never_seen_s: float = 360.0
    lease_s: float = 30.0
    batch: int = 200


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    retry_schedule_s: tuple[float, ...] = (
        15, 60, 300, 900, 1800, 3600, 3600, 7200, 7200, 7200, 14400, 14400, 21600,
    )  # about 24 h in all, then the event is dead-lettered
    timeout_s: float = 5.0
    claim_idle_s: float = 60.0  # a read but unacknowledged entry is reclaimed after this
    concurrency: int = 64
    poll_interval_s: float = 0.05  # how often an idle process looks for new events
    shards_per_read: int = 16  # outbox streams one read covers (rotating over all shards)


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """One routing rule: when `match` holds, try `candidates` ordered by `strategy`."""

    name: str
    candidates: tuple[str, ...]
    match: dict[str, Any] = field(default_factory=dict)
    strategy: str = "priority"  # priority | weighted | success_rate | cost
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    window_s: float = 10.0  # error rate and latency are judged over this window
    min_calls: int = 10  # fewer calls than this in the window: no verdict
    error_rate: float = 0.5  # open at or above this share of failed calls
    latency_ms: float = 0.0  # open when p99 latency is above this (0: latency not used)
    cool_down_s: float = 10.0  # open this long, then half-open
    probes: int = 5  # calls let through while half-open to test recovery


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    rules: tuple[RuleSettings, ...] = ()
    rules_file: Path | None = None  # rules kept in their own file, reloaded when it changes
    max_attempts: int = 2  # attempts per payment, failovers included
    fees: dict[str, tuple[float, int]] = field(default_factory=dict)  # rail: (percent, fixed)
    breaker: BreakerSettings = BreakerSettings()
    sync_interval_s: float = 0.5  # how often a process shares its health figures


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    rails: tuple[RailSettings, ...] = ()
    limits: LimitSettings = LimitSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    sweeper: SweeperSettings = SweeperSettings()
    webhooks: WebhookSettings = WebhookSettings()
    routing: RoutingSettings = RoutingSettings()
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


# --------------------------------------------------------------------------- loading
def load(config_path: Path | None, env: dict[str, str] | None = None) -> Settings:
    """Settings from an optional TOML file, then the environment on top."""
    env = dict(os.environ) if env is None else env
    raw: dict[str, Any] = {}
    if config_path is not None:
        try:
            raw = tomllib.loads(config_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read {config_path}: {exc}") from exc
    base = config_path.parent if config_path else Path.cwd()
    settings = _from_dict(raw, base)
    return _apply_env(settings, env)


def _from_dict(raw: dict[str, Any], base: Path) -> Settings:
    server = ServerSettings(**_section(raw, "server", ServerSettings))
    redis = RedisSettings(**_section(raw, "redis", RedisSettings))
    rails = tuple(_rail(name, body, base) for name, body in _table(raw, "rails").items())
    limits_raw = _table(raw, "limits")
    limits = LimitSettings(
        merchant=_rate(limits_raw.get("merchant"), "limits.merchant", LimitSettings().merchant),
        payer=_rate(limits_raw.get("payer"), "limits.payer", LimitSettings().payer),
    )
    idem = IdempotencySettings(**_section(raw, "idempotency", IdempotencySettings))
    sweeper = SweeperSettings(**_section(raw, "sweeper", SweeperSettings))
    hooks = _section(raw, "webhooks", WebhookSettings)
    if "retry_schedule_s" in hooks:
        hooks["retry_schedule_s"] = tuple(float(x) for x in hooks["retry_schedule_s"])
    sandbox_raw = _table(raw, "sandbox")
    routing = routing_settings(_table(raw, "routing"), base)
    data_dir = Path(str(raw.get("data_dir", DEFAULT_DATA_DIR)))
    return Settings(
        server=server,
        redis=redis,
        rails=rails,
        limits=limits,
        idempotency=idem,
        sweeper=sweeper,
        webhooks=WebhookSettings(**hooks),
        routing=routing,
        sandbox=bool(sandbox_raw.get("enabled", False)),
        data_dir=data_dir if data_dir.is_absolute() else base / data_dir,
        default_method=raw.get("default_method"),
    )


def routing_settings(raw: dict[str, Any], base: Path) -> RoutingSettings:
    """`[routing]` of the settings file (or the whole of a rules file)."""
    raw = dict(raw)
    rules = tuple(parse_rule(i, r) for i, r in enumerate(raw.pop("rules", [])))
    rules_file = raw.pop("rules_file", None)
    fees = {rail: _fee(rail, fee) for rail, fee in raw.pop("fees", {}).items()}
    breaker = BreakerSettings(**_section(raw, "breaker", BreakerSettings))
    raw.pop("breaker", None)
    known = {"max_attempts", "sync_interval_s"}
    if set(raw) - known:
        raise SettingsError(f"unknown key(s) in [routing]: {', '.join(sorted(set(raw) - known))}")
    return RoutingSettings(
        rules=rules,
        rules_file=(base / rules_file) if rules_file else None,
        max_attempts=int(raw.get("max_attempts", 2)),
        fees=fees,
        breaker=breaker,
        sync_interval_s=float(raw.get("sync_interval_s", 0.5)),
    )


_STRATEGIES = ("priority", "weighted", "success_rate", "cost")


def parse_rule(index: int, raw: Any) -> RuleSettings:
    if not isinstance(raw, dict):
        raise SettingsError(f"routing rule #{index + 1} must be a table")
    name = str(raw.get("name", f"rule-{index + 1}"))
    candidates = raw.get("candidates")
    if not isinstance(candidates, list) or not candidates or not all(
            isinstance(c, str) for c in candidates):
        raise SettingsError(f"routing rule {name!r}: candidates must be a list of rail names")
    strategy = str(raw.get("strategy", "priority"))
    if strategy not in _STRATEGIES:
        raise SettingsError(f"routing rule {name!r}: strategy must be one of {_STRATEGIES}")
    weights = raw.get("weights", {})
    if not isinstance(weights, dict) or not all(
            isinstance(v, int | float) and v >= 0 for v in weights.values()):
        raise SettingsError(f"routing rule {name!r}: weights must map rails to numbers >= 0")
    match = raw.get("match", {})
    if not isinstance(match, dict):
        raise SettingsError(f"routing rule {name!r}: match must be a table")
    unknown = set(raw) - {"name", "candidates", "strategy", "weights", "match"}
    if unknown:
        raise SettingsError(f"routing rule {name!r}: unknown key(s) {sorted(unknown)}")
    return RuleSettings(name=name, candidates=tuple(candidates), match=dict(match),
                        strategy=strategy, weights={k: float(v) for k, v in weights.items()})


def _fee(rail: str, raw: Any) -> tuple[float, int]:
    try:
        return float(raw.get("percent", 0.0)), int(raw.get("fixed", 0))
    except (AttributeError, TypeError, ValueError) as exc:
        raise SettingsError(f"routing.fees.{rail} needs numeric percent and fixed") from exc


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise SettingsError(f"[{key}] must be a table")
    return value


def _section(raw: dict[str, Any], key: str, cls: Any) -> dict[str, Any]:
    table = _table(raw, key)
    known = set(cls.__dataclass_fields__)
    unknown = set(table) - known
    if unknown:
        raise SettingsError(f"unknown key(s) in [{key}]: {', '.join(sorted(unknown))}")
    return dict(table)


def _rate(value: Any, where: str, default: RateLimit) -> RateLimit:
    if value is None:
        return default
    try:
        rate = RateLimit(rps=float(value["rps"]), burst=int(value["burst"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SettingsError(f"{where} needs numeric rps and burst") from exc
    if rate.rps <= 0 or rate.burst < 1:
        raise SettingsError(f"{where}: rps must be > 0 and burst >= 1")
    return rate


def _rail(name: str, body: Any, base: Path) -> RailSettings:
    if not isinstance(body, dict):
        raise SettingsError(f"[rails.{name}] must be a table")
    body = dict(body)
    keys_dir = body.pop("keys_dir", None)
    rate = body.pop("rate_limit", None)
    return RailSettings(
        name=name,
        base_url=str(body.pop("base_url", "")).rstrip("/"),
        keys_dir=(base / keys_dir) if keys_dir else None,
        timeout_s=float(body.pop("timeout_s", 10.0)),
        rate_limit=_rate(rate, f"rails.{name}.rate_limit", RateLimit(1, 1)) if rate else None,
        options=body,
    )


def _check_redis_url(url: str) -> None:
    """A clear error at start-up for a URL the client cannot use (never echoing it: it
    may hold a password)."""
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == CLUSTER_SCHEME:
        try:
            ClusterURL.parse(url)
        except ValueError as exc:
            raise SettingsError(f"[redis] url: {exc}") from None
    elif scheme not in ("redis", "unix"):
        raise SettingsError(f"[redis] url: unsupported scheme {scheme!r}; use redis://, "
                            f"unix:// or {CLUSTER_SCHEME}://host:port[,host:port...]")


def _apply_env(settings: Settings, env: dict[str, str]) -> Settings:
    if url := env.get("REDIS_URL"):
        settings = replace(settings, redis=replace(settings.redis, url=url))
    if data_dir := env.get("PAYROUTER_DATA_DIR"):
        settings = replace(settings, data_dir=Path(data_dir))
    if token := env.get("PAYROUTER_ADMIN_TOKEN"):
        settings = replace(settings, admin_token=Secret(token))
    if pepper := env.get("PAYROUTER_KEY_PEPPER"):
        settings = replace(settings, key_pepper=Secret(pepper))
    return settings
