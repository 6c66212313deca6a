"""Bad input answers a clear 4xx, never a 500, and writes nothing.

Every refusal must carry the error shape `{"error": {"code", "message", "details"}}` with
an English code for programs and a Chinese message for people, and no order, cart item,
address, reservation, credit entry or user may be written by it (`snapshot()` compares
every such row before and after).

The whole file runs on SQLite; the money and id overflow cases and control characters
(PostgreSQL cannot store NUL at all) also run on PostgreSQL, where an out-of-range integer
or a forbidden character is a database error rather than a quiet mismatch.

Tables name the endpoint and the bad body; placeholders "{sku}" and "{order_no}" become a
SKU every dealer sees and an existing order of dealer A (see `fill`). Where a table holds
many bad values for one endpoint, the values run as subtests of one test (one app and one
world for all of them); each value is still reported on its own when it fails.
"""
import json
import time
import uuid
from types import SimpleNamespace

import pytest
from flask import current_app
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode

from app.dealers.identity import TOKEN_SALT, issue_token
from app.extensions import db
from app.funds.models import CreditAccount
from tests.factories import auth, set_stock
from tests.test_dealer_isolation import CJK, ENDPOINTS, MP, call, fill, snapshot

MAX_ID = 2**53 - 1  # ids in JSON travel through JavaScript, so a body id is 1 … 2^53-1
MAX_PATH_ID = 10**15 - 1  # an id in a path has at most 15 digits; a longer one names nothing (404)
NO_BODY = object()
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


# --- fixtures and helpers -------------------------------------------------------------------------

def make_ctx(client, w, wechat=None):
    """A world where dealer A has one open order; headers for every kind of caller."""
    from app.kernel.clock import business_today as china_today

    order = call(client, "POST", "/orders", {"lines": [{"sku_id": w.cola.id, "qty": 1}]}, auth(w.a_buyer))
    assert order.status_code == 201, order.get_json()
    if wechat is not None:
        wechat.reset()  # the order's notifications went out; count only what the test causes
    return SimpleNamespace(
        client=client, w=w, wechat=wechat,
        # `today`: the day a transfer voucher may be dated (POST /payments/offline).
        ids={"sku": w.cola.id, "order_no": order.get_json()["order_no"], "today": china_today().isoformat()},
        buyer=auth(w.a_buyer),
        unbound={"Authorization": f"Bearer {issue_token('o-never-bound-0002')}"},
    )


@pytest.fixture
def ctx(client, world, wechat):
    return make_ctx(client, world, wechat)


@pytest.fixture
def backend(request):
    """A ctx on SQLite or PostgreSQL: `@pytest.mark.parametrize("backend", BACKENDS, indirect=True)`."""
    if request.param == "sqlite":
        return make_ctx(request.getfixturevalue("client"), request.getfixturevalue("world"))
    return make_ctx(request.getfixturevalue("pg_client"), request.getfixturevalue("pg_world"))


def assert_refused(resp, status, code=None):
    """A clear refusal: the expected 4xx, the error shape, a code and a Chinese message."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    body = resp.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["code"], str) and error["code"].isascii()
    assert CJK.search(error["message"]), error
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_field_refused(resp, field, message=None):
    """422 `validation_error` naming `field` (and, if given, with exactly that field message)."""
    error = assert_refused(resp, 422, "validation_error")
    fields = error["details"]["fields"]
    assert field in fields, fields
    if message is not None:
        assert fields[field] == [message], fields
    return error


# Endpoints that take a JSON body: (method, path, a valid body, who calls).
ADDRESS = {"contact_name": "赵六", "phone": "13700000004", "region_code": "440100", "detail": "体育西路4号"}
COLA = {"sku_id": "{sku}", "qty": 1}
JSON_ENDPOINTS = {
    "login": ("POST", "/auth/login", {"code": "a-code-wechat-never-issued"}, None),
    "bind": ("POST", "/auth/bind", {"invite_code": "ZZZZZZZZ"}, "unbound"),
    "cart": ("PUT", "/cart/items/{sku}", {"qty": 1}, "buyer"),
    "preview": ("POST", "/checkout/preview", {"lines": [COLA]}, "buyer"),
    "order": ("POST", "/orders", {"lines": [COLA]}, "buyer"),
    "cancel": ("POST", "/orders/{order_no}/cancel", {"reason": "不要了"}, "buyer"),
    "address": ("POST", "/addresses", ADDRESS, "buyer"),
}


def send(ctx, endpoint, body=NO_BODY, *, raw=None, content_type="application/json", headers=None):
    """Call a JSON endpoint with `body` (placeholders filled; JSON-encoded) or `raw` bytes/text."""
    method, path, _valid, caller = JSON_ENDPOINTS[endpoint]
    all_headers = dict(getattr(ctx, caller) if caller else {})
    if endpoint == "order":
        all_headers["Idempotency-Key"] = uuid.uuid4().hex
    all_headers.update(headers or {})
    kwargs = {"headers": all_headers}
    if raw is not None:
        kwargs["data"] = raw
    elif body is not NO_BODY:
        kwargs["data"] = json.dumps(fill(body, ctx.ids))  # ensure_ascii: odd characters travel as \u escapes
    if content_type is not None and "data" in kwargs:
        kwargs["content_type"] = content_type
    return ctx.client.open(MP + fill(path, ctx.ids), method=method, **kwargs)


# --- the tables' valid bodies really are valid (so each bad case fails for its one fault) -----------

@pytest.mark.parametrize("endpoint, status", [("cart", 200), ("preview", 200), ("order", 201), ("cancel", 200), ("address", 201)])
def test_the_valid_bodies_the_tables_start_from_are_accepted(ctx, endpoint, status):
    r = send(ctx, endpoint, JSON_ENDPOINTS[endpoint][2])
    assert r.status_code == status, r.get_json()


# --- fields: missing, wrong type, out of range, unknown, oversized --------------------------------
# One or two values per distinct check (type, null, bounds, unknown field); numbers far past the
# API's range are in OVERFLOW_REFUSED below, which also runs on PostgreSQL.

LINE_CASES = [  # (what is wrong, body, field named in details.fields) — CheckoutIn, shared by preview and order
    ("lines missing", {}, "lines"),
    ("lines null", {"lines": None}, "lines"),
    ("lines an object, not a list", {"lines": COLA}, "lines"),
    ("lines a string", {"lines": "abc"}, "lines"),
    ("lines empty", {"lines": []}, "lines"),
    ("201 lines", {"lines": [COLA] * 201}, "lines"),
    ("line a number", {"lines": [5]}, "lines"),
    ("line a list, not an object", {"lines": [["{sku}", 1]]}, "lines"),
    ("line without sku_id", {"lines": [{"qty": 1}]}, "lines"),
    ("line without qty", {"lines": [{"sku_id": "{sku}"}]}, "lines"),
    *[(f"sku_id {label}", {"lines": [{"sku_id": v, "qty": 1}]}, "lines") for label, v in [
        ('"1"', "1"), ("1.5", 1.5), ("true", True), ("null", None), ("[1]", [1]), ("0", 0), ("2**53", 2**53)]],
    *[(f"qty {label}", {"lines": [{"sku_id": "{sku}", "qty": v}]}, "lines") for label, v in [
        ('"5"', "5"), ("5.0", 5.0), ("true", True), ("null", None), ("{}", {}), ("0", 0), ("1,000,001", 1_000_001)]],
    *[(f"address_id {label}", {"lines": [COLA], "address_id": v}, "address_id") for label, v in [
        ('"1"', "1"), ("true", True), ("an object", {"id": 1}), ("0", 0), ("2**53", 2**53)]],
    ("unknown field dealer_id", {"lines": [COLA], "dealer_id": 1}, "dealer_id"),
    ("unknown line field unit_price_fen", {"lines": [{**COLA, "unit_price_fen": 1}]}, "lines"),
]
ORDER_ONLY_CASES = [
    ("remark 201 chars", {"lines": [COLA], "remark": "备" * 201}, "remark"),
    ("remark a number", {"lines": [COLA], "remark": 5}, "remark"),
    ("remark null", {"lines": [COLA], "remark": None}, "remark"),
    ("payment_method unknown", {"lines": [COLA], "payment_method": "cash"}, "payment_method"),
    ("payment_method null", {"lines": [COLA], "payment_method": None}, "payment_method"),
]
CART_CASES = [
    ("qty missing", {}, "qty"),
    *[(f"qty {label}", {"qty": v}, "qty") for label, v in [
        ('"5"', "5"), ("5.0", 5.0), ("true", True), ("null", None), ("[5]", [5]), ("0", 0), ("1,000,001", 1_000_001)]],
    ("unknown field unit_price_fen", {"qty": 1, "unit_price_fen": 1}, "unit_price_fen"),
]
ADDRESS_CASES = [
    ("everything missing", {}, "contact_name"),
    *[(f"{field} missing", {k: v for k, v in ADDRESS.items() if k != field}, field) for field in ADDRESS],
    ("contact_name empty", {**ADDRESS, "contact_name": ""}, "contact_name"),
    ("contact_name 33 chars", {**ADDRESS, "contact_name": "张" * 33}, "contact_name"),
    ("contact_name a number", {**ADDRESS, "contact_name": 5}, "contact_name"),
    ("contact_name null", {**ADDRESS, "contact_name": None}, "contact_name"),
    ("phone too short", {**ADDRESS, "phone": "123"}, "phone"),
    ("phone letters", {**ADDRESS, "phone": "phone-number"}, "phone"),
    ("phone a number", {**ADDRESS, "phone": 13800000001}, "phone"),
    ("region_code 5 digits", {**ADDRESS, "region_code": "44010"}, "region_code"),
    ("region_code letters", {**ADDRESS, "region_code": "abcdef"}, "region_code"),
    ("region_code a number", {**ADDRESS, "region_code": 440100}, "region_code"),
    ("region_code unknown", {**ADDRESS, "region_code": "999999"}, "region_code"),
    ("detail empty", {**ADDRESS, "detail": ""}, "detail"),
    ("detail 201 chars", {**ADDRESS, "detail": "路" * 201}, "detail"),
    ("detail 10k chars", {**ADDRESS, "detail": "x" * 10_000}, "detail"),
    ("unknown field dealer_id", {**ADDRESS, "dealer_id": 1}, "dealer_id"),
]
CANCEL_CASES = [
    ("reason 201 chars", {"reason": "因" * 201}, "reason"),
    ("reason a number", {"reason": 5}, "reason"),
    ("reason a list", {"reason": ["x"]}, "reason"),
    ("unknown field status", {"status": "approved"}, "status"),
]
BIND_CASES = [
    ("invite_code missing", {}, "invite_code"),
    ("invite_code a number", {"invite_code": 12345678}, "invite_code"),
    ("invite_code null", {"invite_code": None}, "invite_code"),
    ("invite_code a list", {"invite_code": ["ABCDEFGH"]}, "invite_code"),
    ("invite_code 3 chars", {"invite_code": "ABC"}, "invite_code"),
    ("invite_code 33 chars", {"invite_code": "A" * 33}, "invite_code"),
    ("invite_code 1MB (just under the body limit)", {"invite_code": "A" * 1_000_000}, "invite_code"),
    ("name empty", {"invite_code": "ABCDEFGH", "name": ""}, "name"),
    ("name 33 chars", {"invite_code": "ABCDEFGH", "name": "名" * 33}, "name"),
    ("name a number", {"invite_code": "ABCDEFGH", "name": 5}, "name"),
    ("unknown field dealer_id", {"invite_code": "ABCDEFGH", "dealer_id": 1}, "dealer_id"),
]
LOGIN_CASES = [
    ("code missing", {}, "code"),
    ("code a number", {"code": 5}, "code"),
    ("code null", {"code": None}, "code"),
    ("code empty", {"code": ""}, "code"),
    ("code 129 chars", {"code": "c" * 129}, "code"),
    ("code a list", {"code": ["c"]}, "code"),
    ("unknown field openid", {"code": "abc", "openid": "o-someone-else"}, "openid"),
]
BAD_FIELDS = {
    # Preview validates with the schema of the order's lines (CheckoutIn): a sample shows it does.
    "preview": [case for case in LINE_CASES
                if case[0] in ("lines missing", 'sku_id "1"', "qty 0", 'address_id "1"', "unknown field dealer_id")],
    "order": LINE_CASES + ORDER_ONLY_CASES,
    "cart": CART_CASES,
    "address": ADDRESS_CASES,
    "cancel": CANCEL_CASES,
    "bind": BIND_CASES,
    "login": LOGIN_CASES,
}


@pytest.mark.parametrize("endpoint", BAD_FIELDS)
def test_invalid_field_answers_422_naming_the_field_and_writes_nothing(ctx, subtests, endpoint):
    before = snapshot()
    for what, body, field in BAD_FIELDS[endpoint]:
        with subtests.test(what):
            assert_field_refused(send(ctx, endpoint, body), field)
            assert snapshot() == before
    if endpoint == "login":
        assert ctx.wechat.requests == []  # refused before asking WeChat


NOT_ASCII_DIGITS = {  # patterns match the whole value, in ASCII digits only
    "phone with a trailing newline": ("phone", "13800000001\n"),
    "phone in full-width digits": ("phone", "1３８００００００９９"),
    "phone in Arabic-Indic digits": ("phone", "1٣٨٠٠٠٠٠٠٠١"),
    "landline with a trailing newline": ("phone", "020-12345678\n"),
    "region_code with a trailing newline": ("region_code", "440100\n"),
    "region_code in full-width digits": ("region_code", "４４０１００"),
}


def test_phone_and_region_code_must_be_ascii_digits_only(ctx, subtests):
    before = snapshot()
    for what, (field, value) in NOT_ASCII_DIGITS.items():
        with subtests.test(what):
            assert_field_refused(send(ctx, "address", {**ADDRESS, field: value}), field)
            assert snapshot() == before


def test_is_default_must_be_a_json_boolean(ctx, subtests):
    before = snapshot()
    for value in ["yes", "on", "true", 1, 0, None, [True]]:
        with subtests.test(repr(value)):
            assert_field_refused(send(ctx, "address", {**ADDRESS, "is_default": value}), "is_default")
            assert snapshot() == before


@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
def test_a_body_that_is_not_an_object_answers_422(ctx, subtests, endpoint):
    before = snapshot()
    for raw in ["null", "[]", '"text"', "5", "true", "[{}]"]:
        with subtests.test(raw):
            assert_field_refused(send(ctx, endpoint, raw=raw), "_schema")
            assert snapshot() == before


def test_a_json_request_without_a_body_answers_422_missing_fields(ctx, subtests):
    before = snapshot()
    for endpoint in ["login", "bind", "cart", "preview", "order", "address"]:  # a cancel needs no body
        with subtests.test(endpoint):
            assert_refused(send(ctx, endpoint), 422, "validation_error")
            assert snapshot() == before


# --- malformed JSON, wrong content type, too large -----------------------------------------------

MALFORMED = {
    "truncated": '{"qty": ',
    "trailing comma": '{"qty": 1,}',
    "single quotes": "{'qty': 1}",
    "trailing garbage": '{"qty": 1} and more',
    "not UTF-8": b'{"qty": "\xff\xfe"}',
    "bare word": "qty=1",
    # Python's parser fails on these with RecursionError / ValueError rather than a JSONDecodeError.
    "100k nested arrays": "[" * 100_000,
    "100k nested objects": '{"a":' * 100_000,
    "5000-digit integer": '{"qty": 1' + "0" * 5000 + "}",
}


@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
def test_malformed_json_answers_400_malformed_json(ctx, subtests, endpoint):
    before = snapshot()
    for what, raw in MALFORMED.items():
        with subtests.test(what):
            assert_refused(send(ctx, endpoint, raw=raw), 400, "malformed_json")
            assert snapshot() == before


@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
def test_a_body_that_is_not_declared_json_answers_415(ctx, subtests, endpoint):
    body = json.dumps(fill(JSON_ENDPOINTS[endpoint][2], ctx.ids))  # valid JSON, wrong label
    before = snapshot()
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         "application/xml", None]:
        with subtests.test(str(content_type)):
            assert_refused(send(ctx, endpoint, raw=body, content_type=content_type), 415, "unsupported_media_type")
            assert snapshot() == before


def test_a_body_over_max_content_length_answers_413(ctx, subtests, app):
    limit = app.config["MAX_CONTENT_LENGTH"]
    raw = json.dumps({"pad": "x" * limit})
    assert len(raw) > limit
    before = snapshot()
    for endpoint in JSON_ENDPOINTS:
        with subtests.test(endpoint):
            assert_refused(send(ctx, endpoint, raw=raw), 413, "payload_too_large")
            assert snapshot() == before


def test_a_2mb_invite_code_answers_413(ctx):
    assert_refused(send(ctx, "bind", {"invite_code": "A" * 2 * 1024 * 1024}), 413, "payload_too_large")


# --- characters that cannot be stored or shown -------------------------------------------------------

LONE_SURROGATES = {  # JSON "\ud800" decodes to a str that is not valid UTF-8: (endpoint, body, field)
    "order remark": ("order", {"lines": [COLA], "remark": "备注\ud800"}, "remark"),
    "cancel reason": ("cancel", {"reason": "\ud800"}, "reason"),
    "address contact_name": ("address", {**ADDRESS, "contact_name": "张\ud800"}, "contact_name"),
    "address detail": ("address", {**ADDRESS, "detail": "路\udfff"}, "detail"),
    "login code": ("login", {"code": "abc\ud800"}, "code"),
    "bind invite_code": ("bind", {"invite_code": "ABCD\ud800"}, "invite_code"),
}


def test_a_lone_surrogate_in_a_string_is_refused_and_writes_nothing(ctx, subtests):
    before = snapshot()
    for what, (endpoint, body, _field) in LONE_SURROGATES.items():
        with subtests.test(what):
            r = send(ctx, endpoint, body)
            assert 400 <= r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:500])
            assert_refused(r, r.status_code)
            assert snapshot() == before
    assert ctx.wechat.requests == []


@pytest.mark.parametrize("endpoint, body, field", LONE_SURROGATES.values(), ids=LONE_SURROGATES.keys())
def test_a_lone_surrogate_in_a_string_answers_422_naming_the_field(ctx, endpoint, body, field):
    assert_field_refused(send(ctx, endpoint, body), field, "不是有效的 UTF-8 字符串")


def test_a_lone_surrogate_in_a_key_answers_400_malformed_json(ctx, subtests):
    # An unknown field is named in the error details, which could not be encoded: the body is refused whole.
    before = snapshot()
    for endpoint, body in [("cart", {"qty": 1, "\ud800": 1}), ("order", {"lines": [{**COLA, "\udfff": 1}]})]:
        with subtests.test(endpoint):
            assert_refused(send(ctx, endpoint, body), 400, "malformed_json")
            assert snapshot() == before


CONTROL_CHARACTERS = {  # (endpoint, body — or "GET" and a query — field); C0 controls other than \t \n \r
    "NUL in order remark": ("order", {"lines": [COLA], "remark": "a\x00b"}, "remark"),
    "NUL in cancel reason": ("cancel", {"reason": "a\x00b"}, "reason"),
    "NUL in address contact_name": ("address", {**ADDRESS, "contact_name": "张\x00"}, "contact_name"),
    "ESC in address detail": ("address", {**ADDRESS, "detail": "路\x1b[2J"}, "detail"),
    "NUL in bind invite_code": ("bind", {"invite_code": "ABCD\x00EFG"}, "invite_code"),
    "BEL in login code": ("login", {"code": "abc\x07"}, "code"),
    "NUL in product search q": ("GET", "/products?q=a%00", "q"),
    "unit separator in product search q": ("GET", "/products?q=a%1Fb", "q"),
}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_control_character_in_text_answers_422_on_every_backend(backend, subtests):
    before = snapshot()
    for what, (endpoint, body, field) in CONTROL_CHARACTERS.items():
        with subtests.test(what):
            if endpoint == "GET":
                r = backend.client.get(MP + body, headers=backend.buyer)
            else:
                r = send(backend, endpoint, body)
            assert_field_refused(r, field, "不能包含控制字符")
            assert snapshot() == before


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_tabs_and_line_breaks_in_text_are_kept(backend):
    detail = "体育西路4号\r\n2楼\t东门"
    r = send(backend, "address", {**ADDRESS, "detail": detail})
    assert r.status_code == 201, r.get_json()
    listed = backend.client.get(f"{MP}/addresses", headers=backend.buyer).get_json()["items"]
    assert [a["detail"] for a in listed if a["id"] == r.get_json()["id"]] == [detail]


# --- bearer tokens --------------------------------------------------------------------------------

def signed(payload, *, key=None, salt=TOKEN_SALT, seconds_ago=0):
    """A token like `issue_token` makes, optionally with another key/salt or an old timestamp."""

    class Signer(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - seconds_ago

    serializer = URLSafeTimedSerializer(key or current_app.config["SECRET_KEY"], salt=salt, signer=Signer)
    return serializer.dumps(payload)


def _expired(w):
    return "Bearer " + signed({"oid": w.a_buyer.openid}, seconds_ago=current_app.config["TOKEN_TTL_SECONDS"] + 60)


def _tampered(w):
    """A real token with one character of its signature changed.

    A middle character: the last one of the base64 signature carries padding bits, so changing
    it does not always change the signature's bytes.
    """
    token = issue_token(w.a_buyer.openid)
    signed_part, signature = token.rsplit(".", 1)
    i = len(signature) // 2
    forged = signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1:]
    assert base64_decode(forged) != base64_decode(signature)
    return f"Bearer {signed_part}.{forged}"


TOKEN_CASES = {  # what the Authorization header says -> expected error code
    "no header": (lambda w: None, "unauthorized"),
    "Basic scheme": (lambda w: "Basic YTpi", "unauthorized"),
    "Bearer without token": (lambda w: "Bearer    ", "unauthorized"),
    "token without scheme": (lambda w: issue_token(w.a_buyer.openid), "unauthorized"),
    "garbage": (lambda w: "Bearer abc.def.ghi", "token_invalid"),
    "20k chars of garbage": (lambda w: "Bearer " + "a" * 20_000, "token_invalid"),
    "non-ASCII garbage": (lambda w: "Bearer ÿþý", "token_invalid"),
    "forged with another key": (lambda w: "Bearer " + signed({"oid": w.a_buyer.openid}, key="guessed-secret"), "token_invalid"),
    "signed for another purpose (salt)": (lambda w: "Bearer " + signed({"oid": w.a_buyer.openid}, salt="other.salt"), "token_invalid"),
    "tampered signature": (_tampered, "token_invalid"),
    "payload not an object": (lambda w: "Bearer " + signed([w.a_buyer.openid]), "token_invalid"),
    "openid not a string": (lambda w: "Bearer " + signed({"oid": 12345}), "token_invalid"),
    "expired": (_expired, "token_expired"),
}


@pytest.mark.parametrize("make_header, code", TOKEN_CASES.values(), ids=TOKEN_CASES.keys())
@pytest.mark.parametrize("request_", [("GET", "/me", None), ("POST", "/orders", {"lines": [COLA]})], ids=["read", "write"])
def test_a_missing_or_bad_token_answers_401_and_writes_nothing(ctx, make_header, code, request_):
    method, path, body = request_
    header = make_header(ctx.w)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if header is not None:
        headers["Authorization"] = header
    before = snapshot()
    r = call(ctx.client, method, path, fill(body, ctx.ids), headers)
    assert_refused(r, 401, code)
    assert snapshot() == before


def test_every_authenticated_route_refuses_an_expired_token(ctx, subtests):
    before = snapshot()
    for method, path, body in ENDPOINTS:
        with subtests.test(f"{method} {path}"):
            r = call(ctx.client, method, fill(path, ctx.ids), fill(body, ctx.ids), {"Authorization": _expired(ctx.w)})
            assert_refused(r, 401, "token_expired")
            assert snapshot() == before


# --- Idempotency-Key --------------------------------------------------------------------------------

IDEMPOTENCY_KEYS = {  # header value (None: absent) -> expected error code
    "absent": (None, "idempotency_key_required"),
    "empty": ("", "idempotency_key_required"),
    "blank": ("     ", "idempotency_key_required"),
    "7 characters": ("1234567", "idempotency_key_invalid"),
    "65 characters": ("k" * 65, "idempotency_key_invalid"),
    "inner space": ("abcd efgh", "idempotency_key_invalid"),
    "slash": ("abcd/efgh", "idempotency_key_invalid"),
    "markup": ("<script>alert(1)</script>", "idempotency_key_invalid"),
    "non-ASCII letter": ("abcdéfghij", "idempotency_key_invalid"),
}


def _order_with_key(ctx, key):
    headers = dict(ctx.buyer)
    if key is not None:
        headers["Idempotency-Key"] = key
    return ctx.client.post(f"{MP}/orders", json={"lines": [{"sku_id": ctx.w.cola.id, "qty": 1}]}, headers=headers)


def test_order_without_a_well_formed_idempotency_key_answers_400(ctx, subtests):
    before = snapshot()
    for what, (key, code) in IDEMPOTENCY_KEYS.items():
        with subtests.test(what):
            assert_refused(_order_with_key(ctx, key), 400, code)
            assert snapshot() == before


def test_idempotency_keys_at_the_edges_of_the_format_are_accepted(ctx, subtests):
    for key in ["k" * 8, "K" * 64, "a1_b2.c3:d4-e5"]:
        with subtests.test(key):
            r = _order_with_key(ctx, key)
            assert r.status_code == 201, r.get_json()


# --- query strings ------------------------------------------------------------------------------------

BAD_QUERIES = {  # list -> [(query, parameter named in details.fields)]
    "/products": [
        *[(f"page={v}", "page") for v in ("0", "-1", "abc", "1.5", "", "10001", "1e3")],
        *[(f"page_size={v}", "page_size") for v in ("0", "101", "abc")],
        *[(f"category_id={v}", "category_id") for v in ("abc", "0", str(2**53))],
        ("q=", "q"),
        ("q=" + "x" * 51, "q"),
    ],
    "/orders": [
        *[(f"page={v}", "page") for v in ("0", "abc", "", "10001")],
        *[(f"page_size={v}", "page_size") for v in ("0", "101")],
        *[(f"status={v}", "status") for v in ("unknown", "", "PENDING_APPROVAL", "cancelled'--")],
    ],
}


@pytest.mark.parametrize("path", BAD_QUERIES)
def test_bad_query_value_answers_422_naming_the_parameter(ctx, subtests, path):
    for query, field in BAD_QUERIES[path]:
        with subtests.test(query[:30]):
            assert_field_refused(ctx.client.get(f"{MP}{path}?{query}", headers=ctx.buyer), field)


def test_a_choice_refused_names_the_choices_in_chinese_not_their_codes(ctx):
    r = send(ctx, "order", {"lines": [COLA], "payment_method": "bitcoin"})
    assert_field_refused(r, "payment_method", "取值应为以下之一：信用额度（账期）、预付款、微信支付、线下转账")
    r = ctx.client.get(f"{MP}/orders?status=unknown", headers=ctx.buyer)
    assert_field_refused(r, "status", "取值应为以下之一：待审批、已审批、部分发货、已发货、已完成、已取消、已驳回")


def test_unknown_query_parameter_answers_422(ctx, subtests):
    # like an unknown JSON field: a typo such as pagesize for page_size must not go unnoticed
    for path, query in [("/products", "pagesize=50"), ("/products", "foo=1"), ("/orders", "dealer_id=1")]:
        with subtests.test(f"{path}?{query}"):
            assert_field_refused(ctx.client.get(f"{MP}{path}?{query}", headers=ctx.buyer), query.split("=")[0])


NOT_PLAIN_DIGITS = {  # int() would take every one of these
    "underscore": "1_0",
    "Arabic-Indic one": "%D9%A1",
    "full-width one": "%EF%BC%91",
    "leading space": "%201",
    "plus sign": "%2B1",
}


def test_query_integers_accept_only_ascii_digits(ctx, subtests):
    for what, value in NOT_PLAIN_DIGITS.items():
        for path, param in [("/orders", "page"), ("/products", "page_size")]:
            with subtests.test(f"{path} {param} {what}"):
                assert_field_refused(ctx.client.get(f"{MP}{path}?{param}={value}", headers=ctx.buyer), param)


# --- ids and order numbers in the path -----------------------------------------------------------------

BAD_PATH_IDS = ["0", "-1", "01", "abc", "1.5", "1e3", "0x10", "%201",
                str(10**15), str(MAX_ID), str(2**53), str(2**64), "9" * 20]  # 16+ digits: past MAX_PATH_ID
ID_ROUTES = [("GET", "/products/{}", None), ("PUT", "/cart/items/{}", {"qty": 1}), ("DELETE", "/cart/items/{}", None)]


@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_a_path_id_that_cannot_be_an_id_answers_404(ctx, subtests, route):
    method, path, body = route
    before = snapshot()
    for bad_id in BAD_PATH_IDS:
        with subtests.test(bad_id):
            assert_refused(call(ctx.client, method, path.format(bad_id), body, ctx.buyer), 404, "not_found")
            assert snapshot() == before


def test_a_well_formed_but_unknown_sku_id_in_the_path_answers_404(ctx, subtests):
    before = snapshot()
    for (method, path, body), code in zip(ID_ROUTES, ["sku_not_found", "sku_not_found", "cart_item_not_found"]):
        for unknown_id in [999_999, MAX_PATH_ID]:
            with subtests.test(f"{method} {path.format(unknown_id)}"):
                assert_refused(call(ctx.client, method, path.format(unknown_id), body, ctx.buyer), 404, code)
                assert snapshot() == before


ODD_ORDER_NOS = {  # path segment -> expected code: only [A-Za-z0-9]{1,20} can name an order
    "never issued": ("SO209901019999", "order_not_found"),
    "lower case": ("so209901019999", "order_not_found"),
    "20 characters": ("S" * 20, "order_not_found"),
    "21 characters": ("S" * 21, "not_found"),
    "Chinese": ("订单号", "not_found"),
    "SQL injection": ("'%20OR%20'1'='1", "not_found"),
    "dot dot": ("..", "not_found"),
    "encoded dot dot": ("%2E%2E", "not_found"),
    "markup": ("%3Cscript%3E", "not_found"),
    "emoji": ("%F0%9F%99%82", "not_found"),
    "percent": ("%25", "not_found"),
    "invalid UTF-8": ("%FF%FE", "not_found"),
    "encoded slash": ("SO%2F1", "not_found"),
    "space": ("%20", "not_found"),
    "NUL": ("SO%00", "not_found"),
    "control character": ("SO%1F", "not_found"),
}


@pytest.mark.parametrize("suffix", ["", "/cancel"], ids=["detail", "cancel"])
def test_an_odd_order_number_answers_404(ctx, subtests, suffix):
    method = "POST" if suffix else "GET"
    before = snapshot()
    for what, (order_no, code) in ODD_ORDER_NOS.items():
        with subtests.test(what):
            r = call(ctx.client, method, f"/orders/{order_no}{suffix}", {} if suffix else None, ctx.buyer)
            assert_refused(r, 404, code)
            assert snapshot() == before


@pytest.mark.postgres
def test_an_order_number_with_a_nul_answers_404_on_postgresql(pg_client, pg_world, subtests):
    # PostgreSQL cannot even compare text with a NUL in it: the path must not reach the database
    pg = make_ctx(pg_client, pg_world)
    before = snapshot()
    for method, path in [("GET", "/orders/SO%00"), ("POST", "/orders/SO%00/cancel")]:
        with subtests.test(method):
            assert_refused(call(pg.client, method, path, {} if method == "POST" else None, pg.buyer), 404, "not_found")
            assert snapshot() == before


# --- unknown SKUs in bodies --------------------------------------------------------------------------------

def test_preview_reports_an_unknown_sku_as_a_problem_and_prices_nothing(ctx, subtests):
    before = snapshot()
    for sku_id in [999_999, MAX_ID]:
        with subtests.test(sku_id):
            r = send(ctx, "preview", {"lines": [{"sku_id": sku_id, "qty": 1}]})
            assert r.status_code == 200  # preview lists problems instead of refusing
            body = r.get_json()
            assert body["ok"] is False and body["lines"] == []
            assert [(p["code"], p["sku_id"]) for p in body["problems"]] == [("sku_unavailable", sku_id)]
            assert CJK.search(body["problems"][0]["message"])
            assert snapshot() == before


def test_order_with_an_unknown_sku_answers_422_order_invalid(ctx, subtests):
    before = snapshot()
    for sku_id in [999_999, MAX_ID]:
        with subtests.test(sku_id):
            error = assert_refused(send(ctx, "order", {"lines": [COLA, {"sku_id": sku_id, "qty": 1}]}), 422, "order_invalid")
            assert [(p["code"], p["sku_id"]) for p in error["details"]["problems"]] == [("sku_unavailable", sku_id)]
            assert snapshot() == before


# --- wrong methods -------------------------------------------------------------------------------------------------

def test_a_wrong_method_answers_405(ctx, subtests):
    before = snapshot()
    for method, path in [
        ("DELETE", "/orders"), ("PUT", "/products"), ("GET", "/checkout/preview"), ("GET", "/auth/login"),
        ("PATCH", "/addresses"), ("POST", "/cart"), ("GET", "/orders/{order_no}/cancel"),
    ]:
        with subtests.test(f"{method} {path}"):
            assert_refused(call(ctx.client, method, fill(path, ctx.ids), None, ctx.buyer), 405, "method_not_allowed")
            assert snapshot() == before


# --- login codes WeChat rejects ----------------------------------------------------------------------------------------

def test_a_reused_login_code_answers_401_invalid_login_code(ctx):
    code = ctx.wechat.mint_code("o-reused-code-user")
    assert ctx.client.post(f"{MP}/auth/login", json={"code": code}).status_code == 200
    before = snapshot()
    error = assert_refused(ctx.client.post(f"{MP}/auth/login", json={"code": code}), 401, "invalid_login_code")
    assert error["details"] == {"wechat_errcode": 40163}
    assert snapshot() == before


def test_an_unknown_login_code_answers_401_invalid_login_code(ctx, subtests):
    before = snapshot()
    for code in ["never-minted-code", "x", "订单", "a" * 128]:
        with subtests.test(code[:20]):
            error = assert_refused(ctx.client.post(f"{MP}/auth/login", json={"code": code}), 401, "invalid_login_code")
            assert error["details"] == {"wechat_errcode": 40029}
            assert snapshot() == before


WECHAT_FAULTS = {  # what the stand-in does -> (status, code)
    "system busy (errcode -1)": ({"errcode": -1}, 503, "wechat_unavailable"),
    "HTTP 500": ({"http_status": 500}, 503, "wechat_unavailable"),
    "rate limited (errcode 45011)": ({"errcode": 45011}, 429, "login_rate_limited"),
    "refuses our appid (errcode 40013)": ({"errcode": 40013}, 502, "wechat_error"),
}


def test_a_wechat_failure_during_login_answers_a_clear_error(ctx, subtests):
    before = snapshot()
    for what, (fault, status, code) in WECHAT_FAULTS.items():
        with subtests.test(what):
            ctx.wechat.fail_next("/sns/jscode2session", **fault)
            r = ctx.client.post(f"{MP}/auth/login", json={"code": ctx.wechat.mint_code("o-unlucky-user")})
            assert_refused(r, status, code)
            assert snapshot() == before


# --- money and id overflow, also on PostgreSQL -------------------------------------------------------------------------

OVERFLOW_REFUSED = [  # (endpoint, body, status, code) — numbers past what the API or a BIGINT column takes
    ("cart", {"qty": 2**31}, 422, "validation_error"),
    ("cart", {"qty": 2**63}, 422, "validation_error"),
    ("cart", {"qty": 10**12}, 422, "validation_error"),
    ("preview", {"lines": [{"sku_id": "{sku}", "qty": 2**31}]}, 422, "validation_error"),
    ("preview", {"lines": [{"sku_id": 2**63, "qty": 1}]}, 422, "validation_error"),
    ("preview", {"lines": [{"sku_id": 2**64, "qty": 1}]}, 422, "validation_error"),
    ("preview", {"lines": [COLA], "address_id": 2**63}, 422, "validation_error"),
    ("preview", {"lines": [COLA], "address_id": MAX_ID}, 404, "address_not_found"),
    ("order", {"lines": [{"sku_id": "{sku}", "qty": -(2**63)}]}, 422, "validation_error"),
    ("order", {"lines": [{"sku_id": "{sku}", "qty": 2**63}]}, 422, "validation_error"),
    ("order", {"lines": [{"sku_id": 2**80, "qty": 1}]}, 422, "validation_error"),
    ("order", {"lines": [{"sku_id": MAX_ID, "qty": 1}]}, 422, "order_invalid"),
    ("order", {"lines": [COLA], "address_id": MAX_ID}, 404, "address_not_found"),
    ("order", {"lines": [COLA], "address_id": 2**63}, 422, "validation_error"),
]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_numbers_past_the_api_range_are_refused_cleanly(backend, subtests):
    before = snapshot()
    for i, (endpoint, body, status, code) in enumerate(OVERFLOW_REFUSED):
        with subtests.test(f"{endpoint}-{i}"):
            assert_refused(send(backend, endpoint, body), status, code)
            assert snapshot() == before


OVERFLOW_URLS = [  # (path, status, code)
    (f"/products/{MAX_PATH_ID}", 404, "sku_not_found"),
    (f"/products/{MAX_ID}", 404, "not_found"),
    (f"/products/{2**63}", 404, "not_found"),
    (f"/products?category_id={2**63}", 422, "validation_error"),
    (f"/orders?page={2**63}", 422, "validation_error"),
    (f"/orders?page_size={2**31}", 422, "validation_error"),
]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_huge_ids_and_pages_in_the_url_are_refused_cleanly(backend, subtests):
    for path, status, code in OVERFLOW_URLS:
        with subtests.test(path):
            assert_refused(backend.client.get(MP + path, headers=backend.buyer), status, code)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_the_largest_valid_ids_and_pages_are_answered_not_crashed(backend):
    c, h = backend.client, backend.buyer
    assert c.get(f"{MP}/products?category_id={MAX_ID}", headers=h).get_json()["items"] == []
    assert c.get(f"{MP}/products?page=10000&page_size=100", headers=h).get_json()["items"] == []
    assert c.get(f"{MP}/orders?page=10000&page_size=100", headers=h).get_json()["items"] == []
    assert_refused(c.delete(f"{MP}/cart/items/{MAX_PATH_ID}", headers=h), 404, "cart_item_not_found")
    assert_refused(c.put(f"{MP}/cart/items/{MAX_PATH_ID}", json={"qty": 1}, headers=h), 404, "sku_not_found")


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_amounts_beyond_32_bits_are_priced_and_stored_exactly(backend):
    w = backend.w
    for sku in (w.cola, w.gift):
        set_stock(sku, w.wh_south, 3_000_000)
    db.session.get(CreditAccount, w.dealer_a.id).credit_limit_fen = 10**13
    db.session.commit()
    # 200 lines of a million gift boxes each: 2e8 units, ¥39.8 billion, in a preview
    preview = send(backend, "preview", {"lines": [{"sku_id": w.gift.id, "qty": 1_000_000}] * 200}).get_json()
    assert preview["lines"][0]["qty"] == 200_000_000
    assert preview["totals"]["total_fen"] == 200_000_000 * 19_900 == 3_980_000_000_000

    r = send(backend, "order", {"lines": [{"sku_id": w.cola.id, "qty": 1_000_000}, {"sku_id": w.gift.id, "qty": 1_000_000}]})
    assert r.status_code == 201, r.get_json()
    total = 1_000_000 * 4000 + 1_000_000 * 19_900
    assert total > 2**31
    assert r.get_json()["totals"]["total_fen"] == total
    stored = backend.client.get(f"{MP}/orders/{r.get_json()['order_no']}", headers=backend.buyer).get_json()
    assert [line["amount_fen"] for line in stored["lines"]] == [4_000_000_000, 19_900_000_000]
    assert stored["totals"]["total_fen"] == total
    assert backend.client.get(f"{MP}/me", headers=backend.buyer).get_json()["credit"]["used_fen"] == total + 4000
