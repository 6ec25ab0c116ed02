"""The OpenAPI document's request schemas, generated from the Structs the handlers
decode (router/api/schemas.py).

`router/openapi.json` is the served document: its prose, responses and paths are
written by hand; every request body schema in it is rewritten from the Structs by

    python -m router.api.openapi          # rewrite router/openapi.json
    python -m router.api.openapi --check  # exit 1 if it is out of date

and a test fails when the file differs from what this would write.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from router.api.schemas import BODIES

_REF = "#/components/schemas/{name}"

# What a Struct cannot say about itself: conditions across fields.
_EXTRA: dict[str, dict[str, Any]] = {
    "PaymentCreate": {
        "if": {"required": ["scene"], "properties": {"scene": {"const": "quickpay"}}},
        "then": {"required": ["payer"],
                 "properties": {"payer": {"type": "object", "required": ["auth_code"]}}},
    },
}


def with_request_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with each route's request body schema generated from its Struct."""
    out = copy.deepcopy(spec)
    types = sorted(set(BODIES.values()), key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(types, ref_template=_REF)
    for name, extra in _EXTRA.items():
        components[name].update(extra)
    out["components"]["schemas"].update(components)
    for (method, path), body_type in BODIES.items():
        operation = out["paths"][path][method.lower()]
        body = operation.setdefault("requestBody", {})
        body["content"] = {"application/json": {
            "schema": {"$ref": _REF.format(name=body_type.__name__)}}}
    return out


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def _stored() -> Path:
    return Path(str(resources.files("router").joinpath("openapi.json")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router.api.openapi",
                                     description="Regenerate the request schemas of "
                                                 "router/openapi.json from the Structs.")
    parser.add_argument("--check", action="store_true",
                        help="only check that the file is current (exit 1 if not)")
    args = parser.parse_args(argv)
    path = _stored()
    current = path.read_text()
    wanted = render(with_request_schemas(json.loads(current)))
    if current == wanted:
        print(f"{path.name} is current")
        return 0
    if args.check:
        print(f"{path.name} is out of date: run python -m router.api.openapi", file=sys.stderr)
        return 1
    path.write_text(wanted)
    print(f"{path.name} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
