"""The settings file: TOML read by tomllib, checked and typed by msgspec into
router/settings.py's Structs, then the environment on top.

Every error names the dotted key it is about (`settings: rails.bank.timeout_s: Expected
number > 0.0, got -1`). A value is only echoed when it is a number, so a token or a Redis
URL's password never reaches a message.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec.structs import replace

from router.security import Secret
from router.settings import (
    DEFAULT_DATA_DIR,
    RailSettings,
    RuleSettings,
    Section,
    Settings,
    SettingsError,
)

T = TypeVar("T")
DecodeHook = Callable[[type, Any], Any]


def load(config_path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from an optional TOML file, then the environment on top."""
    raw: dict[str, Any] = {}
    if config_path is not None:
        try:
            raw = tomllib.loads(config_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"settings: cannot read {config_path}: {exc}") from None
    base = config_path.parent if config_path else Path.cwd()
    return _apply_env(settings_from_toml(raw, base), os.environ if env is None else env)


def settings_from_toml(raw: dict[str, Any], base: Path) -> Settings:
    """Settings from a parsed TOML document; its relative paths are taken from `base`.

    Three tables differ in shape from the Structs and are converted first, each under
    its own key so that errors still name it: `[rails.<name>]` tables become
    RailSettings, `[routing.fees]` tables (percent, fixed) pairs, `[sandbox]` a flag."""
    hook = _decode_hook(base)
    document = {"data_dir": str(DEFAULT_DATA_DIR), **raw}
    if "rails" in raw:
        rails = _convert(raw["rails"], dict[str, Any], "rails")
        document["rails"] = tuple(_rail(name, body, hook) for name, body in rails.items())
    if "routing" in raw:
        document["routing"] = _routing(raw["routing"])
    if "sandbox" in raw:
        document["sandbox"] = _convert(raw["sandbox"], _SandboxTable, "sandbox").enabled
    return _convert(document, Settings, "", hook)


def parse_rules(raw: Any) -> tuple[RuleSettings, ...]:
    """The `[[rules]]` of a routing rules file (`[routing] rules_file`)."""
    return _convert(_named_rules(raw), tuple[RuleSettings, ...], "rules")


# --------------------------------------------------------------------------- file shapes
class _SandboxTable(Section, frozen=True):
    enabled: bool = False


class _Fee(Section, frozen=True):
    percent: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    fixed: Annotated[int, msgspec.Meta(ge=0)] = 0


class _RouterOptions(msgspec.Struct):
    """The options of a rail table the router itself reads; the adapter checks its own."""

    adapter: str | None = None
    dedicated: bool = False
    failover_codes: tuple[str, ...] = ()


_RAIL_KEYS = frozenset(RailSettings.__struct_fields__) - {"name", "options"}


def _rail(name: str, raw: Any, hook: DecodeHook) -> RailSettings:
    where = f"rails.{name}"
    table = _convert(raw, dict[str, Any], where)
    options = {key: value for key, value in table.items() if key not in _RAIL_KEYS}
    _convert(options, _RouterOptions, where)
    fields = {key: value for key, value in table.items() if key in _RAIL_KEYS}
    rail = _convert({**fields, "name": name, "options": options}, RailSettings, where, hook)
    return replace(rail, base_url=rail.base_url.rstrip("/"))


def _routing(raw: Any) -> dict[str, Any]:
    routing = _convert(raw, dict[str, Any], "routing")
    if "fees" in routing:
        fees = _convert(routing["fees"], dict[str, Any], "routing.fees")
        routing["fees"] = {rail: _fee(body, f"routing.fees.{rail}") for rail, body in fees.items()}
    if "rules" in routing:
        routing["rules"] = _named_rules(routing["rules"])
    return routing


def _fee(raw: Any, where: str) -> tuple[float, int]:
    fee = _convert(raw, _Fee, where)
    return fee.percent, fee.fixed


def _named_rules(raw: Any) -> Any:
    """A rule without a `name` is called rule-1, rule-2... after its place in the list."""
    if not isinstance(raw, list):
        return raw  # msgspec reports the wrong type
    return [{"name": f"rule-{number}", **rule} if isinstance(rule, dict) else rule
            for number, rule in enumerate(raw, 1)]


def _decode_hook(base: Path) -> DecodeHook:
    """The two types msgspec leaves to us, both written as strings."""
    def decode(kind: type, value: Any) -> Any:
        if kind is Path and isinstance(value, str):
            return base / value  # an absolute path stays as it is
        if kind is Secret and isinstance(value, str):
            return Secret(value)
        raise TypeError(f"Expected `str`, got `{type(value).__name__}`")

    return decode


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    if url := env.get("REDIS_URL"):
        settings = replace(settings, redis=replace(settings.redis, url=url))
    if data_dir := env.get("PAYROUTER_DATA_DIR"):
        settings = replace(settings, data_dir=Path(data_dir))
    if token := env.get("PAYROUTER_ADMIN_TOKEN"):
        settings = replace(settings, admin_token=Secret(token))
    if pepper := env.get("PAYROUTER_KEY_PEPPER"):
        settings = replace(settings, key_pepper=Secret(pepper))
    return settings


# --------------------------------------------------------------------------- errors
def _convert(raw: Any, kind: type[T], where: str, hook: DecodeHook | None = None) -> T:
    """msgspec.convert, with its error turned into one that names the dotted key."""
    try:
        return msgspec.convert(raw, kind, dec_hook=hook)
    except msgspec.ValidationError as exc:
        if isinstance(exc.__cause__, SettingsError):
            raise exc.__cause__ from None  # a check in __post_init__ that names its key
        raise _named_error(str(exc), raw, where) from None


_FIELD_PROBLEM = re.compile(r"Object (contains unknown|missing required) field `(.*)`")
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_TOML_WORDS = {"object": "table", "dict": "table", "list": "array", "float": "number",
               "int": "integer", "str": "string", "bool": "boolean"}


def _named_error(message: str, raw: Any, where: str) -> SettingsError:
    """msgspec's "<problem> - at `$<path>`" as "settings: <where><path>: <problem>", in the
    words of TOML (table, number, string) and with the number it refused, if it was one."""
    problem, _, path = message.partition(" - at `$")
    path = path.removesuffix("`")
    if field := _FIELD_PROBLEM.fullmatch(problem):
        path += f".{field[2]}"
        problem = "unknown key" if field[1] == "contains unknown" else "missing"
    elif "got" not in problem and _is_number(value := _value_at(raw, path)):
        problem += f", got {value}"
    key = f"{where}{path}".lstrip(".")
    problem = re.sub(r"`([^`]*)`", lambda m: " or ".join(
        _TOML_WORDS.get(word, word) for word in m[1].split(" | ") if word != "null"), problem)
    return SettingsError(f"settings: {key}: {problem}")


def _value_at(raw: Any, path: str) -> Any:
    """The value msgspec's path points at; None past a dict key it leaves out (`[...]`)."""
    for step in _PATH_STEP.finditer(path):
        name, index = step.groups()
        if name is not None and isinstance(raw, dict):
            raw = raw.get(name)
        elif index is not None and isinstance(raw, list) and int(index) < len(raw):
            raw = raw[int(index)]
        else:
            return None
    return raw


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
