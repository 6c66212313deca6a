"""Paying an order: credit, prepaid, WeChat Pay or offline transfer, each with an optional
part-payment from the rebate balance (capped by a brand setting); cancel and reject give
everything back; a credit order's shipments turn its hold into receivable."""
import pytest
from sqlalchemy import func, select

from app.database import write_transaction
from app.extensions import db
from app.funds import checkout, ledger
from app.funds.models import CreditAccount, CreditEntry, LedgerEntry, Payment
from app.kernel.errors import DomainError
from app.orders import approval as orders
from app.orders import payments as order_payments
from app.orders.models import OPEN_STATUSES, Order
from app.orders.shipments import ship_order
from app.staff.models import Staff
from tests.factories import add, auth
from tests.helpers import MP, new_key, submit

COLA_PRICE = 4000  # dealer A's own price
GOODS = 10 * COLA_PRICE  # 40,000 fen
CAP = 12_000  # 30 % of the goods, the default rate


def fund(dealer, *, prepaid=0, rebate=0):
    movements = [ledger.Movement(account, amount, "adjustment") for account, amount in
                 (("prepaid", prepaid), ("rebate", rebate)) if amount]
    ledger.record_movements(dealer_id=dealer.id, movements=movements, actor=ledger.SYSTEM, actor_type="system")


def balances(dealer):
    db.session.expire_all()
    account = db.session.get(CreditAccount, dealer.id)
    return {"receivable": account.receivable_fen, "held": account.held_fen, "prepaid": account.prepaid_fen,
            "rebate": account.rebate_fen}


def entries(dealer):
    db.session.expire_all()
    return db.session.execute(
        select(LedgerEntry.account, LedgerEntry.amount_fen, LedgerEntry.ref_type)
        .where(LedgerEntry.dealer_id == dealer.id, LedgerEntry.ref_type != "adjustment").order_by(LedgerEntry.id)
    ).all()


def assert_ledger_consistent(dealer_ids):
    """Each account's entries replay its balance, and held_fen is the sum of open orders' holds."""
    db.session.expire_all()
    for dealer_id in dealer_ids:
        account = db.session.get(CreditAccount, dealer_id)
        for name in ledger.LEDGER_ACCOUNTS:
            rows = db.session.execute(
                select(LedgerEntry.amount_fen, LedgerEntry.balance_after_fen)
                .where(LedgerEntry.dealer_id == dealer_id, LedgerEntry.account == name).order_by(LedgerEntry.id)
            ).all()
            running = 0
            for amount, after in rows:
                running += amount
                assert after == running, (dealer_id, name, rows)
                if name != "receivable":
                    assert after >= 0
            assert getattr(account, f"{name}_fen") == running, (dealer_id, name)
        holds = db.session.execute(
            select(func.coalesce(func.sum(Order.credit_held_fen), 0))
            .where(Order.dealer_id == dealer_id, Order.status.in_(OPEN_STATUSES))
        ).scalar_one()
        assert account.held_fen == holds


def order_cola(client, world, qty=10, **extra):
    return submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": qty}], **extra)


def order_row(order_no):
    db.session.expire_all()
    return db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one()


# --- each method, with and without rebate ------------------------------------------------

# method, rebate used -> (credit held, paid, due, ledger entries of the submission)
CASES = [
    ("credit", 0, GOODS, 0, GOODS, []),
    ("credit", CAP, GOODS - CAP, 0, GOODS - CAP, [("rebate", -CAP, "order")]),
    ("prepaid", 0, 0, GOODS, 0, [("prepaid", -GOODS, "order")]),
    ("prepaid", CAP, 0, GOODS - CAP, 0, [("rebate", -CAP, "order"), ("prepaid", -(GOODS - CAP), "order")]),
    ("wechat", 0, 0, 0, GOODS, []),
    ("wechat", CAP, 0, 0, GOODS - CAP, [("rebate", -CAP, "order")]),
    ("offline", 0, 0, 0, GOODS, []),
    ("offline", CAP, 0, 0, GOODS - CAP, [("rebate", -CAP, "order")]),
]


@pytest.mark.parametrize("method,rebate,held,paid,due,posted", CASES)
def test_each_method_pays_what_the_rebate_leaves(on_both, method, rebate, held, paid, due, posted):
    client, world = on_both
    fund(world.dealer_a, prepaid=50_000, rebate=20_000)
    r = order_cola(client, world, payment_method=method, use_rebate_fen=rebate)
    assert r.status_code == 201, r.json
    body = r.json
    assert body["payment_method"] == method
    assert body["totals"] == {"subtotal_fen": GOODS, "discount_fen": 0, "shipping_fen": 0, "total_fen": GOODS,
                              "rebate_fen": rebate, "paid_fen": paid, "due_fen": due}
    assert balances(world.dealer_a) == {"receivable": 0, "held": held, "prepaid": 50_000 - paid,
                                        "rebate": 20_000 - rebate}
    assert entries(world.dealer_a) == posted
    order = order_row(body["order_no"])
    assert (order.rebate_fen, order.paid_fen, order.credit_held_fen, order.due_fen) == (rebate, paid, held, due)
    # The order's page says the same.
    again = client.get(f"{MP}/orders/{body['order_no']}", headers=auth(world.a_buyer)).json
    assert again["totals"] == body["totals"]
    assert_ledger_consistent([world.dealer_a.id])


@pytest.mark.parametrize("method", ["credit", "prepaid", "wechat", "offline"])
@pytest.mark.parametrize("how", ["cancel", "reject"])
def test_cancel_or_reject_gives_back_rebate_prepaid_and_credit(client, world, method, how):
    fund(world.dealer_a, prepaid=50_000, rebate=20_000)
    before = balances(world.dealer_a)
    r = order_cola(client, world, payment_method=method, use_rebate_fen=CAP)
    assert r.status_code == 201, r.json
    order_no = r.json["order_no"]
    if how == "cancel":
        assert client.post(f"{MP}/orders/{order_no}/cancel", headers=auth(world.a_buyer), json={}).status_code == 200
    else:
        orders.reject_order(staff=world.rep, order_no=order_no, reason="价格有误")
    assert balances(world.dealer_a) == before
    order = order_row(order_no)
    assert order.credit_held_fen == 0 and order.due_fen == 0
    back = [e for e in entries(world.dealer_a)[-2:] if e[1] > 0]
    expected = [("rebate", CAP, "order")] + ([("prepaid", GOODS - CAP, "order")] if method == "prepaid" else [])
    assert back == expected
    assert_ledger_consistent([world.dealer_a.id])


# --- the rebate cap and the balances, at their boundaries -------------------------------------

@pytest.mark.parametrize("method", ["credit", "prepaid", "wechat", "offline"])
@pytest.mark.parametrize("extra,status", [(0, 201), (1, 422)])
def test_rebate_exactly_at_the_cap_passes_one_fen_over_is_refused(client, world, method, extra, status):
    # Soy at ¥22.99: 30 % is 689.7 fen, rounded half up once to 690.
    fund(world.dealer_a, prepaid=10_000, rebate=10_000)
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.soy.id, "qty": 1}], payment_method=method,
               use_rebate_fen=690 + extra)
    assert r.status_code == status, r.json
    if status == 422:
        error = r.json["error"]
        assert error["code"] == "rebate_over_cap"
        assert "30%" in error["message"] and "¥6.90" in error["message"] and "¥6.91" in error["message"]
        assert db.session.query(Order).count() == 0
        assert balances(world.dealer_a) == {"receivable": 0, "held": 0, "prepaid": 10_000, "rebate": 10_000}
    else:
        assert r.json["totals"]["rebate_fen"] == 690


@pytest.mark.parametrize("method", ["credit", "prepaid", "wechat", "offline"])
@pytest.mark.parametrize("short,status", [(0, 201), (1, 409)])
def test_rebate_up_to_the_balance_passes_one_fen_more_is_refused(client, world, method, short, status):
    fund(world.dealer_a, prepaid=50_000, rebate=5_000 - short)
    r = order_cola(client, world, payment_method=method, use_rebate_fen=5_000)
    assert r.status_code == status, r.json
    if status == 409:
        assert r.json["error"]["code"] == "insufficient_rebate"
        assert "返利余额不足" in r.json["error"]["message"] and "¥49.99" in r.json["error"]["message"]
        assert db.session.query(Order).count() == 0
        assert balances(world.dealer_a)["rebate"] == 4_999 and balances(world.dealer_a)["prepaid"] == 50_000


@pytest.mark.parametrize("rebate", [0, CAP])
@pytest.mark.parametrize("short,status", [(0, 201), (1, 409)])
def test_prepaid_must_cover_what_the_rebate_leaves(client, world, rebate, short, status):
    fund(world.dealer_a, prepaid=GOODS - rebate - short, rebate=CAP)
    r = order_cola(client, world, payment_method="prepaid", use_rebate_fen=rebate)
    assert r.status_code == status, r.json
    after = balances(world.dealer_a)
    if status == 201:
        assert after["prepaid"] == 0 and r.json["totals"]["due_fen"] == 0
    else:
        error = r.json["error"]
        assert error["code"] == "insufficient_prepaid" and "预付款余额不足" in error["message"]
        assert [p["code"] for p in error["details"]["problems"]] == ["insufficient_prepaid"]
        assert after == {"receivable": 0, "held": 0, "prepaid": GOODS - rebate - 1, "rebate": CAP}
        assert db.session.query(Order).count() == 0


def test_credit_checks_only_what_the_rebate_leaves_against_the_limit(client, world):
    db.session.get(CreditAccount, world.dealer_a.id).credit_limit_fen = GOODS - CAP
    db.session.commit()
    fund(world.dealer_a, rebate=CAP)
    assert order_cola(client, world, use_rebate_fen=CAP - 1).json["error"]["code"] == "credit_limit_exceeded"
    r = order_cola(client, world, use_rebate_fen=CAP)
    assert r.status_code == 201 and balances(world.dealer_a)["held"] == GOODS - CAP


def test_the_cap_follows_the_brand_setting(client, world, staff):
    fund(world.dealer_a, rebate=GOODS)
    checkout.set_rebate_rate(max_rate_bp=5000, actor=staff["admin"])
    assert order_cola(client, world, use_rebate_fen=GOODS // 2 + 1).json["error"]["code"] == "rebate_over_cap"
    assert order_cola(client, world, use_rebate_fen=GOODS // 2).status_code == 201
    checkout.set_rebate_rate(max_rate_bp=0)
    r = order_cola(client, world, use_rebate_fen=1)
    assert r.status_code == 422 and "0%" in r.json["error"]["message"]
    with pytest.raises(DomainError) as refused:
        checkout.set_rebate_rate(max_rate_bp=10_001)
    assert refused.value.status == 422
    with pytest.raises(DomainError) as refused:
        checkout.set_rebate_rate(max_rate_bp=3000, actor=staff["finance"])
    assert refused.value.status == 403


def test_a_full_rebate_leaves_nothing_to_pay(client, world, staff):
    checkout.set_rebate_rate(max_rate_bp=10_000, actor=staff["admin"])
    fund(world.dealer_a, rebate=3 * GOODS)
    for method in ("credit", "prepaid", "wechat"):
        r = order_cola(client, world, payment_method=method, use_rebate_fen=GOODS)
        assert r.status_code == 201, r.json
        assert (r.json["totals"]["paid_fen"], r.json["totals"]["due_fen"]) == (0, 0)
    assert balances(world.dealer_a) == {"receivable": 0, "held": 0, "prepaid": 0, "rebate": 0}
    r = client.post(f"{MP}/orders/{r.json['order_no']}/pay", headers=auth(world.a_buyer))
    assert r.status_code == 409 and r.json["error"]["code"] == "order_already_paid"


# --- idempotency ------------------------------------------------------------------------------

def test_a_retry_with_rebate_returns_the_same_order_and_takes_the_rebate_once(client, world):
    fund(world.dealer_a, prepaid=GOODS, rebate=CAP)
    key = new_key()
    first = order_cola(client, world, key=key, payment_method="prepaid", use_rebate_fen=CAP)
    again = order_cola(client, world, key=key, payment_method="prepaid", use_rebate_fen=CAP)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json["order_no"] == first.json["order_no"]
    assert again.json["totals"] == first.json["totals"]
    assert balances(world.dealer_a) == {"receivable": 0, "held": 0, "prepaid": CAP, "rebate": 0}
    other = order_cola(client, world, key=key, payment_method="prepaid", use_rebate_fen=CAP - 1)
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_conflict"
    assert db.session.query(Order).count() == 1


# --- preview ------------------------------------------------------------------------------------

def preview(client, world, qty=10, **extra):
    return client.post(f"{MP}/checkout/preview", headers=auth(world.a_buyer),
                       json={"lines": [{"sku_id": world.cola.id, "qty": qty}], **extra})


def test_preview_shows_the_split(client, world):
    fund(world.dealer_a, prepaid=30_000, rebate=10_000)
    r = preview(client, world, payment_method="prepaid", use_rebate_fen=10_000)
    assert r.status_code == 200
    assert r.json["ok"] is True and r.json["problems"] == []
    assert r.json["payment"] == {
        "method": "prepaid", "method_label": "预付款", "total_fen": GOODS, "goods_fen": GOODS,
        "rebate_rate_bp": 3000, "rebate_cap_fen": CAP, "rebate_available_fen": 10_000, "rebate_max_fen": 10_000,
        "rebate_fen": 10_000, "payable_fen": 30_000, "prepaid_available_fen": 30_000,
    }
    assert balances(world.dealer_a) == {"receivable": 0, "held": 0, "prepaid": 30_000, "rebate": 10_000}


def test_preview_reports_every_payment_problem(client, world):
    fund(world.dealer_a, prepaid=100, rebate=100)
    r = preview(client, world, payment_method="prepaid", use_rebate_fen=CAP + 1)
    assert r.json["ok"] is False
    codes = [p["code"] for p in r.json["problems"]]
    assert codes == ["rebate_over_cap", "insufficient_rebate", "insufficient_prepaid"]
    assert all(p["message"] for p in r.json["problems"])
    assert r.json["payment"]["payable_fen"] == GOODS - CAP - 1
    # On credit with the rebate the limit is checked against the rest only.
    r = preview(client, world, payment_method="credit")
    assert r.json["ok"] is True and r.json["payment"]["payable_fen"] == GOODS


# --- credit orders: shipments turn the hold into receivable ------------------------------

@pytest.fixture
def clerk(world):
    return add(Staff(username="cang1", name="仓管", role="warehouse"))


def ship(clerk, order_no, quantities, n):
    return ship_order(staff=clerk, order_no=order_no, quantities=quantities, carrier="顺丰速运",
                      tracking_no=f"SF{n:08d}")


@pytest.mark.parametrize("rebate", [0, 1_001])
def test_partial_shipments_move_the_hold_to_receivable_and_add_up_exactly(client, world, clerk, rebate):
    fund(world.dealer_a, rebate=rebate)
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 3}, {"sku_id": world.soy.id, "qty": 7}],
               use_rebate_fen=rebate)
    assert r.status_code == 201, r.json
    order_no, total = r.json["order_no"], r.json["totals"]["total_fen"]
    credit_pays = total - rebate
    orders.approve_order(staff=world.rep, order_no=order_no)
    order = order_row(order_no)
    by_sku = {line.sku_id: line for line in order.lines}
    exposure = balances(world.dealer_a)["held"]
    assert exposure == credit_pays

    ship(clerk, order_no, {by_sku[world.cola.id].id: 1, by_sku[world.soy.id].id: 2}, 1)
    first = balances(world.dealer_a)
    assert first["receivable"] + first["held"] == exposure
    assert 0 < first["receivable"] < credit_pays
    ship(clerk, order_no, {by_sku[world.soy.id].id: 5}, 2)
    ship(clerk, order_no, {by_sku[world.cola.id].id: 2}, 3)
    done = balances(world.dealer_a)
    assert done == {"receivable": credit_pays, "held": 0, "prepaid": 0, "rebate": 0}
    order = order_row(order_no)
    assert order.status == "shipped" and order.credit_held_fen == 0
    shipment_entries = db.session.execute(
        select(LedgerEntry.ref_id, LedgerEntry.amount_fen).where(LedgerEntry.ref_type == "shipment").order_by(LedgerEntry.id)
    ).all()
    assert [ref for ref, _ in shipment_entries] == [s.id for s in order.shipments]
    assert sum(amount for _, amount in shipment_entries) == credit_pays
    releases = db.session.execute(
        select(func.sum(CreditEntry.amount_fen)).where(CreditEntry.kind == "release", CreditEntry.order_id == order.id)
    ).scalar_one()
    assert releases == -credit_pays
    assert_ledger_consistent([world.dealer_a.id])
    # The dealer's ledger names the order behind each shipment's receivable.
    page = client.get(f"{MP}/account/ledger?account=receivable", headers=auth(world.a_buyer)).json
    assert {item["order_no"] for item in page["items"]} == {order_no} and page["total"] == 3


def test_the_first_partial_shipment_posts_the_shipped_goods_share(client, world, clerk):
    # 3 cola at 40.00 and 7 soy at 22.99 = 280.93; 1 cola + 2 soy = 85.98 of it.
    r = submit(client, auth(world.a_buyer), [{"sku_id": world.cola.id, "qty": 3}, {"sku_id": world.soy.id, "qty": 7}])
    order_no = r.json["order_no"]
    orders.approve_order(staff=world.rep, order_no=order_no)
    by_sku = {line.sku_id: line for line in order_row(order_no).lines}
    ship(clerk, order_no, {by_sku[world.cola.id].id: 1, by_sku[world.soy.id].id: 2}, 1)
    assert balances(world.dealer_a)["receivable"] == 4000 + 2 * 2299


def test_shipping_a_non_credit_order_posts_no_receivable(client, world, clerk):
    fund(world.dealer_a, prepaid=GOODS)
    order_no = order_cola(client, world, payment_method="prepaid").json["order_no"]
    orders.approve_order(staff=world.rep, order_no=order_no)
    line = order_row(order_no).lines[0]
    ship(clerk, order_no, {line.id: 10}, 1)
    assert balances(world.dealer_a) == {"receivable": 0, "held": 0, "prepaid": 0, "rebate": 0}


# --- applying a payment (WeChat Pay and confirmed offline transfers) --------------------------

def apply(order_no, amount, method="offline"):
    with write_transaction() as session:
        dealer_id = session.execute(select(Order.dealer_id).where(Order.order_no == order_no)).scalar_one()
        locked = ledger.lock_balances(session, dealer_id)
        order = session.execute(select(Order).where(Order.order_no == order_no).with_for_update()).scalar_one()
        payment = order_payments.apply_payment(
            session, locked, order, amount_fen=amount, method=method, reference="线下转账凭证 #1",
            actor=ledger.SYSTEM, actor_type="staff",
        )
        return payment.applied_fen


def test_an_offline_order_waits_unpaid_then_a_confirmed_transfer_pays_it(client, world):
    fund(world.dealer_a, rebate=CAP)
    order_no = order_cola(client, world, payment_method="offline", use_rebate_fen=CAP).json["order_no"]
    assert apply(order_no, 20_000) == 20_000
    totals = client.get(f"{MP}/orders/{order_no}", headers=auth(world.a_buyer)).json["totals"]
    assert (totals["paid_fen"], totals["due_fen"]) == (20_000, GOODS - CAP - 20_000)
    # Paying more than is due: the rest goes to prepaid.
    assert apply(order_no, 10_000) == GOODS - CAP - 20_000
    assert balances(world.dealer_a) == {"receivable": 0, "held": 0, "prepaid": 30_000 - (GOODS - CAP), "rebate": 0}
    assert order_row(order_no).due_fen == 0
    assert entries(world.dealer_a)[-3:] == [
        ("receivable", GOODS - CAP - 20_000, "order"), ("receivable", -(GOODS - CAP - 20_000), "payment"),
        ("prepaid", 30_000 - (GOODS - CAP), "payment"),
    ]
    assert db.session.query(Payment).filter_by(method="offline").count() == 2
    assert_ledger_consistent([world.dealer_a.id])


def test_a_payment_for_a_credit_order_pays_the_receivable(client, world):
    order_no = order_cola(client, world).json["order_no"]
    assert apply(order_no, 5_000) == 0
    assert balances(world.dealer_a) == {"receivable": -5_000, "held": GOODS, "prepaid": 0, "rebate": 0}
    assert order_row(order_no).paid_fen == 0


def test_a_wechat_order_with_rebate_asks_wechat_pay_only_for_the_rest(client, world, wechat):
    fund(world.dealer_a, rebate=CAP)
    order_no = order_cola(client, world, payment_method="wechat", use_rebate_fen=CAP).json["order_no"]
    r = client.post(f"{MP}/orders/{order_no}/pay", headers=auth(world.a_buyer))
    assert r.status_code == 200 and r.json["amount_fen"] == GOODS - CAP


def test_apply_payment_refuses_bad_amounts_and_methods(client, world):
    order_no = order_cola(client, world, payment_method="offline").json["order_no"]
    for amount, method in ((0, "offline"), (-1, "offline"), (100, "prepaid")):
        with pytest.raises(DomainError) as refused:
            apply(order_no, amount, method)
        assert refused.value.status == 422
    assert balances(world.dealer_a)["receivable"] == 0


# --- under concurrency (PostgreSQL, real threads) -------------------------------------------------

def _post(headers, lines, **extra):
    def job(client):
        r = client.post(f"{MP}/orders", headers={**headers, "Idempotency-Key": new_key()}, json={"lines": lines, **extra})
        return r.status_code, r.get_json()
    return job


@pytest.mark.postgres
def test_concurrent_prepaid_orders_never_overdraw_one_balance(pg_app, pg_world):
    from tests.test_concurrency import run_concurrently

    w = pg_world
    price = 1999  # vinegar at list price
    fund(w.dealer_a, prepaid=10 * price - 500, rebate=30 * 500)
    # Every order uses 500 fen of rebate (cap: 30 % of 19.99 = 6.00) and pays 14.99 from prepaid:
    # the prepaid balance (194.90) is the one that runs out, after 13 orders.
    lines = [{"sku_id": w.vinegar.id, "qty": 1}]
    headers = [auth(w.a_buyer), auth(w.a_owner)]
    jobs = [_post(headers[i % 2], lines, payment_method="prepaid", use_rebate_fen=500) for i in range(30)]
    results = run_concurrently(pg_app, jobs)

    assert not [r for r in results if isinstance(r, Exception)], results
    placed = [body for status, body in results if status == 201]
    refused = [body for status, body in results if status != 201]
    expected = (10 * price - 500) // (price - 500)
    assert len(placed) == expected
    assert {(status, body["error"]["code"]) for status, body in results if status != 201} == {(409, "insufficient_prepaid")}
    assert all("预付款余额不足" in body["error"]["message"] for body in refused)
    after = balances(w.dealer_a)
    assert after["prepaid"] == 10 * price - 500 - expected * (price - 500) >= 0
    assert expected == 13 and after["rebate"] == 30 * 500 - expected * 500
    assert_ledger_consistent([w.dealer_a.id])


@pytest.mark.postgres
def test_shipping_and_ordering_at_once_keep_exposure_and_holds_exact(pg_app, pg_world):
    """Exposure = receivable + held: shipments move credit from held to receivable without
    changing it, so new credit orders racing the shipments get exactly the headroom left."""
    from tests.test_concurrency import run_concurrently

    w = pg_world
    clerk_id = add(Staff(username="cang1", name="仓管", role="warehouse")).id
    client = pg_app.test_client()
    placed = []
    for _ in range(6):
        r = client.post(f"{MP}/orders", headers={**auth(w.a_buyer), "Idempotency-Key": new_key()},
                        json={"lines": [{"sku_id": w.cola.id, "qty": 2}, {"sku_id": w.vinegar.id, "qty": 3}]})
        assert r.status_code == 201, r.get_json()
        placed.append(r.get_json()["order_no"])
        orders.approve_order(staff=w.rep, order_no=placed[-1])
    exposure = balances(w.dealer_a)["held"]
    new_order = 2299  # one soy at the gold price
    db.session.get(CreditAccount, w.dealer_a.id).credit_limit_fen = exposure + 5 * new_order
    db.session.commit()
    line_ids = {no: [line.id for line in order_row(no).lines] for no in placed}

    def shipping(order_no, n):
        def job(_client):
            with pg_app.app_context():
                clerk = db.session.get(Staff, clerk_id)
                first, second = line_ids[order_no]
                ship_order(staff=clerk, order_no=order_no, quantities={first: 1, second: 1}, carrier="顺丰速运",
                           tracking_no=f"SF{n:06d}A")
                ship_order(staff=clerk, order_no=order_no, quantities={first: 1, second: 2}, carrier="顺丰速运",
                           tracking_no=f"SF{n:06d}B")
                return "shipped"
        return job

    jobs = [shipping(no, n) for n, no in enumerate(placed)]
    jobs += [_post(auth(w.a_buyer if i % 2 else w.a_owner), [{"sku_id": w.soy.id, "qty": 1}]) for i in range(15)]
    results = run_concurrently(pg_app, jobs)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert results[:6] == ["shipped"] * 6
    statuses = sorted(status for status, _ in results[6:])
    assert statuses == [201] * 5 + [409] * 10
    assert {body["error"]["code"] for status, body in results[6:] if status == 409} == {"credit_limit_exceeded"}
    after = balances(w.dealer_a)
    assert after["receivable"] == exposure and after["held"] == 5 * new_order
    assert after["receivable"] + after["held"] == exposure + 5 * new_order  # exactly the limit
    assert all(order_row(no).status == "shipped" and order_row(no).credit_held_fen == 0 for no in placed)
    assert_ledger_consistent([w.dealer_a.id])


def test_the_split_refuses_an_unknown_method_or_a_negative_rebate():
    for method, rebate in (("cash", 0), ("credit", -1), ("credit", 1.5)):
        with pytest.raises(DomainError) as refused:
            checkout.split_payment(method=method, total_fen=100, goods_fen=100, use_rebate_fen=rebate, rate_bp=3000,
                                   rebate_balance_fen=0, prepaid_balance_fen=0)
        assert refused.value.status == 422


@pytest.mark.parametrize("amount,part,whole,share", [(101, 1, 2, 51), (100, 1, 3, 33), (5, 2, 3, 3), (999, 7, 7, 999)])
def test_shares_round_half_up_once(amount, part, whole, share):
    from app.kernel.money import share_of

    assert share_of(amount, part, whole) == share
