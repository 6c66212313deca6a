"""Stateful property test of the order services: submit / cancel / preview / replay.

A Hypothesis `RuleBasedStateMachine` drives random sequences of calls straight into
`app.orders` services for two dealers (dealer A: buyer, owner and a read-only viewer;
dealer B: owner) over a few SKUs with little stock, split over two warehouses, and small
credit limits — so orders regularly run out of stock, out of credit, hit MOQ/step rules,
invisible or inactive SKUs, read-only users, another dealer's address, a suspended
dealer, reused Idempotency-Keys (same body, or other lines/address/remark) and
cancellations of orders that are not cancellable, unknown or belong to someone else.
Submits are often preceded by a preview of the same lines, which must predict the
outcome exactly (no problems ⇔ the submit would be accepted).

A small model (prices, stock, open orders, holds, keys) predicts each call's outcome; the
service must agree. After every step the database must satisfy the core rules of
DESIGN.md (read with plain column SELECTs, never through the session's identity map):

* stock: `reserved >= 0` and `on_hand - reserved >= 0` on every row; `reserved` equals
  the reservations of open (pending_approval) orders, per SKU and warehouse; on_hand
  never moves (nothing ships here); an order's reservations cover exactly its lines;
* credit: `receivable + held <= limit`; `held` equals the totals of the dealer's open
  orders; every change is a ledger row whose `held_after_fen` is the running sum;
* money: line amount = unit price × qty; totals are sums of lines;
* events: every order's events form a chain `None → pending_approval [→ cancelled]`
  ending at its status;
* a refused submit/cancel, a replay and a preview change nothing at all (snapshot of
  every table an order operation writes, compared before and after);
* a replay returns the very order the key created; the same key with another body is
  `idempotency_conflict`.

Each example starts from the same data: `build_world()` (once per test) with no orders,
full stock and untouched credit (see `reset_data`).
"""
from collections import Counter
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import insert, select, update

from app.dealers.models import Dealer, DealerUser
from app.extensions import db
from app.funds.models import CreditAccount, CreditEntry
from app.inventory.models import Reservation, Stock
from app.kernel.errors import DomainError
from app.orders import closing, submission
from app.orders.models import IdempotencyKey, Order, OrderEvent, OrderLine
from tests import factories
from tests.helpers import examples

# --- the world every example starts from --------------------------------------------

CREDIT_LIMIT_FEN = {"A": 30_000, "B": 25_000}
# (sku attribute on the world, {warehouse attribute: on_hand}).
STOCK = {
    "cola": {"wh_south": 3, "wh_east": 3},  # two warehouses: allocation must split
    "tea": {"wh_south": 15},  # moq 5, step 5
    "soy": {"wh_south": 6},
    "vinegar": {"wh_south": 4},
    "gift": {"wh_south": 1},  # visible to the gold tier (dealer A) only
    "local": {"wh_south": 3},  # hidden from Shanghai (dealer B)
    "retired": {"wh_south": 5},  # inactive: nobody can order it
}
SKUS = tuple(STOCK)
# What each dealer pays (from tests/factories.py: dealer list > valid tier list > list
# price); None = the SKU does not exist for that dealer.
PRICES = {
    "A": {"cola": 4000, "tea": 3600, "soy": 2299, "vinegar": 1999, "gift": 19900, "local": 1500, "retired": None},
    "B": {"cola": 4500, "tea": 3600, "soy": 2599, "vinegar": 1999, "gift": None, "local": None, "retired": None},
}
QTY_RULES = {"tea": (5, 5)}  # sku -> (moq, step); others (1, 1)
USERS = {"a_buyer": "A", "a_owner": "A", "a_viewer": "A", "b_owner": "B"}
READ_ONLY = {"a_viewer"}
# Who calls: mostly people who may order, sometimes the read-only viewer.
CALLERS = st.sampled_from(["a_buyer", "b_owner", "a_owner", "a_buyer", "b_owner", "a_viewer"])
# A small key space on purpose: keys collide across submits (same or other body, same or
# other dealer, a key whose first use failed).
KEYS = st.integers(min_value=0, max_value=7).map(lambda i: f"key-{i:04d}")
# Mostly orderable SKUs in small quantities; now and then tea's pack multiples, a SKU the
# dealer cannot see or an inactive one.
LINE = st.one_of(
    st.tuples(st.sampled_from(["cola", "soy", "vinegar"]), st.integers(min_value=1, max_value=3)),
    st.tuples(st.just("tea"), st.sampled_from([5, 10, 3])),
    st.tuples(st.sampled_from(["gift", "local", "retired"]), st.integers(min_value=1, max_value=2)),
)
LINES = st.lists(LINE, min_size=1, max_size=3).map(tuple)


class Body(NamedTuple):
    """What a submit asks for; the Idempotency-Key fingerprint covers all of it."""

    lines: tuple
    address: str | None = None  # None (default address) / "own" / "foreign" (the other dealer's)
    remark: str = ""


BODIES = st.builds(
    Body,
    lines=LINES,
    address=st.sampled_from([None, None, "own", "own", "foreign"]),
    remark=st.sampled_from(["", "", "请尽快发货"]),
)
# Every table a submit, cancel or preview could touch (catalogue, dealers and prices are
# static here).
MUTABLE_TABLES = (
    "orders", "order_lines", "order_events", "idempotency_keys", "order_no_counters", "cart_items",
    "stock", "stock_reservations", "credit_accounts", "credit_entries",
)


def build_world_ids():
    """Build the world once per test; returns the plain ids the machine needs."""
    w = factories.build_world()
    return {
        "users": {name: getattr(w, name).id for name in USERS},
        "dealers": {"A": w.dealer_a.id, "B": w.dealer_b.id},
        "skus": {name: getattr(w, name).id for name in SKUS},
        "addresses": {"A": w.addr_a.id, "B": w.addr_b.id},
        "contacts": {"A": w.addr_a.contact_name, "B": w.addr_b.contact_name},
        "stock": {
            (getattr(w, name).id, getattr(w, wh).id): qty
            for name, per_wh in STOCK.items()
            for wh, qty in {"wh_south": 0, "wh_east": 0, **per_wh}.items()
        },
    }


def reset_data(ids):
    """Every example starts from the same data: no orders, full stock, untouched credit.

    Empties every table an order operation writes and re-creates stock and credit rows
    (the catalogue, dealers, users and prices of `build_world()` stay). The session's
    identity map is cleared too, so no object of an earlier example (ids restart) leaks in.
    """
    db.session.rollback()
    db.session.execute(update(Dealer).values(status="active"))
    for table in reversed(db.metadata.sorted_tables):
        if table.name in MUTABLE_TABLES:
            db.session.execute(table.delete())
    db.session.execute(insert(CreditAccount), [
        {"dealer_id": dealer_id, "credit_limit_fen": CREDIT_LIMIT_FEN[code], "receivable_fen": 0, "held_fen": 0}
        for code, dealer_id in ids["dealers"].items()
    ])
    db.session.execute(insert(Stock), [
        {"sku_id": sku_id, "warehouse_id": wh_id, "on_hand": qty, "reserved": 0}
        for (sku_id, wh_id), qty in ids["stock"].items()
    ])
    db.session.commit()
    db.session.expunge_all()


def snapshot():
    """Every row of every table an order operation may write (raw DB-API reads: no ORM cache)."""
    cursor = db.session.connection().connection.cursor()
    try:
        out = {}
        for name in MUTABLE_TABLES:
            cursor.execute(f"SELECT * FROM {name}")
            out[name] = sorted(cursor.fetchall(), key=repr)
        return out
    finally:
        cursor.close()


def merge(lines):
    merged = {}
    for sku, qty in lines:
        merged[sku] = merged.get(sku, 0) + qty
    return list(merged.items())


class OrderMachine(RuleBasedStateMachine):
    ids = None  # set by the `order_machine` fixture on a subclass

    def __init__(self):
        super().__init__()
        reset_data(self.ids)
        self.users = {name: db.session.get(DealerUser, uid) for name, uid in self.ids["users"].items()}
        self.sku_ids = self.ids["skus"]
        self.sku_names = {v: k for k, v in self.sku_ids.items()}
        self.dealer_ids = self.ids["dealers"]
        self.on_hand = self.ids["stock"]
        # The model.
        self.orders = {}  # order_no -> {"dealer", "status", "total", "merged", "placed_by", "cancelled_by"}
        self.keys = {"A": {}, "B": {}}  # key -> (Body, order_no) of a successful submit
        self.suspended = set()
        self.steps = Counter()

    # --- the model's predictions -----------------------------------------------------

    def reserved(self, sku):
        return sum(
            qty for o in self.orders.values() if o["status"] == "pending_approval"
            for name, qty in o["merged"] if name == sku
        )

    def available(self, sku):
        return sum(STOCK[sku].values()) - self.reserved(sku)

    def held(self, dealer):
        return sum(o["total"] for o in self.orders.values()
                   if o["dealer"] == dealer and o["status"] == "pending_approval")

    def quote(self, dealer, lines):
        """(priced lines [(sku, qty, unit price)], problems [(code, sku)], total) as preview sees it."""
        priced, problems, total = [], [], 0
        if dealer in self.suspended:
            problems.append(("dealer_suspended", None))
        for sku, qty in merge(lines):
            price = PRICES[dealer][sku]
            if price is None:
                problems.append(("sku_unavailable", sku))
                continue
            priced.append((sku, qty, price))
            total += price * qty
            moq, step = QTY_RULES.get(sku, (1, 1))
            if qty < moq:
                problems.append(("below_moq", sku))
            if qty % step:
                problems.append(("not_step_multiple", sku))
            if qty > self.available(sku):
                problems.append(("insufficient_stock", sku))
        if priced and total > CREDIT_LIMIT_FEN[dealer] - self.held(dealer):
            problems.append(("credit_limit_exceeded", None))
        return priced, problems, total

    def predict_submit(self, user, body, key):
        """The outcome the rules of the service promise, in the order the service checks them."""
        dealer = USERS[user]
        if user in READ_ONLY:
            return "forbidden_role"
        if key in self.keys[dealer]:
            return "replay" if self.keys[dealer][key][0] == body else "idempotency_conflict"
        if dealer in self.suspended:
            return "dealer_suspended"
        if body.address not in (None, "own"):
            return "address_not_found"  # another dealer's address id
        _, problems, _ = self.quote(dealer, body.lines)
        codes = {code for code, _ in problems}
        if codes - {"insufficient_stock", "credit_limit_exceeded"}:
            return "order_invalid"
        if "insufficient_stock" in codes:
            return "insufficient_stock"
        if "credit_limit_exceeded" in codes:
            return "credit_limit_exceeded"
        return "ok"

    # --- calling the services ----------------------------------------------------------

    def service_lines(self, lines):
        return [{"sku_id": self.sku_ids[sku], "qty": qty} for sku, qty in lines]

    def address_id(self, user, address):
        """None, this dealer's own address id, or the other dealer's."""
        if address is None:
            return None
        dealer = USERS[user]
        other = {"A": "B", "B": "A"}[dealer]
        return self.ids["addresses"][dealer if address == "own" else other]

    def call_submit(self, user, body, key):
        """(outcome code, order, replayed) and asserts a refused call changed nothing."""
        before = snapshot()
        try:
            order, replayed = submission.submit_order(
                user=self.users[user], lines=self.service_lines(body.lines), idempotency_key=key,
                address_id=self.address_id(user, body.address), remark=body.remark,
            )
        except DomainError as exc:
            assert snapshot() == before, f"refused submit ({exc.code}) changed the database"
            return exc.code, None, None
        if replayed:
            assert snapshot() == before, "an idempotent replay changed the database"
        return ("replay" if replayed else "ok"), order, replayed

    def record_order(self, user, body, key, order):
        dealer = USERS[user]
        priced, _, total = self.quote(dealer, body.lines)
        assert order.status == "pending_approval"
        assert order.dealer_id == self.dealer_ids[dealer]
        assert order.placed_by_id == self.users[user].id
        assert order.total_fen == total, (order.total_fen, total)
        assert order.credit_held_fen == total
        assert order.remark == body.remark
        assert order.ship_contact == self.ids["contacts"][dealer]
        got = [(self.sku_names[l.sku_id], l.qty, l.unit_price_fen) for l in order.lines]
        assert got == priced
        assert order.order_no not in self.orders
        self.orders[order.order_no] = {
            "dealer": dealer, "status": "pending_approval", "total": total, "merged": merge(body.lines),
            "placed_by": self.users[user].id, "cancelled_by": None,
        }
        self.keys[dealer][key] = (body, order.order_no)

    def pick_key(self, data):
        dealer = data.draw(st.sampled_from([d for d in sorted(self.keys) if self.keys[d]]))
        key = data.draw(st.sampled_from(sorted(self.keys[dealer])))
        user = data.draw(st.sampled_from([u for u in sorted(USERS) if USERS[u] == dealer and u not in READ_ONLY]))
        return dealer, key, user

    # --- rules -----------------------------------------------------------------------

    @rule(user=CALLERS, body=BODIES, key=KEYS, preview_first=st.booleans())
    def submit(self, user, body, key, preview_first):
        """Submit (often after a preview of the same lines, as the mini-program does)."""
        if preview_first:
            self.preview(user, body.lines)
        expected = self.predict_submit(user, body, key)
        outcome, order, _ = self.call_submit(user, body, key)
        self.steps[f"submit:{outcome}"] += 1
        assert outcome == expected, f"submit {user} {body} {key}: got {outcome}, model says {expected}"
        if outcome == "ok":
            self.record_order(user, body, key, order)
        elif outcome == "replay":
            assert order.order_no == self.keys[USERS[user]][key][1]

    @precondition(lambda self: any(self.keys.values()))
    @rule(data=st.data())
    def replay_same_body(self, data):
        """A retry with the same key and body returns the same order and changes nothing."""
        dealer, key, user = self.pick_key(data)
        body, order_no = self.keys[dealer][key]
        outcome, order, replayed = self.call_submit(user, body, key)
        self.steps["replay"] += 1
        assert outcome == "replay" and replayed is True
        assert order.order_no == order_no
        # The replay answers with the order as it is now (it may have been cancelled since).
        assert order.status == self.orders[order_no]["status"]

    @precondition(lambda self: any(self.keys.values()))
    @rule(data=st.data(), other=BODIES)
    def replay_other_body(self, data, other):
        """The same key with any other body (lines, address or remark) is a conflict."""
        dealer, key, user = self.pick_key(data)
        body, _ = self.keys[dealer][key]
        if other == body:
            other = body._replace(remark=body.remark + "!")
        outcome, _, _ = self.call_submit(user, other, key)
        self.steps["conflict"] += 1
        assert outcome == "idempotency_conflict"

    @precondition(lambda self: self.orders)
    @rule(user=CALLERS, data=st.data())
    def cancel_any_order(self, user, data):
        """Any caller, any order: own or another dealer's, open or not, or one that does not exist."""
        self.cancel(user, data.draw(st.sampled_from(sorted(self.orders) + ["SO000000009999"])))

    def cancel(self, user, order_no):
        known = self.orders.get(order_no)
        if user in READ_ONLY:
            expected = "forbidden_role"
        elif known is None or known["dealer"] != USERS[user]:
            expected = "order_not_found"
        elif known["status"] != "pending_approval":
            expected = "order_not_cancellable"
        else:
            expected = "ok"
        before = snapshot()
        try:
            order = closing.cancel_order(user=self.users[user], order_no=order_no, reason="property test")
            outcome = "ok"
        except DomainError as exc:
            outcome = exc.code
            assert snapshot() == before, f"refused cancel ({exc.code}) changed the database"
        self.steps[f"cancel:{outcome}"] += 1
        assert outcome == expected, f"cancel {user} {order_no}: got {outcome}, model says {expected}"
        if outcome == "ok":
            assert order.status == "cancelled" and order.credit_held_fen == 0
            known["status"] = "cancelled"
            known["cancelled_by"] = self.users[user].id

    @precondition(lambda self: any(o["status"] == "pending_approval" for o in self.orders.values()))
    @rule(data=st.data())
    def cancel_open_order(self, data):
        """The common case, drawn on purpose: an ordering user cancels one of the dealer's open orders."""
        order_no = data.draw(st.sampled_from(
            sorted(no for no, o in self.orders.items() if o["status"] == "pending_approval")))
        dealer = self.orders[order_no]["dealer"]
        user = data.draw(st.sampled_from([u for u in sorted(USERS) if USERS[u] == dealer and u not in READ_ONLY]))
        self.cancel(user, order_no)

    @precondition(lambda self: not self.suspended and self.steps["suspend"] < 1)
    @rule(dealer=st.sampled_from(["B", "A"]))
    def suspend(self, dealer):
        """Staff suspend a dealer: no new orders (preview says why), but retries and cancels work."""
        self.set_status(dealer, "suspended")

    @precondition(lambda self: self.suspended)
    @rule()
    def reactivate(self):
        self.set_status(next(iter(self.suspended)), "active")

    def set_status(self, dealer, status):
        db.session.get(Dealer, self.dealer_ids[dealer]).status = status
        db.session.commit()
        if status == "suspended":
            self.suspended.add(dealer)
        else:
            self.suspended.discard(dealer)
        self.steps["suspend" if status == "suspended" else "reactivate"] += 1

    def preview(self, user, lines):
        """Preview writes nothing, prices like the model and lists exactly the model's problems."""
        dealer = USERS[user]
        priced, problems, total = self.quote(dealer, lines)
        before = snapshot()
        result = submission.preview_order(user=self.users[user], lines=self.service_lines(lines))
        assert snapshot() == before, "preview changed the database"
        self.steps["preview"] += 1
        quote = result["quote"]
        assert [(self.sku_names[l.sku_id], l.qty, l.unit_price_fen) for l in quote.lines] == priced
        assert quote.total_fen == total == sum(l.amount_fen for l in quote.lines)
        got = sorted((p["code"], self.sku_names.get(p.get("sku_id"))) for p in result["problems"])
        assert got == sorted(problems, key=lambda p: (p[0], p[1] or "")), (lines, got, problems)
        credit = result["credit"]
        assert credit["limit_fen"] == CREDIT_LIMIT_FEN[dealer]
        assert credit["used_fen"] == self.held(dealer)
        # Preview says "fine" exactly when an ordering user's fresh submit would succeed.
        fresh = self.predict_submit("a_buyer" if dealer == "A" else "b_owner", Body(tuple(lines)), object())
        assert (not result["problems"]) == (fresh == "ok")

    # --- invariants, after every step --------------------------------------------------

    @invariant()
    def stock_is_consistent(self):
        stock = {(r.sku_id, r.warehouse_id): (r.on_hand, r.reserved)
                 for r in db.session.execute(select(Stock.sku_id, Stock.warehouse_id, Stock.on_hand, Stock.reserved))}
        open_reserved = Counter()
        all_reservations = db.session.execute(
            select(Reservation.order_id, Reservation.sku_id, Reservation.warehouse_id, Reservation.qty, Order.status)
            .join(Order, Order.id == Reservation.order_id)
        ).all()
        for r in all_reservations:
            assert r.qty > 0
            assert r.status == "pending_approval", f"order {r.order_id} is {r.status} but still reserves stock"
            open_reserved[(r.sku_id, r.warehouse_id)] += r.qty
        for key, (on_hand, reserved) in stock.items():
            assert reserved >= 0, (key, reserved)
            assert on_hand - reserved >= 0, (key, on_hand, reserved)
            assert on_hand == self.on_hand.get(key, on_hand), f"on_hand moved on {key}"
            assert reserved == open_reserved[key], (key, reserved, open_reserved[key])
        for sku in SKUS:
            sku_id = self.sku_ids[sku]
            assert sum(v[1] for k, v in stock.items() if k[0] == sku_id) == self.reserved(sku), sku
        # An open order reserves exactly what its lines ask for.
        lines = Counter()
        for r in db.session.execute(
            select(OrderLine.order_id, OrderLine.sku_id, OrderLine.qty)
            .join(Order, Order.id == OrderLine.order_id).where(Order.status == "pending_approval")
        ):
            lines[(r.order_id, r.sku_id)] += r.qty
        reserved_by_order = Counter()
        for r in all_reservations:
            reserved_by_order[(r.order_id, r.sku_id)] += r.qty
        assert reserved_by_order == lines

    @invariant()
    def credit_is_consistent(self):
        accounts = {r.dealer_id: r for r in db.session.execute(
            select(CreditAccount.dealer_id, CreditAccount.credit_limit_fen, CreditAccount.receivable_fen,
                   CreditAccount.held_fen)
        )}
        orders = db.session.execute(
            select(Order.dealer_id, Order.status, Order.total_fen, Order.credit_held_fen)
        ).all()
        ledger = {}
        for e in db.session.execute(
            select(CreditEntry.dealer_id, CreditEntry.amount_fen, CreditEntry.held_after_fen).order_by(CreditEntry.id)
        ):
            ledger.setdefault(e.dealer_id, []).append(e)
        for dealer, dealer_id in self.dealer_ids.items():
            account = accounts[dealer_id]
            assert account.receivable_fen + account.held_fen <= account.credit_limit_fen, (dealer, account)
            open_totals = [o.total_fen for o in orders if o.dealer_id == dealer_id and o.status == "pending_approval"]
            assert account.held_fen == sum(open_totals) == self.held(dealer), (dealer, account, open_totals)
            # The ledger: one row per movement, each with the balance after it.
            running = 0
            for e in ledger.get(dealer_id, []):
                running += e.amount_fen
                assert e.held_after_fen == running, (dealer, e, running)
            assert running == account.held_fen, (dealer, running, account)
        for o in orders:
            expected_hold = o.total_fen if o.status == "pending_approval" else 0
            assert o.credit_held_fen == expected_hold, o

    @invariant()
    def orders_add_up(self):
        orders = db.session.execute(
            select(Order.id, Order.order_no, Order.dealer_id, Order.status, Order.subtotal_fen,
                   Order.discount_fen, Order.shipping_fen, Order.total_fen)
        ).all()
        assert sorted(o.order_no for o in orders) == sorted(self.orders)
        lines = {}
        for l in db.session.execute(select(OrderLine.order_id, OrderLine.qty, OrderLine.unit_price_fen,
                                           OrderLine.amount_fen)):
            assert l.qty > 0 and l.amount_fen == l.unit_price_fen * l.qty, l
            lines.setdefault(l.order_id, []).append(l.amount_fen)
        for o in orders:
            model = self.orders[o.order_no]
            assert o.dealer_id == self.dealer_ids[model["dealer"]]
            assert o.status == model["status"], (o.order_no, o.status, model["status"])
            assert o.subtotal_fen == sum(lines.get(o.id, [])), o.order_no
            assert o.total_fen == o.subtotal_fen - o.discount_fen + o.shipping_fen == model["total"], o.order_no
        keys = db.session.execute(select(IdempotencyKey.dealer_id, IdempotencyKey.key, Order.order_no)
                                  .join(Order, Order.id == IdempotencyKey.order_id)).all()
        expected_keys = {(self.dealer_ids[d], k, v[1]) for d, ks in self.keys.items() for k, v in ks.items()}
        assert set(map(tuple, keys)) == expected_keys

    @invariant()
    def events_tell_each_orders_story(self):
        events = {}
        for e in db.session.execute(
            select(OrderEvent.order_id, OrderEvent.from_status, OrderEvent.to_status, OrderEvent.actor_type,
                   OrderEvent.actor_id).order_by(OrderEvent.id)
        ):
            events.setdefault(e.order_id, []).append(e)
        for o in db.session.execute(select(Order.id, Order.order_no, Order.status)):
            model = self.orders[o.order_no]
            story = events.get(o.id, [])
            assert story, f"{o.order_no} has no events"
            assert (story[0].from_status, story[0].to_status) == (None, "pending_approval")
            assert story[0].actor_id == model["placed_by"] and story[0].actor_type == "dealer_user"
            for prev, nxt in zip(story, story[1:]):
                assert nxt.from_status == prev.to_status, (o.order_no, story)
            assert story[-1].to_status == o.status, (o.order_no, story)
            expected = [None, "pending_approval"] + (["cancelled"] if o.status == "cancelled" else [])
            assert [story[0].from_status] + [e.to_status for e in story] == expected, (o.order_no, story)
            if o.status == "cancelled":
                assert story[-1].actor_id == model["cancelled_by"]


@pytest.fixture
def order_machine(request):
    """The state machine bound to this test's app and world (each example resets the data)."""
    request.getfixturevalue({"sqlite": "app", "postgres": "pg_app"}[request.param])
    return type("OrderMachineForTest", (OrderMachine,), {"ids": build_world_ids()})


@pytest.mark.parametrize(
    "order_machine, max_examples",
    [("sqlite", examples(50)), pytest.param("postgres", examples(25), marks=pytest.mark.postgres)],
    indirect=["order_machine"],
)
def test_order_service_state_machine(order_machine, max_examples):
    run_state_machine_as_test(
        order_machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                   HealthCheck.function_scoped_fixture],
        ),
    )
