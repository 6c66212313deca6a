"""Submitting, reading and cancelling orders through the mini-program API."""
import pytest
from sqlalchemy import delete, func, select, text

from app.extensions import db
from app.funds.models import CreditAccount, CreditEntry
from app.orders.models import Order, OrderEvent, OrderLine, OrderNoCounter
from app.kernel.clock import business_today
from tests.factories import auth, set_stock
from tests.helpers import MP, available, credit, new_key, reserved, submit


def order_count():
    return db.session.execute(select(func.count()).select_from(Order)).scalar_one()


def test_submit_reprices_from_server_prices_and_reserves_stock_and_credit(on_both):
    client, world = on_both
    before = available(world.cola)
    r = submit(client, auth(world.a_buyer), [
        {"sku_id": world.cola.id, "qty": 3, "unit_price_fen": 1},  # client prices are not accepted
    ])
    assert r.status_code == 422  # unknown field refused rather than silently ignored

    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 3}, {"sku_id": world.soy.id, "qty": 2}])
    assert r.status_code == 201, r.json
    body = r.json
    assert body["status"] == "pending_approval"
    assert body["order_no"].startswith("SO") and len(body["order_no"]) == 14
    lines = {line["sku_id"]: line for line in body["lines"]}
    # dealer-specific price beats the tier price; the tier price beats the list price
    assert lines[world.cola.id]["unit_price_fen"] == 4000
    assert lines[world.cola.id]["price_source"] == "dealer"
    assert lines[world.soy.id]["unit_price_fen"] == 2299
    assert lines[world.soy.id]["price_source"] == "tier"
    assert body["totals"] == {"subtotal_fen": 3 * 4000 + 2 * 2299, "discount_fen": 0, "shipping_fen": 0, "total_fen": 16598,
                            "rebate_fen": 0, "paid_fen": 0, "due_fen": 16598}
    assert body["totals"]["total_fen"] == sum(line["amount_fen"] for line in body["lines"])
    assert body["events"][0]["to_status"] == "pending_approval"
    assert body["ship_to"]["address"] == "广东省广州市天河路1号"
    assert available(world.cola) == before - 3
    assert credit(world.dealer_a)["held"] == 16598


def test_lines_snapshot_name_spec_and_price(on_both):
    client, world = on_both
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.vinegar.id, "qty": 1}])
    world.vinegar.name = "改名后的醋"
    world.vinegar.list_price_fen = 9999
    db.session.commit()
    order = client.get(f"{MP}/orders/{r.json['order_no']}", headers=auth(world.a_buyer)).json
    assert order["lines"][0]["name"] == "商品SKU-VIN"
    assert order["lines"][0]["unit_price_fen"] == 1999


def test_repeated_sku_lines_are_merged(on_both):
    client, world = on_both
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}, {"sku_id": world.cola.id, "qty": 2}])
    assert r.status_code == 201
    assert [(line["sku_id"], line["qty"]) for line in r.json["lines"]] == [(world.cola.id, 3)]


def test_second_submit_with_same_key_returns_same_order(on_both):
    client, world = on_both
    headers = auth(world.a_buyer)
    lines = [{"sku_id": world.cola.id, "qty": 2}]
    first = submit(client, headers, lines, key="retry-key-0001")
    second = submit(client, headers, lines, key="retry-key-0001")
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json["order_no"] == second.json["order_no"]
    assert order_count() == 1
    assert reserved(world.cola) == 2


def test_same_key_with_another_body_is_409_and_changes_nothing(on_both):
    client, world = on_both
    headers = auth(world.a_buyer)
    submit(client, headers, [{"sku_id": world.cola.id, "qty": 2}], key="retry-key-0002")
    r = submit(client, headers, [{"sku_id": world.cola.id, "qty": 5}], key="retry-key-0002")
    assert r.status_code == 409
    assert r.json["error"]["code"] == "idempotency_conflict"
    assert order_count() == 1
    assert reserved(world.cola) == 2


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_same_key_with_only_unknown_skus_is_still_409(request, database):
    client, world = (request.getfixturevalue(name) for name in
                     {"sqlite": ("client", "world"), "postgres": ("pg_client", "pg_world")}[database])
    headers = auth(world.a_buyer)
    assert submit(client, headers, [{"sku_id": world.cola.id, "qty": 2}], key="retry-key-0003").status_code == 201
    r = submit(client, headers, [{"sku_id": 999_999_999, "qty": 1}], key="retry-key-0003")
    assert r.status_code == 409 and r.json["error"]["code"] == "idempotency_conflict"
    assert order_count() == 1


def test_same_key_from_another_dealer_is_a_different_order(on_both):
    client, world = on_both
    lines = [{"sku_id": world.cola.id, "qty": 1}]
    a = submit(client, auth(world.a_buyer), lines, key="shared-key-0001")
    b = submit(client, auth(world.b_owner), lines, key="shared-key-0001")
    assert a.status_code == b.status_code == 201
    assert a.json["order_no"] != b.json["order_no"]


def test_missing_idempotency_key_is_400(client, world):
    r = client.post(f"{MP}/orders", headers=auth(world.a_buyer), json={"lines": [{"sku_id": world.cola.id, "qty": 1}]})
    assert r.status_code == 400
    assert r.json["error"]["code"] == "idempotency_key_required"
    assert order_count() == 0


def test_every_problem_is_reported_at_once_and_nothing_is_written(on_both):
    client, world = on_both
    set_stock(world.soy, world.wh_south, 1)
    db.session.commit()
    r = submit(client, auth(world.a_buyer), [
        {"sku_id": world.tea.id, "qty": 3},        # below MOQ 5 and not a multiple of 5
        {"sku_id": world.soy.id, "qty": 2},        # only 1 in stock
        {"sku_id": world.retired.id, "qty": 1},    # inactive
        {"sku_id": 999999, "qty": 1},              # unknown
    ])
    assert r.status_code == 422
    codes = sorted((p["code"], p.get("sku_id")) for p in r.json["error"]["details"]["problems"])
    assert codes == sorted([
        ("below_moq", world.tea.id), ("not_step_multiple", world.tea.id),
        ("insufficient_stock", world.soy.id), ("sku_unavailable", world.retired.id), ("sku_unavailable", 999999),
    ])
    assert order_count() == 0
    assert reserved(world.soy) == 0
    assert credit(world.dealer_a)["held"] == 0


def test_insufficient_stock_alone_is_409(on_both):
    client, world = on_both
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.soy.id, "qty": 101}])
    assert r.status_code == 409
    assert r.json["error"]["code"] == "insufficient_stock"
    problem = r.json["error"]["details"]["problems"][0]
    assert problem["available"] == 100 and problem["qty"] == 101
    assert "库存不足" in problem["message"]


def test_stock_is_taken_across_warehouses_by_priority(on_both):
    client, world = on_both
    # cola: 100 in the south warehouse (priority 1) + 50 in the east one
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 120}])
    assert r.status_code == 201, r.json
    assert available(world.cola) == 30
    client.post(f"{MP}/orders/{r.json['order_no']}/cancel", headers=auth(world.a_buyer), json={})
    assert available(world.cola) == 150 and reserved(world.cola) == 0


def test_order_over_credit_is_409_and_holds_nothing(on_both):
    client, world = on_both
    account = db.session.get(CreditAccount, world.dealer_a.id)
    account.credit_limit_fen = 10_000
    db.session.commit()
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 3}])  # 12,000 fen
    assert r.status_code == 409
    assert r.json["error"]["code"] == "credit_limit_exceeded"
    assert "信用额度不足" in r.json["error"]["message"]
    assert credit(world.dealer_a)["held"] == 0
    assert order_count() == 0
    ok = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}])  # 8,000 fits
    assert ok.status_code == 201


def test_suspended_dealer_cannot_order(client, world):
    world.dealer_a.status = "suspended"
    db.session.commit()
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}])
    assert r.status_code == 403
    assert r.json["error"]["code"] == "dealer_suspended"
    assert client.get(f"{MP}/me", headers=auth(world.a_buyer)).json["dealer"]["status"] == "suspended"


def test_viewer_cannot_order(client, world):
    r = submit(client, auth(world.a_viewer), [{"sku_id": world.cola.id, "qty": 1}])
    assert r.status_code == 403
    assert r.json["error"]["code"] == "forbidden_role"


def test_address_defaults_and_explicit_choice(client, world):
    headers = auth(world.a_owner)
    r = client.post(f"{MP}/addresses", headers=headers, json={
        "contact_name": "王五", "phone": "13900000000", "region_code": "440300", "detail": "科技园 8 栋",
    })
    assert r.status_code == 201
    assert r.json["is_default"] is False and r.json["region_names"] == "广东省深圳市"
    order = submit(client, headers, [{"sku_id": world.cola.id, "qty": 1}], address_id=r.json["id"]).json
    assert order["ship_to"]["address"] == "广东省深圳市科技园 8 栋"
    default = submit(client, headers, [{"sku_id": world.cola.id, "qty": 1}]).json
    assert default["ship_to"]["contact_name"] == "张三"


def test_cancel_before_approval_releases_stock_and_credit(on_both):
    client, world = on_both
    headers = auth(world.a_buyer)
    order = submit(client, headers, [{"sku_id": world.cola.id, "qty": 4}]).json
    r = client.post(f"{MP}/orders/{order['order_no']}/cancel", headers=headers, json={"reason": "下错了"})
    assert r.status_code == 200
    assert r.json["status"] == "cancelled"
    assert [(e["from_status"], e["to_status"]) for e in r.json["events"]] == [
        (None, "pending_approval"), ("pending_approval", "cancelled"),
    ]
    assert r.json["events"][1]["reason"] == "下错了"
    assert reserved(world.cola) == 0
    assert credit(world.dealer_a)["held"] == 0
    kinds = db.session.execute(select(CreditEntry.kind, CreditEntry.amount_fen, CreditEntry.held_after_fen).order_by(CreditEntry.id)).all()
    assert [tuple(k) for k in kinds] == [("hold", 16000, 16000), ("release", -16000, 0)]


def test_cancel_twice_is_409(client, world):
    headers = auth(world.a_buyer)
    order = submit(client, headers, [{"sku_id": world.cola.id, "qty": 4}]).json
    client.post(f"{MP}/orders/{order['order_no']}/cancel", headers=headers)
    r = client.post(f"{MP}/orders/{order['order_no']}/cancel", headers=headers)
    assert r.status_code == 409
    assert r.json["error"]["code"] == "order_not_cancellable"
    assert reserved(world.cola) == 0


def test_approved_order_cannot_be_cancelled_by_dealer(client, world):
    headers = auth(world.a_buyer)
    order = submit(client, headers, [{"sku_id": world.cola.id, "qty": 4}]).json
    db.session.execute(db.update(Order).values(status="approved"))
    db.session.commit()
    r = client.post(f"{MP}/orders/{order['order_no']}/cancel", headers=headers)
    assert r.status_code == 409
    assert "已审批" in r.json["error"]["message"]
    assert reserved(world.cola) == 4


def test_order_list_filters_by_status_and_pages(client, world):
    headers = auth(world.a_buyer)
    numbers = [submit(client, headers, [{"sku_id": world.cola.id, "qty": 1}]).json["order_no"] for _ in range(3)]
    client.post(f"{MP}/orders/{numbers[0]}/cancel", headers=headers)
    page = client.get(f"{MP}/orders?page_size=2", headers=headers).json
    assert page["total"] == 3 and [o["order_no"] for o in page["items"]] == numbers[:0:-1]
    cancelled = client.get(f"{MP}/orders?status=cancelled", headers=headers).json
    assert [o["order_no"] for o in cancelled["items"]] == [numbers[0]]
    assert cancelled["items"][0]["status_label"] == "已取消"


def test_order_numbers_count_up_per_day(client, world):
    headers = auth(world.a_buyer)
    numbers = [submit(client, headers, [{"sku_id": world.cola.id, "qty": 1}]).json["order_no"] for _ in range(3)]
    assert [int(n[-4:]) for n in numbers] == [1, 2, 3]
    assert len({n[2:10] for n in numbers}) == 1


def _fresh_order_no_sequence(counter_last=None):
    """Forget today's PostgreSQL order-number sequence; optionally leave a counter row
    (numbers handed out before sequences) for the new sequence to continue from."""
    day = business_today()
    db.session.execute(text(f"DROP SEQUENCE IF EXISTS order_no_{day:%Y%m%d}"))
    db.session.execute(delete(OrderNoCounter))
    if counter_last is not None:
        db.session.add(OrderNoCounter(day=day, last=counter_last))
    db.session.commit()
    return f"SO{day:%Y%m%d}"


@pytest.mark.postgres
def test_order_numbers_count_up_per_day_on_postgresql(pg_client, pg_world):
    prefix = _fresh_order_no_sequence()
    headers = auth(pg_world.a_buyer)
    numbers = [submit(pg_client, headers, [{"sku_id": pg_world.cola.id, "qty": 1}]).json["order_no"] for _ in range(2)]
    numbers.append(submit(pg_client, auth(pg_world.b_owner), [{"sku_id": pg_world.cola.id, "qty": 1}]).json["order_no"])
    assert numbers == [prefix + "0001", prefix + "0002", prefix + "0003"]
    # A refused submission uses no number.
    assert submit(pg_client, headers, [{"sku_id": pg_world.soy.id, "qty": 500}]).status_code == 409
    assert submit(pg_client, headers, [{"sku_id": pg_world.soy.id, "qty": 1}]).json["order_no"] == prefix + "0004"


@pytest.mark.postgres
def test_postgresql_order_numbers_continue_the_days_counter_and_grow_past_9999(pg_client, pg_world):
    prefix = _fresh_order_no_sequence(counter_last=9998)
    headers = auth(pg_world.a_buyer)
    numbers = [submit(pg_client, headers, [{"sku_id": pg_world.cola.id, "qty": 1}]).json["order_no"] for _ in range(2)]
    assert numbers == [prefix + "9999", prefix + "10000"]


def test_order_rows_are_consistent(on_both):
    client, world = on_both
    submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 2}, {"sku_id": world.soy.id, "qty": 1}])
    order = db.session.execute(select(Order)).scalar_one()
    lines = db.session.execute(select(OrderLine).where(OrderLine.order_id == order.id)).scalars().all()
    assert order.total_fen == sum(line.amount_fen for line in lines) == order.credit_held_fen
    events = db.session.execute(select(OrderEvent).where(OrderEvent.order_id == order.id)).scalars().all()
    assert [(e.from_status, e.to_status, e.actor_type, e.actor_id) for e in events] == [
        (None, "pending_approval", "dealer_user", world.a_buyer.id)
    ]


@pytest.mark.parametrize("qty, ok", [(5, True), (10, True), (3, False), (7, False)])
def test_moq_and_step(client, world, qty, ok):
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.tea.id, "qty": qty}])
    assert (r.status_code == 201) is ok, r.json


def test_submitted_skus_leave_the_cart(on_both):
    client, world = on_both
    headers = auth(world.a_buyer)
    client.put(f"{MP}/cart/items/{world.cola.id}", headers=headers, json={"qty": 2})
    client.put(f"{MP}/cart/items/{world.soy.id}", headers=headers, json={"qty": 1})
    submit(client, headers, [{"sku_id": world.cola.id, "qty": 2}])
    cart = client.get(f"{MP}/cart", headers=headers).json
    assert [i["sku_id"] for i in cart["items"]] == [world.soy.id]


def test_new_key_after_failure_can_succeed(on_both):
    client, world = on_both
    headers = auth(world.a_buyer)
    key = new_key()
    failed = submit(client, headers, [{"sku_id": world.soy.id, "qty": 500}], key=key)
    assert failed.status_code == 409
    # A failed submission stores no key: fixing the body and retrying with it works.
    retry = submit(client, headers, [{"sku_id": world.soy.id, "qty": 5}], key=key)
    assert retry.status_code == 201


def test_each_database_writes_through_its_own_order_writer(on_both, monkeypatch):
    """The `on_both` tests above cover the one-statement write on PostgreSQL (and the
    step-by-step one on SQLite) only while submit picks the writer by database."""
    from app.orders import writing

    client, world = on_both
    used = []
    for name in ("write_order", "write_order_postgresql"):
        real = getattr(writing, name)
        monkeypatch.setattr(writing, name, lambda *a, _real=real, _name=name, **kw: used.append(_name) or _real(*a, **kw))
    assert submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 1}]).status_code == 201
    expected = "write_order_postgresql" if db.engine.dialect.name == "postgresql" else "write_order"
    assert used == [expected]


@pytest.mark.postgres
def test_submission_plans_generically_only_inside_its_own_transaction(pg_client, pg_world):
    """The submission's first statement switches its transaction to generic plans (so the
    prepared lock-and-price is not planned again on every submission); the switch is
    transaction-local, so the pooled connection goes back with PostgreSQL's default."""
    from app.database import generic_plans_columns
    from sqlalchemy import select as sa_select

    connection = db.session.connection()
    assert connection.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
    connection.execute(sa_select(*generic_plans_columns("postgresql"))).one()
    assert connection.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_generic_plan"
    db.session.rollback()
    assert db.session.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
    assert generic_plans_columns("sqlite") == ()

    for _ in range(6):  # past psycopg's prepare threshold (5): the statements are prepared
        r = submit(pg_client, auth(pg_world.a_buyer), [{"sku_id": pg_world.cola.id, "qty": 1}])
        assert r.status_code == 201, r.json
    db.session.rollback()
    assert db.session.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
