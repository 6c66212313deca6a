"""Property-based contract tests of the mini-program API against its own OpenAPI document.

Schemathesis loads the document the app serves at /api/mp/v1/openapi.json (in-process,
over WSGI: no network) and, for every operation, generates schema-valid requests
(positive data only) and checks that the app never answers 5xx and that every response
matches what the document promises (status code, content type, body schema; a 2xx must
be one the operation names, since every operation's `default` error response would
otherwise make any status "conform").

Layout: the schema is loaded once at import time from an app whose database is never
touched (serving the document needs none). Each operation is then its own pytest item
and runs against the conftest `app` (a fresh migrated SQLite copy) seeded with `world`,
calling as `world.a_buyer` with a real bearer token. A fresh database per operation keeps
the operations independent (orders created by POST /orders fuzzing do not leak into the
cart or address tests) while examples within one operation share state, like a real
client would. Hooks (below) steer some generated values onto real rows so the happy
paths are reached too.

Besides the fuzzing: the document is valid OpenAPI 3, every operation but login requires
the bearer token, POST /orders documents its Idempotency-Key, every operation documents
the error shape, and a request body documented as required really is.
"""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.dealers.identity import issue_token
from tests.factories import REGIONS, auth
from tests.helpers import examples

OPENAPI_PATH = "/api/mp/v1/openapi.json"
LOGIN = ("POST", "/api/mp/v1/auth/login")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Generated examples per operation. Most of an example's time is
# Hypothesis drawing it from the schema. With 35 the operations answer with the same 70
# (operation, status) pairs as with 50 (measured 2026-12-07; 30 missed login's 422).
MAX_EXAMPLES = examples(35)  # a fifth in the date runs of .ci/run (tests/helpers.examples)

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261126,
        "generation": {
            "mode": "positive",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            # We send the dealer's real token ourselves (see `_headers_for`).
            "with-security-parameters": False,
        },
        # Only our own examples/fuzzing; the stateful phase is the job of the
        # hand-written state machine in test_order_properties.py.
        "phases": {"stateful": {"enabled": False}},
    }
)


def _doc_app():
    # An app for reading the document only: its database is never opened.
    return create_app(
        {
            "ENV_NAME": "test",
            "TESTING": True,
            "SECRET_KEY": "openapi-doc-only",
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "REDIS_URL": None,
        }
    )


schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, _doc_app(), config=CONFIG)


# --- steering some examples onto real data ------------------------------------------
#
# Purely random ids, order numbers and region codes almost never exist, so the happy
# paths (order detail, cancel, cart delete, new address) would only ever answer 404/422
# and their 200/201 bodies would go unchecked. These hooks replace *some* generated values
# with real ones — still valid for the schema, so the data stays "positive". `KNOWN` is
# filled by the `dealer_data` fixture before each operation's examples run and is read at
# draw time (in `.map`), so it always names the current test's rows.

KNOWN = {}
# A 1×1 PNG.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0"
    "00000301010018dd8db00000000049454e44ae426082"
)


def _pick(name):
    return st.integers(min_value=0, max_value=63).map(lambda i: KNOWN[name][i % len(KNOWN[name])])


def _sometimes(value, replaced):
    return st.one_of(st.just(value), replaced)


def _with(mapping, **strategies):
    return st.fixed_dictionaries({**{k: st.just(v) for k, v in mapping.items()}, **strategies})


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    known = {name: _pick(name) for name in (path_parameters or {}) if name in ("sku_id", "order_no", "material_id")}
    if not known:
        return st.just(path_parameters)
    return _sometimes(path_parameters, _with(path_parameters, **known))


@schema.hook
def flatmap_body(context, body):
    if not isinstance(body, dict):
        return st.just(body)
    if "lines" in body:
        lines = st.lists(
            st.fixed_dictionaries({"sku_id": _pick("sku_id"), "qty": st.integers(min_value=1, max_value=30)}),
            min_size=1, max_size=4,
        )
        extra = {"address_id": st.one_of(st.none(), _pick("address_id"))} if "address_id" in body else {}
        return _sometimes(body, _with(body, lines=lines, **extra))
    if "region_code" in body:
        return _sometimes(body, _with(body, region_code=_pick("region_code")))
    if "invite_code" in body:
        return _sometimes(body, _with(body, invite_code=_pick("invite_code")))
    if "file" in body:  # POST /uploads: a real image now and then, so the 201 body is checked too
        return _sometimes(body, st.just({**body, "file": _PNG}))
    if "code" in body:  # POST /auth/login: a real wx.login() code (single use) now and then
        return _sometimes(body, _with(body, code=_pick("login_code")))
    return st.just(body)


@schema.hook
def flatmap_headers(context, headers):
    if not headers or "Idempotency-Key" not in headers:
        return st.just(headers)
    # A generated key is often reused (replays, conflicts); fresh ones create orders.
    return _sometimes(headers, _with(headers, **{"Idempotency-Key": st.uuids().map(lambda u: u.hex)}))


@pytest.fixture
def dealer_data(world, wechat):
    """Real orders (open, cancelled, another dealer's), cart items, addresses, login and invite codes."""
    from app.dealers.addresses import add_address
    from app.dealers.identity import create_invite
    from app.orders.cart import set_cart_item
    from app.orders.closing import cancel_order
    from app.orders.submission import submit_order

    def order(user, key, *lines):
        placed, _ = submit_order(
            user=user, idempotency_key=key, lines=[{"sku_id": s.id, "qty": q} for s, q in lines]
        )
        return placed.order_no

    open_no = order(world.a_buyer, "seed-open-1", (world.cola, 2), (world.tea, 5))
    cancelled_no = order(world.a_buyer, "seed-cancelled-1", (world.soy, 1))
    cancel_order(user=world.a_buyer, order_no=cancelled_no, reason="seed")
    foreign_no = order(world.b_owner, "seed-foreign-1", (world.cola, 1))
    for sku, qty in ((world.cola, 3), (world.soy, 2), (world.vinegar, 1)):
        set_cart_item(user=world.a_buyer, sku_id=sku.id, qty=qty)
    second = add_address(
        user=world.a_buyer, contact_name="王五", phone="13800000003", region_code="440300", detail="深南大道3号"
    )
    KNOWN.update(
        material_id=_materials(),
        sku_id=[s.id for s in (world.cola, world.tea, world.soy, world.vinegar, world.gift, world.local, world.retired)],
        order_no=[open_no, cancelled_no, foreign_no],
        address_id=[world.addr_a.id, second["id"], world.addr_b.id],
        region_code=[code for code, _, _ in REGIONS],
        login_code=[wechat.mint_code(world.a_buyer.openid), wechat.mint_code("o-not-yet-bound")],
        invite_code=[create_invite(dealer_code=world.dealer_a.code, role="buyer").code],
    )
    yield KNOWN
    KNOWN.clear()


def _materials():
    """One published material of each kind for everyone, and one for another dealer only."""
    from app.staff.service import create_staff
    from tests.materials_support import make_material

    marketer = create_staff(username="fuzz-shi", name="市场", role="marketing", password="correct-horse-9")
    kinds = ("image", "poster", "video", "file", "article", "link", "miniprogram")
    made = [make_material(marketer, kind, tags=["春节"]) for kind in kinds]
    made.append(make_material(marketer, "link", audience={"dealers": ["DB01"]}))
    return [m.id for m in made]


def _headers_for(case, world):
    if case.operation.label == " ".join(LOGIN):
        return None
    if case.operation.label == "POST /api/mp/v1/auth/bind":
        # Binding is for a WeChat user who is not bound yet.
        return {"Authorization": f"Bearer {issue_token('o-fuzz-unbound')}"}
    return auth(world.a_buyer)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
def test_operation_conforms_to_openapi(case, app, world, dealer_data, wechat):
    """Every operation: no 5xx, documented status, content type and body schema."""
    response = case.call_and_validate(app=app, headers=_headers_for(case, world), checks=CHECKS)
    # Every operation has a `default` (error) response, which makes any status "documented";
    # a success, though, must be one the operation names explicitly.
    if 200 <= response.status_code < 300:
        documented = schema.raw_schema["paths"][case.operation.path][case.operation.method.lower()]["responses"]
        assert str(response.status_code) in documented, (case.operation.label, response.status_code)


# --- the document itself ----------------------------------------------------------


@pytest.fixture
def served_document(client):
    resp = client.get(OPENAPI_PATH)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    return resp.get_json()


def test_document_is_valid_openapi_3(served_document):
    assert served_document["openapi"].startswith("3.")
    # What the fixture app serves is what the fuzzing above was generated from.
    assert served_document == schema.raw_schema
    loaded = schemathesis.openapi.from_dict(served_document)
    loaded.validate()  # raises jsonschema_rs.ValidationError against the OpenAPI 3.0 meta-schema
    results = list(loaded.get_all_operations())
    errors = [r for r in results if not isinstance(r, Ok)]
    assert not errors, errors
    assert len(results) >= 15


def _operations(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield method.upper(), path, op


def test_every_operation_but_login_documents_bearer_security(served_document):
    schemes = served_document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"].lower() == "bearer"
    assert "security" not in served_document  # no global default hiding a missing per-operation one
    missing, unexpected = [], []
    for method, path, op in _operations(served_document):
        if (method, path) == LOGIN:
            if op.get("security"):
                unexpected.append(f"{method} {path}")
        elif op.get("security") != [{"bearerAuth": []}]:
            missing.append(f"{method} {path}: {op.get('security')}")
    assert not missing, missing
    assert not unexpected, unexpected


def test_order_submission_documents_required_idempotency_key(served_document):
    op = served_document["paths"]["/api/mp/v1/orders"]["post"]
    params = {(p["in"], p["name"]): p for p in op.get("parameters", [])}
    header = params[("header", "Idempotency-Key")]
    assert header["required"] is True
    assert header["schema"]["type"] == "string" and header["schema"].get("pattern")
    assert "201" in op["responses"]


def test_every_operation_documents_the_error_shape(served_document):
    error_ref = {"$ref": "#/components/schemas/Error"}
    responses = served_document["components"]["responses"]
    for method, path, op in _operations(served_document):
        default = op["responses"].get("default")
        assert default is not None, f"{method} {path} documents no default (error) response"
        if "$ref" in default:
            default = responses[default["$ref"].rsplit("/", 1)[1]]
        assert default["content"]["application/json"]["schema"] == error_ref, f"{method} {path}"


def test_documented_required_request_bodies_are_required(client, world, served_document):
    """A request body the document calls required is refused when it is missing (4xx), and vice versa."""
    from app.orders.submission import submit_order

    open_order, _ = submit_order(
        user=world.a_buyer, lines=[{"sku_id": world.cola.id, "qty": 1}], idempotency_key="doc-probe-1"
    )
    from app.returns.models import ReturnRequest
    from tests.factories import add

    # A pending return request of A's (its order needs no shipment for this probe).
    pending_return = add(ReturnRequest(return_no="RT-DOC-PROBE-1", order_id=open_order.id, dealer_id=world.dealer_a.id,
                                       requested_by_id=world.a_buyer.id, status="pending", reason="文档探测"))
    headers = {**auth(world.a_buyer), "Idempotency-Key": "doc-probe-2"}
    fill = {"{order_no}": open_order.order_no, "{sku_id}": str(world.cola.id), "{return_id}": str(pending_return.id)}
    mismatches = []
    for method, path, op in _operations(served_document):
        if "requestBody" not in op:
            continue
        url = path
        for placeholder, value in fill.items():
            url = url.replace(placeholder, value)
        resp = client.open(url, method=method, headers=headers)  # no body at all
        documented_required = op["requestBody"].get("required", False)
        if documented_required != (400 <= resp.status_code < 500):
            mismatches.append(f"{method} {path}: required={documented_required}, answered {resp.status_code}")
    assert not mismatches, mismatches
