"""Stock, credit and idempotency hold under real concurrency.

The PostgreSQL tests are the proof (row locks); the SQLite test shows the embedded
default serialises writers with BEGIN IMMEDIATE instead of overselling.
"""
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.dealers.models import Address, Dealer, DealerUser
from app.extensions import db
from app.funds.models import CreditAccount
from app.inventory.models import Stock
from app.orders.models import CartItem, Order
from tests.factories import add, auth, set_stock
from tests.helpers import MP, credit, new_key


def make_dealers(world, n, credit_limit_fen=10**12):
    users = []
    for i in range(n):
        dealer = add(Dealer(code=f"DX{i:03d}", name=f"并发测试经销商{i}", tier_id=world.gold.id, region_code="440100"))
        add(CreditAccount(dealer_id=dealer.id, credit_limit_fen=credit_limit_fen))
        add(Address(dealer_id=dealer.id, contact_name="测试", phone="13800000000", region_code="440100", detail="测试路", is_default=True))
        users.append(add(DealerUser(dealer_id=dealer.id, role="buyer", openid=f"o-dx-{i}")))
    db.session.commit()
    return users


def run_concurrently(app, jobs):
    """Run each job (a callable taking a test client) in its own thread, all released at once."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def worker(i, job):
        client = app.test_client()
        barrier.wait()
        try:
            results[i] = job(client)
        except Exception as exc:  # recorded; the test asserts there were none
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def post_order(headers, lines, key=None):
    def job(client):
        r = client.post(f"{MP}/orders", headers={**headers, "Idempotency-Key": key or new_key()}, json={"lines": lines})
        return r.status_code, r.get_json()

    return job


def stock_row(sku_id):
    db.session.expire_all()
    return db.session.execute(
        select(func.sum(Stock.on_hand), func.sum(Stock.reserved)).where(Stock.sku_id == sku_id)
    ).one()


@pytest.mark.postgres
def test_hundred_concurrent_orders_never_oversell(pg_app, pg_world):
    w = pg_world
    set_stock(w.vinegar, w.wh_south, 50)
    users = make_dealers(w, 10)
    db.session.commit()
    jobs = [post_order(auth(users[i % 10]), [{"sku_id": w.vinegar.id, "qty": 1}]) for i in range(100)]
    results = run_concurrently(pg_app, jobs)

    assert not [r for r in results if isinstance(r, Exception)]
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 50, 409: 50}, statuses
    assert {body["error"]["code"] for status, body in results if status == 409} == {"insufficient_stock"}
    on_hand, reserved = stock_row(w.vinegar.id)
    assert (on_hand, reserved) == (50, 50)
    assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 50


@pytest.mark.postgres
def test_concurrent_multi_line_orders_in_any_line_order_do_not_deadlock(pg_app, pg_world):
    w = pg_world
    for sku in (w.cola, w.soy, w.vinegar):
        set_stock(sku, w.wh_south, 1000)
    set_stock(w.cola, w.wh_east, 0)
    users = make_dealers(w, 8)
    forward = [{"sku_id": w.cola.id, "qty": 1}, {"sku_id": w.soy.id, "qty": 1}, {"sku_id": w.vinegar.id, "qty": 1}]
    jobs = [post_order(auth(users[i % 8]), forward if i % 2 else forward[::-1]) for i in range(60)]
    results = run_concurrently(pg_app, jobs)
    assert not [r for r in results if isinstance(r, Exception)]
    assert Counter(s for s, _ in results) == {201: 60}
    for sku in (w.cola, w.soy, w.vinegar):
        assert stock_row(sku.id)[1] == 60


@pytest.mark.postgres
def test_concurrent_credit_orders_never_exceed_the_limit(pg_app, pg_world):
    w = pg_world
    account = db.session.get(CreditAccount, w.dealer_a.id)
    account.credit_limit_fen = 10_000  # room for two orders of 4,000
    db.session.commit()
    jobs = [post_order(auth(w.a_buyer), [{"sku_id": w.cola.id, "qty": 1}]) for _ in range(20)]
    results = run_concurrently(pg_app, jobs)
    assert not [r for r in results if isinstance(r, Exception)]
    statuses = Counter(s for s, _ in results)
    assert statuses == {201: 2, 409: 18}, statuses
    assert {b["error"]["code"] for s, b in results if s == 409} == {"credit_limit_exceeded"}
    c = credit(w.dealer_a)
    assert c["held"] == 8_000 and c["held"] + c["receivable"] <= c["limit"]


@pytest.mark.postgres
def test_concurrent_retries_with_one_key_create_one_order(pg_app, pg_world):
    w = pg_world
    key = new_key()
    lines = [{"sku_id": w.cola.id, "qty": 2}]
    results = run_concurrently(pg_app, [post_order(auth(w.a_buyer), lines, key) for _ in range(20)])
    assert not [r for r in results if isinstance(r, Exception)]
    assert {s for s, _ in results} == {201}
    assert len({b["order_no"] for _, b in results}) == 1
    assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 1
    assert stock_row(w.cola.id)[1] == 2


@pytest.mark.postgres
def test_concurrent_cancels_and_submits_keep_reservations_exact(pg_app, pg_world):
    w = pg_world
    set_stock(w.soy, w.wh_south, 40)
    users = make_dealers(w, 4)
    client = pg_app.test_client()
    placed = []
    for i in range(20):
        r = client.post(f"{MP}/orders", headers={**auth(users[i % 4]), "Idempotency-Key": new_key()},
                        json={"lines": [{"sku_id": w.soy.id, "qty": 1}]})
        assert r.status_code == 201
        placed.append((users[i % 4], r.get_json()["order_no"]))

    def cancel(user, order_no):
        headers = auth(user)

        def job(c):
            r = c.post(f"{MP}/orders/{order_no}/cancel", headers=headers)
            return r.status_code, r.get_json()
        return job

    jobs = [cancel(u, no) for u, no in placed] + [
        post_order(auth(users[i % 4]), [{"sku_id": w.soy.id, "qty": 1}]) for i in range(30)
    ]
    results = run_concurrently(pg_app, jobs)
    assert not [r for r in results if isinstance(r, Exception)]
    assert all(s == 200 for s, _ in results[:20])
    created = sum(1 for s, _ in results[20:] if s == 201)
    assert all(s in (201, 409) for s, _ in results[20:])
    on_hand, reserved = stock_row(w.soy.id)
    assert reserved == created and on_hand - reserved >= 0


def test_sqlite_threads_never_oversell(app, world, tmp_path):
    """SQLite ignores FOR UPDATE; BEGIN IMMEDIATE makes writers queue instead of overselling."""
    set_stock(world.vinegar, world.wh_south, 10)
    users = make_dealers(world, 4)
    jobs = [post_order(auth(users[i % 4]), [{"sku_id": world.vinegar.id, "qty": 1}]) for i in range(30)]
    results = run_concurrently(app, jobs)
    assert not [r for r in results if isinstance(r, Exception)]
    assert Counter(s for s, _ in results) == {201: 10, 409: 20}
    assert stock_row(world.vinegar.id) == (10, 10)


@pytest.mark.postgres
def test_a_double_tap_on_the_cart_never_fails(pg_app, pg_world):
    w = pg_world
    headers = auth(w.a_buyer)

    def put(client):
        r = client.put(f"{MP}/cart/items/{w.cola.id}", headers=headers, json={"qty": 2})
        return r.status_code, r.get_json()

    results = run_concurrently(pg_app, [put for _ in range(8)])
    assert [s for s, _ in results] == [200] * 8, results
    assert db.session.execute(select(func.count()).select_from(CartItem)).scalar_one() == 1


@pytest.mark.postgres
def test_two_binds_of_one_wechat_user_at_once_bind_it_once(pg_app, pg_world):
    from app.dealers.identity import create_invite, issue_token

    codes = [create_invite(dealer_code=code, role="buyer").code for code in ("DA01", "DB01")]
    headers = {"Authorization": f"Bearer {issue_token('o-twice')}"}

    def bind(code):
        def job(client):
            r = client.post(f"{MP}/auth/bind", headers=headers, json={"invite_code": code})
            return r.status_code, r.get_json()
        return job

    results = run_concurrently(pg_app, [bind(code) for code in codes])
    assert sorted(s for s, _ in results) == [200, 409], results
    assert db.session.execute(
        select(func.count()).select_from(DealerUser).where(DealerUser.openid == "o-twice")
    ).scalar_one() == 1


@pytest.mark.postgres
def test_first_orders_of_a_dealer_without_a_credit_account_do_not_collide(pg_app, pg_world):
    w = pg_world
    db.session.delete(db.session.get(CreditAccount, w.dealer_b.id))
    db.session.commit()
    jobs = [post_order(auth(w.b_owner), [{"sku_id": w.cola.id, "qty": 1}]) for _ in range(6)]
    results = run_concurrently(pg_app, jobs)
    assert not [r for r in results if isinstance(r, Exception)]
    # No account means a limit of 0: every order is refused cleanly, none is a 500.
    assert {s for s, _ in results} == {409}
    db.session.expire_all()
    assert db.session.get(CreditAccount, w.dealer_b.id) is None  # refused orders leave nothing behind
