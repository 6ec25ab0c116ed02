"""The settings file: every table typed by msgspec, paths taken from the file's directory,
the environment on top, and every error naming its dotted key without echoing a secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from router.config_file import load
from router.security import Secret
from router.settings import RailSettings, RateLimit, Settings, SettingsError

SECRET = "hunter2"


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "payrouter.toml"
    path.write_text(text)
    return load(path, env={} if env is None else env)


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == Settings(data_dir=tmp_path / ".payrouter")


def test_rail_tables_paths_secrets_and_flags(tmp_path: Path) -> None:
    settings = _load(tmp_path, """
data_dir = "data"
admin_token = "file-token"

[rails.wechatpay-sub]
adapter = "wechatpay"
base_url = "https://api.example/"
keys_dir = "keys/sp"
timeout_s = 3
rate_limit = { rps = 5, burst = 10 }
failover_codes = ["RAIL_UNREACHABLE"]
dedicated = true
sub_mchid = "1900000109"

[routing]
rules_file = "/etc/payrouter/routing.toml"

[sandbox]
enabled = true
""")
    assert settings.rails == (RailSettings(
        name="wechatpay-sub", base_url="https://api.example", keys_dir=tmp_path / "keys/sp",
        timeout_s=3.0, rate_limit=RateLimit(rps=5, burst=10),
        options={"adapter": "wechatpay", "failover_codes": ["RAIL_UNREACHABLE"],
                 "dedicated": True, "sub_mchid": "1900000109"}),)
    assert settings.data_dir == tmp_path / "data"
    assert settings.routing.rules_file == Path("/etc/payrouter/routing.toml")
    assert settings.sandbox is True
    assert settings.admin_token == Secret("file-token")


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    settings = _load(tmp_path, '[redis]\nurl = "redis://file:6379/0"\n', env={
        "REDIS_URL": "redis+cluster://env-1:7000,env-2:7000", "PAYROUTER_DATA_DIR": "/srv/pr",
        "PAYROUTER_ADMIN_TOKEN": "env-token", "PAYROUTER_KEY_PEPPER": "env-pepper"})
    assert settings.redis.url == "redis+cluster://env-1:7000,env-2:7000"
    assert settings.data_dir == Path("/srv/pr")
    assert settings.admin_token == Secret("env-token")
    assert settings.key_pepper == Secret("env-pepper")


@pytest.mark.parametrize(("text", "error"), [
    # unknown keys
    ('[server]\nhots = "0.0.0.0"', "server.hots: unknown key"),
    ('[sever]\nhost = "0.0.0.0"', "sever: unknown key"),
    ('[[routing.rules]]\ncandidates = ["bank"]\nwhen = {}', "routing.rules[0].when: unknown key"),
    # wrong types
    ('[redis]\nshards = "many"', "redis.shards: Expected integer, got string"),
    ('[rails.bank]\nfailover_codes = "RAIL_UNREACHABLE"',
     "rails.bank.failover_codes: Expected array, got string"),
    ("[rails]\nbank = 3", "rails.bank: Expected table, got integer"),
    ('[sandbox]\nenabled = "yes"', "sandbox.enabled: Expected boolean, got string"),
    ("[limits]\nmerchant = { rps = 5 }", "limits.merchant.burst: missing"),
    # out of range
    ("[rails.bank]\ntimeout_s = -1", "rails.bank.timeout_s: Expected number > 0.0, got -1"),
    ("[redis]\nshards = 257", "redis.shards: Expected integer <= 256, got 257"),
    ('[redis]\ndurability = "fsync"', "redis.durability: Invalid enum value 'fsync'"),
    ("[routing.fees]\nbank = { percent = -0.5 }",
     "routing.fees.bank.percent: Expected number >= 0.0, got -0.5"),
    ("[webhooks]\nretry_schedule_s = [15, 0]",
     "webhooks.retry_schedule_s[1]: Expected number > 0.0, got 0"),
])
def test_errors_name_the_dotted_key(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, text)
    assert str(caught.value) == f"settings: {error}"


@pytest.mark.parametrize("text", [
    f'admin_token = ["{SECRET}"]',
    f'key_pepper = {{ value = "{SECRET}" }}',
    f'[redis]\npassword = "{SECRET}"',
    f'[redis]\nurl = "rediss://:{SECRET}@h:6379"',
    f'[redis]\nurl = "redis+cluster://:{SECRET}@h"',
    f'[rails.bank]\ntimeout_s = "{SECRET}"',
    f'admin_token = "{SECRET}',  # not even TOML
])
def test_errors_never_echo_a_secret(tmp_path: Path, text: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, text)
    assert SECRET not in str(caught.value)


def test_serve_refuses_a_bad_file_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "payrouter.toml"
    path.write_text("[server]\nport = 0\n")
    done = subprocess.run([sys.executable, "-m", "router.cli", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr == "payrouter: settings: server.port: Expected integer >= 1, got 0\n"
