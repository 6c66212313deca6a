"""Preview and submit: the one place that creates orders.

`submit_order` is one transaction: lock the dealer's credit account (which also
serialises a dealer's submissions, making the Idempotency-Key check race-free), lock the
SKUs' stock rows, re-price from the server's own prices, check MOQ/step/visibility/stock/
credit, then write the order, its lines, reservations, credit hold, first event and key.
Any problem raises before anything is written. The reads are folded into few statements
and, on PostgreSQL, the writes into one (`app.orders.writing`); the rules are decided
once, in Python, whichever database writes them. Placing is the `place` action of
`app.orders.states` (which publishes `order.placed`); auto-approval follows in the same
transaction (`app.orders.approval.auto_approve`).
"""
import functools
import hashlib
import json
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select, true
from sqlalchemy.exc import IntegrityError

from app.catalog.models import Sku
from app.database import generic_plans_columns, write_transaction
from app.dealers.models import Dealer, DealerUser
from app.dealers.access import SUSPENDED_MESSAGE, standing_columns, standing_from_row
from app.dealers.addresses import ship_to, ship_to_columns, ship_to_from_row
from app.extensions import db
from app.funds import checkout, ledger
from app.funds import service as funds
from app.inventory import service as inventory
from app.kernel import settings
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.orders import approval, states, writing
from app.orders.models import IdempotencyKey, Order, OrderAmounts
from app.pricing.service import (
    Buyer,
    business_today,
    merge_lines,
    priced_columns,
    quote_lines,
    quote_rows,
    shortage,
)
from app.staff.models import Staff


def preview_order(*, user, lines, address_id=None, payment_method="credit", use_rebate_fen=0):
    """Price the lines, show how the order would be paid and report every problem, writing nothing.

    Returns {quote, problems, credit, address, payment}: `payment` is the
    `checkout.PaymentSplit` (rebate part and what the method pays). Problems include
    `rebate_over_cap` / `insufficient_rebate` (rebate part-payment), `insufficient_prepaid`
    (prepaid) and `credit_limit_exceeded` (credit: for what credit pays, after the rebate).
    """
    dealer = user.dealer
    address = ship_to(db.session, dealer_id=dealer.id, address_id=address_id)
    quote = quote_lines(db.session, Buyer.of(dealer), lines)
    account = funds.get_balances(dealer.id)
    balances = ledger.get_balances(dealer.id)
    split = checkout.split_payment(
        method=payment_method, total_fen=quote.total_fen, goods_fen=quote.subtotal_fen - quote.discount_fen,
        use_rebate_fen=use_rebate_fen, rate_bp=checkout.read_rebate_rate(db.session),
        rebate_balance_fen=balances["rebate_fen"], prepaid_balance_fen=balances["prepaid_fen"],
    )
    problems = list(quote.problems)
    if dealer.status != "active":
        problems.insert(0, {"code": "dealer_suspended", "message": SUSPENDED_MESSAGE})
    if quote.lines:
        problems += [{k: v for k, v in p.items() if k != "status"} for p in split.problems()]
    on_credit = payment_method == "credit"
    credit = funds.credit_problem(account, split.payable_fen) if quote.lines and on_credit and split.payable_fen else None
    if credit:
        problems.append(credit)
    return {"quote": quote, "problems": problems, "credit": funds.credit_summary(dealer.id, account), "address": address,
            "payment": split}


def request_fingerprint(*, lines, address_id, remark, payment_method, use_rebate_fen=0):
    """Hash of what was asked for; the same Idempotency-Key with another body is a conflict."""
    body = {
        "lines": [[line["sku_id"], line["qty"]] for line in lines],
        "address_id": address_id,
        "remark": remark or "",
        "payment_method": payment_method,
    }
    if use_rebate_fen:
        # Only when used, so keys stored before rebates existed still match their retries.
        body["use_rebate_fen"] = use_rebate_fen
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class PlacedFor:
    """The dealer and its rep as the submission read them with the credit account lock, and
    that account after this order's hold: what the `order.placed` subscribers (the rep's
    approval card and 90 % credit alert, bots/rep_alerts.py) would otherwise read again in
    a statement of their own. `credit` is (limit, receivable, held) after the hold."""

    dealer_id: int
    code: str
    name: str
    rep_id: int | None
    rep_userid: str | None
    rep_active: bool | None
    credit: tuple


@dataclass
class PlacedOrder(OrderAmounts):
    """What `submit_order` wrote, shaped like `Order` (with `lines` and `events`) for presenters."""

    id: int
    order_no: str
    dealer_id: int
    placed_by_id: int
    status: str
    payment_method: str
    credit_held_fen: int
    subtotal_fen: int
    discount_fen: int
    shipping_fen: int
    total_fen: int
    ship_contact: str
    ship_phone: str
    ship_region_code: str
    ship_address: str
    remark: str
    created_at: datetime
    paid_fen: int = 0
    rebate_fen: int = 0
    lines: list = field(default_factory=list)
    events: list = field(default_factory=list)
    shipments: list = field(default_factory=list)
    placed_for: PlacedFor | None = None


def submit_order(*, user, lines, idempotency_key, address_id=None, remark="", payment_method="credit", use_rebate_fen=0):
    """Create an order, or return the one this Idempotency-Key already created.

    Returns (order, replayed). Raises 409 `idempotency_conflict` for a reused key with
    another body, 409 `insufficient_stock` / `credit_limit_exceeded` / `insufficient_prepaid`
    / `insufficient_rebate`, 422 `order_invalid` (unavailable SKU, MOQ, step) with every
    problem in `details.problems`, 422 `rebate_over_cap` (see `app.funds.checkout`).

    `use_rebate_fen` is taken from the rebate balance (ledger rebate −X, ref "order"); the
    rest, `payable_fen`, is paid by `payment_method`: "credit" holds it against the credit
    limit (shipments turn the hold into receivable, `app.orders.shipments`); "prepaid"
    takes it from the prepaid balance now (ledger prepaid −payable, ref "order"; the order
    is then paid: `paid_fen` = payable); "wechat" and "offline" hold nothing and leave it
    due (`due_fen`), paid later through `apply_payment`.

    Three statements and a COMMIT for an order without rebate or prepaid (each round trip
    costs more Python time than PostgreSQL time, see bench/README.md, 性能): lock the credit account
    (which carries the ledger balances) and read the user's standing, the ship-to
    address and the auto-approval setting; lock the stock rows, price the SKUs and look the key up (after the account
    lock, so a twin that committed meanwhile is seen); write everything (one statement on
    PostgreSQL). A rebate adds the read of its cap; rebate or prepaid add the ledger's two
    writes (balances, entries).
    """
    dealer = user.dealer
    fingerprint = request_fingerprint(
        lines=lines, address_id=address_id, remark=remark, payment_method=payment_method,
        use_rebate_fen=use_rebate_fen,
    )
    numbering = writing.order_numbering(business_today())
    try:
        with write_transaction() as session:
            account, balances, standing, opened = _open_submission(session, user, address_id)
            pairs = merge_lines(lines)
            priced, locked, key_row = _lock_and_price(session, standing.buyer, pairs, idempotency_key)
            replay = _replay_of(session, key_row, fingerprint)
            if replay is not None:
                return replay, True
            standing.require_dealer_active()
            address = ship_to_from_row(opened, address_id)
            rate_bp = checkout.read_rebate_rate(session) if use_rebate_fen else 0
            order = _create_order(
                session, user=user, account=account, balances=balances, pairs=pairs, priced=priced, locked=locked,
                opened=opened, address=address, remark=remark, payment_method=payment_method, use_rebate_fen=use_rebate_fen,
                rebate_rate_bp=rate_bp, key={"key": idempotency_key, "request_hash": fingerprint}, numbering=numbering,
            )
            # Auto-approval (a brand setting, read with the account lock): a separate step
            # after the order exists.
            approval.auto_approve(session, order, dealer_status=standing.dealer_status, account=account,
                                  setting=settings.from_stored(settings.AUTO_APPROVAL, opened.setting_auto_approval))
    except IntegrityError:
        # Only a concurrent twin with the same key can get here (the account lock
        # serialises a dealer's submissions on PostgreSQL); answer with its order.
        replay = _find_replay(db.session, dealer.id, idempotency_key, fingerprint)
        db.session.rollback()
        if replay is None:
            raise
        return replay, True
    return order, False


@functools.cache
def _open_statement(address_id_given, dialect_name):
    """Lock the dealer's credit account; read the user's standing, the ship-to address and
    the auto-approval setting (`approval.auto_approve` would otherwise read it on its own).
    The submission's first statement, so on PostgreSQL it also switches the transaction to
    generic plans (`database.generic_plans_columns`) before the lock-and-price runs."""
    standing, source = standing_columns()
    address_columns, address = ship_to_columns(1 if address_id_given else None)
    accounts, dealers, staff = funds.ACCOUNTS, Dealer.__table__, Staff.__table__
    return (
        select(*funds.ACCOUNT_COLUMNS, accounts.c.prepaid_fen, accounts.c.rebate_fen, *standing, *address_columns,
               settings.stored_column(settings.AUTO_APPROVAL), dealers.c.name.label("dealer_name"), dealers.c.rep_id,
               staff.c.wecom_userid.label("rep_userid"), staff.c.active.label("rep_active"),
               *generic_plans_columns(dialect_name))
        .select_from(
            accounts.join(source, DealerUser.__table__.c.id == bindparam("user_id"))
            .outerjoin(staff, staff.c.id == dealers.c.rep_id)
            .outerjoin(address, true())
        )
        .where(accounts.c.dealer_id == bindparam("dealer_id"))
        .with_for_update(of=accounts)
    )


def _open_submission(session, user, address_id):
    """(locked credit account, its ledger balances, fresh standing, row with the ship-to
    columns) in one statement: the account lock of `funds.lock_account` (which is
    `ledger.lock_balances`'s too) and the checks of `check_may_act`."""
    params = {"dealer_id": user.dealer_id, "user_id": user.id}
    if address_id is not None:
        params["address_id"] = address_id
    conn = session.connection()
    statement = _open_statement(address_id is not None, conn.dialect.name)
    row = conn.execute(statement, params).first()
    if row is None:
        # No credit account yet (create it empty, as `lock_account` does), or no such user.
        funds.lock_account(session, user.dealer_id)
        row = conn.execute(statement, params).first()
    standing = standing_from_row(row, user)
    balances = ledger.Balances(user.dealer_id, row.receivable_fen, row.prepaid_fen, row.rebate_fen)
    return funds.account_from_row(user.dealer_id, row), balances, standing, row


@functools.cache
def _replay_statement():
    keys = IdempotencyKey.__table__
    return select(keys.c.request_hash, keys.c.order_id).where(
        keys.c.dealer_id == bindparam("dealer_id"), keys.c.key == bindparam("key")
    )


def _find_replay(session, dealer_id, key, fingerprint):
    row = session.connection().execute(_replay_statement(), {"dealer_id": dealer_id, "key": key}).first()
    return _replay_of(session, row, fingerprint)


def _replay_of(session, row, fingerprint):
    """The order a stored key (a row with request_hash, order_id; None: no such key) made
    for this very request; 409 if the key was used for another one."""
    if row is None or row.request_hash is None:
        return None
    if row.request_hash != fingerprint:
        raise DomainError(
            "idempotency_conflict",
            "该 Idempotency-Key 已用于另一笔不同内容的下单请求，请为新订单生成新的 Key",
            409,
        )
    return session.get(Order, row.order_id)


@functools.cache
def _lock_and_price_statement(dialect_name):
    """Lock the SKUs' stock rows (as `inventory.lock_stock` does), price the SKUs (as
    `pricing.priced_skus` does, visibility as a column) and look the Idempotency-Key up
    (as `_replay_statement` does): one row per SKU and warehouse. Built once per dialect:
    on PostgreSQL :sku_ids is one array (one text, prepared once), elsewhere an expanding IN."""
    locked = inventory.locked_stock_cte(dialect_name)
    key = _replay_statement().subquery("idempotency_key")
    return (
        select(
            *priced_columns(), locked.c.sku_id, locked.c.warehouse_id, locked.c.on_hand, locked.c.reserved,
            locked.c.priority, select(key.c.request_hash).scalar_subquery().label("request_hash"),
            select(key.c.order_id).scalar_subquery().label("order_id"),
        )
        .select_from(Sku.__table__.outerjoin(locked, locked.c.sku_id == Sku.id))
        .where(inventory.sku_ids_match(Sku.id, dialect_name))
    )


def _lock_and_price(session, buyer, pairs, key):
    """({sku_id: priced row} of the visible SKUs, `inventory.lock_stock`'s answer, the
    stored key's row or None) for merged (sku_id, qty) `pairs`, in one statement."""
    params = {**buyer.params(), "sku_ids": sorted({sku_id for sku_id, _ in pairs}), "key": key}
    conn = session.connection()
    rows = conn.execute(_lock_and_price_statement(conn.dialect.name), params).all()
    if not rows:  # none of the SKUs exists: the key still needs looking up
        key_row = session.connection().execute(_replay_statement(), params).first()
        return {}, {}, key_row
    locked = inventory.locked_by_sku([r for r in rows if r.warehouse_id is not None])
    shape = _priced_row_type(rows[0]._fields)
    priced = {row.id: shape(*row, inventory.total_available(locked, row.id)) for row in rows if row.visible}
    return priced, locked, rows[0]


@functools.cache
def _priced_row_type(fields):
    """A priced row of `_lock_and_price`: the statement's columns plus `available` (a
    named tuple, cheaper to build per row than a namespace from the row's mapping)."""
    return namedtuple("PricedRow", (*fields, "available"))


def _create_order(session, *, user, account, balances, pairs, priced, locked, opened, address, remark, payment_method,
                  use_rebate_fen, rebate_rate_bp, key, numbering):
    """`priced` comes from `_lock_and_price` for the dealer as it is now (its standing),
    not as a cached caller remembers it; `account` and `balances` are locked."""
    dealer_id = user.dealer_id
    quote = quote_rows(pairs, priced, check_stock=False)
    quoted = {line.sku_id: line for line in quote.lines}
    problems = list(quote.problems)
    for sku_id, qty in pairs:
        line = quoted.get(sku_id)
        available = inventory.total_available(locked, sku_id)
        if line is not None and qty > available:
            problems.append(shortage(sku_id=sku_id, name=line.name, unit=line.unit, qty=qty, available=available))
    split = checkout.split_payment(
        method=payment_method, total_fen=quote.total_fen, goods_fen=quote.subtotal_fen - quote.discount_fen,
        use_rebate_fen=use_rebate_fen, rate_bp=rebate_rate_bp, rebate_balance_fen=balances.rebate,
        prepaid_balance_fen=balances.prepaid,
    )
    payable = split.payable_fen
    on_credit = payment_method == "credit" and payable > 0
    _raise_for_problems(problems, account, split, check_credit=on_credit)

    now = utcnow()
    values = {
        "dealer_id": dealer_id, "placed_by_id": user.id,
        "status": states.ACTIONS["place"].to_state, "payment_method": payment_method,
        "credit_held_fen": payable if on_credit else 0, **quote.totals(),
        "paid_fen": payable if payment_method == "prepaid" else 0, "rebate_fen": split.rebate_fen,
        "ship_contact": address["contact_name"], "ship_phone": address["phone"],
        "ship_region_code": address["region_code"], "ship_address": address["full_text"],
        "remark": remark or "", "created_at": now, "updated_at": now,
    }
    event = states.placed_event(actor=user, reason="经销商提交订单", at=now)
    # order_id: filled in by the writer. Only credit holds (what the rebate leaves to pay).
    entry = funds.hold_entry(account, payable, at=now) if on_credit else None
    placed_for = PlacedFor(
        dealer_id=dealer_id, code=opened.code, name=opened.dealer_name, rep_id=opened.rep_id,
        rep_userid=opened.rep_userid, rep_active=opened.rep_active,
        credit=(account.credit_limit_fen, account.receivable_fen,
                entry["held_after_fen"] if entry is not None else account.held_fen),
    )
    write = writing.OrderWrite(
        order=values, lines=[writing.line_values(line) for line in quote.lines],
        allocations=sorted(inventory.allocate(locked, pairs)), credit_entry=entry, event=event,
        key={**key, "dealer_id": dealer_id, "created_at": now}, user_id=user.id,
    )
    if numbering is not None:
        order_id, order_no = writing.write_order_postgresql(session, write, numbering, account)
    else:
        order_id, order_no = writing.write_order(session, write, account)
    values.pop("updated_at")
    _take_order_charges(session, balances, order_id, order_no, split, actor=user, at=now)
    order = PlacedOrder(id=order_id, order_no=order_no, **values, lines=quote.lines, placed_for=placed_for)
    states.transition(session, order, "place", actor=user, reason=event["reason"], recorded=event)
    return order


def _take_order_charges(session, balances, order_id, order_no, split, *, actor, at):
    """The ledger side of a submission: rebate −rebate and, paid by prepaid, prepaid −payable
    (ref "order"), against the account row the submission locked. Checked before anything
    was written (`PaymentSplit.raise_for_problems`); `ledger.post` checks the balances again."""
    movements = []
    if split.rebate_fen:
        movements.append(ledger.Movement("rebate", -split.rebate_fen, "order", order_id, f"订单 {order_no} 返利抵扣"))
    if split.method == "prepaid" and split.payable_fen:
        movements.append(ledger.Movement("prepaid", -split.payable_fen, "order", order_id, f"订单 {order_no} 预付款支付"))
    if movements:
        ledger.post(session, balances, movements, actor=actor, actor_type="dealer_user", at=at)


def _raise_for_problems(problems, account, split, *, check_credit=True):
    other = [p for p in problems if p["code"] != "insufficient_stock"]
    if other:
        raise DomainError("order_invalid", "订单中有商品不符合下单要求，请按提示修改", 422, {"problems": problems})
    if problems:
        raise DomainError("insufficient_stock", "部分商品库存不足，请减少数量后重试", 409, {"problems": problems})
    split.raise_for_problems()
    credit = funds.credit_problem(account, split.payable_fen) if check_credit else None
    if credit:
        raise DomainError("credit_limit_exceeded", credit["message"], 409, {"problems": [credit]})
