"""The OpenAPI document: it covers exactly the routes the app serves, it is valid
OpenAPI 3.1, its enums follow the code, it is what `GET /openapi.json` serves, and real
responses match its schemas."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from router.api.openapi import render, with_request_schemas
from router.api.schemas import BODIES
from router.app import create_app
from router.domain import PAYMENT_EVENTS, REFUND_EVENTS, RefundStatus, Status
from router.settings import Settings
from router.validation import CURRENCIES, MAX_AMOUNT, SCENES
from tests.conftest import BankSim
from tests.helpers import Gateway, payment_body

SPEC_BYTES = resources.files("router").joinpath("openapi.json").read_bytes()
SPEC: dict[str, Any] = json.loads(SPEC_BYTES)
SCHEMAS = SPEC["components"]["schemas"]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# A `{name:a|b}` segment whose regex is a plain alternation of literals is documented
# as one path per literal (e.g. /v1/sandbox/payments/{id}/pay and .../fail).
_DYNAMIC = re.compile(r"\{(\w+)(?::([^{}]*))?\}")
_LITERALS = re.compile(r"[\w\-]+(\|[\w\-]+)*")


def _expand(path: str) -> list[str]:
    """OpenAPI paths for one aiohttp path template."""
    match = next((m for m in _DYNAMIC.finditer(path) if m.group(2)), None)
    if match is None:
        return [path]
    regex = match.group(2)
    assert _LITERALS.fullmatch(regex), f"cannot document {{{match.group(1)}:{regex}}} in {path}"
    head, tail = path[: match.start()], path[match.end():]
    return [p for word in regex.split("|") for p in _expand(head + word + tail)]


def _registered_path(resource: Any) -> str:
    """The route's template as registered: `{name}`, or `{name:regex}` for a custom regex
    (aiohttp keeps only the bare formatter and the compiled pattern)."""
    info = resource.get_info()
    if "path" in info:
        return str(info["path"])
    pattern: str = info["pattern"].pattern

    def with_regex(m: re.Match[str]) -> str:
        group = re.search(rf"\(\?P<{m.group(1)}>([^()]*)\)", pattern)
        assert group is not None, f"no simple group for {m.group(0)} in {pattern}"
        regex = group.group(1)
        return m.group(0) if regex == "[^{}/]+" else f"{{{m.group(1)}:{regex}}}"

    return _DYNAMIC.sub(with_regex, str(info["formatter"]))


def _app_operations() -> set[tuple[str, str]]:
    app = create_app(Settings(), background=False)
    ops: set[tuple[str, str]] = set()
    for route in app.router.routes():
        method = route.method.lower()
        if method in ("head", "*") or route.resource is None:
            continue
        ops.update((path, method) for path in _expand(_registered_path(route.resource)))
    return ops


def _spec_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in SPEC["paths"].items()
            for method in item if method in HTTP_METHODS}


def test_expand_sandbox_template() -> None:
    assert _expand("/v1/sandbox/payments/{id}/{outcome:pay|fail}") == [
        "/v1/sandbox/payments/{id}/pay", "/v1/sandbox/payments/{id}/fail"]
    assert _expand("/v1/payments/{id}") == ["/v1/payments/{id}"]


def test_every_app_route_is_documented_and_nothing_else() -> None:
    app_ops, spec_ops = _app_operations(), _spec_operations()
    assert ("/v1/sandbox/payments/{id}/pay", "post") in app_ops
    assert ("/v1/sandbox/payments/{id}/fail", "post") in app_ops
    assert app_ops - spec_ops == set(), "routes missing from openapi.json"
    assert spec_ops - app_ops == set(), "stale paths in openapi.json"


def test_document_is_valid_openapi_31() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    validate(SPEC)
    # Pretty-printed with a 2-space indent, as committed.
    assert SPEC_BYTES.decode() == json.dumps(SPEC, indent=2, ensure_ascii=False) + "\n"


def test_path_parameters_are_declared() -> None:
    for path, item in SPEC["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            declared = set()
            for param in operation.get("parameters", []):
                if "$ref" in param:
                    param = SPEC["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
                if param["in"] == "path":
                    declared.add(param["name"])
            assert declared == names, (path, method)


def test_idempotent_posts_take_the_header() -> None:
    ref = {"$ref": "#/components/parameters/IdempotencyKey"}
    idempotent = {("/v1/payments", "post"), ("/v1/payments/{id}/close", "post"),
                  ("/v1/payments/{id}/refunds", "post"),
                  ("/v1/sandbox/payments/{id}/pay", "post"),
                  ("/v1/sandbox/payments/{id}/fail", "post")}
    for path, method in idempotent:
        assert ref in SPEC["paths"][path][method]["parameters"], path
    replayed = {"$ref": "#/components/headers/IdempotentReplayed"}
    assert SPEC["paths"]["/v1/payments"]["post"]["responses"]["201"]["headers"][
        "Idempotent-Replayed"] == replayed


def test_enums_follow_the_code() -> None:
    assert set(SCHEMAS["Scene"]["enum"]) == set(SCENES)
    assert set(SCHEMAS["Currency"]["enum"]) == set(CURRENCIES)
    assert set(SCHEMAS["PaymentStatus"]["enum"]) == {s.value for s in Status}
    assert set(SCHEMAS["RefundStatus"]["enum"]) == {s.value for s in RefundStatus}
    assert SCHEMAS["Amount"]["maximum"] == MAX_AMOUNT
    assert set(SCHEMAS["Event"]["properties"]["type"]["enum"]) == (
        set(PAYMENT_EVENTS.values()) | set(REFUND_EVENTS.values()))


def test_error_codes_cover_every_code_the_router_raises() -> None:
    package = Path(create_app.__code__.co_filename).parent
    source = "\n".join(p.read_text() for p in package.rglob("*.py"))
    raised = set(re.findall(r"RouterError\(\s*\d+,\s*\"([a-z_]+)\"", source))
    api_md = {"invalid_json", "invalid_request", "unauthorized", "not_found",
              "idempotency_key_in_use", "out_trade_no_used", "invalid_state",
              "payload_too_large", "validation_error", "idempotency_key_reused",
              "refund_exceeds_amount", "rate_limited", "adapter_error", "adapter_timeout"}
    assert raised and raised <= api_md | set(SCHEMAS["ErrorCode"]["enum"])
    assert set(SCHEMAS["ErrorCode"]["enum"]) == raised | api_md


# --------------------------------------------------------------------------- served
_REGISTRY: Registry = Registry().with_resource(
    "urn:payrouter:openapi", Resource(contents=SPEC, specification=DRAFT202012))


def _check(schema: str, instance: Any) -> None:
    validator = Draft202012Validator(
        {"$ref": f"urn:payrouter:openapi#/components/schemas/{schema}"}, registry=_REGISTRY)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, (schema, errors)


@pytest.mark.parametrize("schema, good, bad", [
    ("PaymentCreate", payment_body("otn-1", method=None), {"amount": 0, "currency": "CNY",
                                                            "out_trade_no": "x", "scene": "h5"}),
    ("PaymentCreate", payment_body("otn-2", scene="native"),
     {**payment_body("otn-3"), "payer": {}}),
    ("RefundCreate", {"amount": 1, "out_refund_no": "r-1"}, {"amount": 1, "out_refund_no": "r 1"}),
    ("MerchantUpdate", {"rate_limit": {"rps": 0.5, "burst": 1}}, {"rate_limit": {"rps": 0}}),
])
def test_request_schemas_accept_and_refuse(schema: str, good: Any, bad: Any) -> None:
    _check(schema, good)
    with pytest.raises(AssertionError):
        _check(schema, bad)


async def test_served_document_and_response_shapes(gateway: Gateway, bank_sim: BankSim) -> None:
    served = await gateway.admin().get("/openapi.json")
    assert served.status == 200
    assert served.headers["Content-Type"].startswith("application/json")
    assert served.raw == SPEC_BYTES and served.body == SPEC

    admin = gateway.admin()
    created = await admin.post("/v1/admin/merchants", {"name": "Spec shop"})
    assert created.status == 201, created.body
    _check("MerchantCreated", created.body)
    client, merchant = await gateway.merchant("Spec shop 2", webhook_url="https://shop.example/h")
    fetched = await admin.get(f"/v1/admin/merchants/{merchant['id']}")
    _check("Merchant", fetched.body)

    native = await client.post("/v1/payments", payment_body("spec-1", scene="native"),
                               headers={"Idempotency-Key": "spec-key-1"})
    assert native.status == 201, native.body
    assert native.body["status"] == "requires_action" and "action" in native.body
    _check("Payment", native.body)
    replay = await client.post("/v1/payments", payment_body("spec-1", scene="native"),
                               headers={"Idempotency-Key": "spec-key-1"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.raw == native.raw

    paid = await client.post(f"/v1/sandbox/payments/{native.body['id']}/pay")
    assert paid.status == 200, paid.body
    assert paid.body["status"] == "succeeded"
    _check("Payment", paid.body)

    refund = await client.post(f"/v1/payments/{native.body['id']}/refunds",
                               {"amount": 300, "out_refund_no": "spec-r1", "reason": "spec"})
    assert refund.status == 201, refund.body
    _check("Refund", refund.body)
    listed = await client.get(f"/v1/payments/{native.body['id']}/refunds")
    _check("RefundList", listed.body)

    declined = await client.post("/v1/payments", payment_body(
        "spec-2", method="instant", auth_code="134567890123456782"))
    assert declined.body["status"] == "failed", declined.body
    _check("Payment", declined.body)

    invalid = await client.post("/v1/payments", {"amount": -1})
    assert invalid.status == 422
    _check("Error", invalid.body)
    assert invalid.body["error"]["code"] in SCHEMAS["ErrorCode"]["enum"]

    dead = await admin.get("/v1/admin/events/dead")
    _check("DeadLetterList", dead.body)
    ready = await client.get("/readyz")
    _check("Readiness", ready.body)


def test_request_schemas_are_generated_from_the_structs_handlers_decode() -> None:
    """The stored document is exactly what the generator writes from the Structs, and
    every route with a JSON body names the Struct its handler decodes (BODIES)."""
    assert render(with_request_schemas(SPEC)) == SPEC_BYTES.decode(), (
        "router/openapi.json is out of date: run python -m router.api.openapi")
    documented = {
        (method.upper(), path)
        for path, operations in SPEC["paths"].items()
        for method, operation in operations.items()
        if method in HTTP_METHODS
        and "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert documented == set(BODIES)
    for (method, path), body_type in BODIES.items():
        schema = SPEC["paths"][path][method.lower()]["requestBody"]["content"][
            "application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{body_type.__name__}"}
        _, generated = msgspec.json.schema_components(
            [body_type], ref_template="#/components/schemas/{name}")
        for name, component in generated.items():
            stored = {k: v for k, v in SCHEMAS[name].items() if k not in ("if", "then")}
            assert stored == component, name


async def test_every_body_route_decodes_its_struct(gateway: Gateway) -> None:
    """Each route in BODIES refuses an unknown field naming it, as its Struct does."""
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments", payment_body("schema-1", scene="native"))
    admin = gateway.admin()
    for (method, path), body_type in BODIES.items():
        if not body_type.__struct_config__.forbid_unknown_fields:
            continue  # bodies whose content is not read (close)
        url = path.replace("{id}", created.body["id"]).replace("{user_id}", "u1").replace(
            "{action}", "payout.create")
        if path.startswith("/v1/admin/merchants/"):
            url = path.replace("{id}", (await admin.post(
                "/v1/admin/merchants", {"name": "Schema"})).body["id"])
        who = admin if path.startswith("/v1/admin") else client
        reply = await who.request(method, url, {"no_such_field": 1})
        assert reply.status == 422, (method, path, reply.body)
        assert reply.body["error"]["param"] == "no_such_field", (method, path, reply.body)
