"""Orders: the one place that creates orders and changes their state.

`submit_order` is one transaction: lock the dealer's credit account (which also
serialises a dealer's submissions, making the Idempotency-Key check race-free), lock the
SKUs' stock rows, re-price from the server's own prices, check MOQ/step/visibility/stock/
credit, then write the order, its lines, reservations, credit hold, first event and key.
Any problem raises before anything is written. The reads are folded into few statements
and, on PostgreSQL, the writes into one (`_write_order_postgresql`); the rules are
decided once, in Python, whichever database writes them.
"""
import functools
import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import (
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.pool import NullPool

from app.audit import service as audit
from app.catalog.models import Sku
from app.database import dialect_insert, write_transaction
from app.dealers.access import (
    SUSPENDED_MESSAGE,
    check_may_act,
    lock_dealer,
    scope_to_staff,
    standing_columns,
    standing_from_row,
)
from app.dealers.addresses import ship_to, ship_to_columns, ship_to_from_row
from app.dealers.models import DealerUser
from app.extensions import db
from app.funds import checkout, ledger
from app.funds import service as funds
from app.funds.models import Payment
from app.inventory import service as inventory
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.money import format_yuan
from app.kernel.permissions import can
from app.notify import events as notify_events
from app.orders import approval_rules
from app.orders.models import (
    CLOSED_UNPAID_STATUSES,
    PAYMENT_METHOD_LABELS,
    STATUS_LABELS,
    CartItem,
    IdempotencyKey,
    Order,
    OrderAmounts,
    OrderEvent,
    OrderLine,
    OrderNoCounter,
)
from app.pricing.service import (
    Buyer,
    business_today,
    merge_lines,
    priced_columns,
    priced_skus,
    quote_lines,
    quote_rows,
    shortage,
)

CANCELLABLE = ("pending_approval",)
MAX_CART_ITEMS = 200


# --- reading ------------------------------------------------------------------

def get_order(*, dealer_id, order_no):
    """The dealer's own order (lines, events, shipments); another dealer's order number answers 404."""
    from app.orders.models import Shipment, ShipmentLine

    order = db.session.execute(
        select(Order).where(Order.order_no == order_no, Order.dealer_id == dealer_id)
        .options(selectinload(Order.shipments).selectinload(Shipment.lines).selectinload(ShipmentLine.order_line))
    ).scalar_one_or_none()
    if order is None:
        raise NotFound("订单不存在", "order_not_found")
    return order


def list_orders(*, dealer_id, status=None, page=1, page_size=20):
    """One page of the dealer's orders, newest first, lines loaded: (orders, total)."""
    where = [Order.dealer_id == dealer_id]
    if status:
        where.append(Order.status == status)
    total = db.session.execute(select(func.count()).select_from(Order).where(*where)).scalar_one()
    orders = db.session.execute(
        select(Order).options(selectinload(Order.lines)).where(*where).order_by(Order.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return orders, total


# --- preview and submit ------------------------------------------------------

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
    costs more Python time than PostgreSQL time, see README 性能): lock the credit account
    (which carries the ledger balances) and read the user's standing and the ship-to
    address; lock the stock rows, price the SKUs and look the key up (after the account
    lock, so a twin that committed meanwhile is seen); write everything (one statement on
    PostgreSQL). A rebate adds the read of its cap; rebate or prepaid add the ledger's two
    writes (balances, entries).
    """
    dealer = user.dealer
    fingerprint = request_fingerprint(
        lines=lines, address_id=address_id, remark=remark, payment_method=payment_method,
        use_rebate_fen=use_rebate_fen,
    )
    numbering = _order_numbering(business_today())
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
                address=address, remark=remark, payment_method=payment_method, use_rebate_fen=use_rebate_fen,
                rebate_rate_bp=rate_bp, key={"key": idempotency_key, "request_hash": fingerprint}, numbering=numbering,
            )
            # Auto-approval (a brand setting): a separate step after the order exists.
            _auto_approve(session, order, dealer_status=standing.dealer_status, account=account)
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
def _open_statement(address_id_given):
    """Lock the dealer's credit account; read the user's standing and the ship-to address."""
    standing, source = standing_columns()
    address_columns, address = ship_to_columns(1 if address_id_given else None)
    accounts = funds.ACCOUNTS
    return (
        select(*funds.ACCOUNT_COLUMNS, accounts.c.prepaid_fen, accounts.c.rebate_fen, *standing, *address_columns)
        .select_from(
            accounts.join(source, DealerUser.__table__.c.id == bindparam("user_id"))
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
    statement = _open_statement(address_id is not None)
    row = session.connection().execute(statement, params).first()
    if row is None:
        # No credit account yet (create it empty, as `lock_account` does), or no such user.
        funds.lock_account(session, user.dealer_id)
        row = session.connection().execute(statement, params).first()
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
def _insert_statement(model, returning_id=False):
    stmt = insert(model.__table__)
    return stmt.returning(model.__table__.c.id) if returning_id else stmt


@functools.cache
def _clear_cart_statement():
    cart = CartItem.__table__
    return delete(cart).where(
        cart.c.user_id == bindparam("user_id"), cart.c.sku_id.in_(bindparam("sku_ids", expanding=True))
    )


@functools.cache
def _lock_and_price_statement():
    """Lock the SKUs' stock rows (as `inventory.lock_stock` does), price the SKUs (as
    `pricing.priced_skus` does, visibility as a column) and look the Idempotency-Key up
    (as `_replay_statement` does): one row per SKU and warehouse."""
    locked = inventory.locked_stock_cte()
    key = _replay_statement().subquery("idempotency_key")
    return (
        select(
            *priced_columns(), locked.c.sku_id, locked.c.warehouse_id, locked.c.on_hand, locked.c.reserved,
            locked.c.priority, select(key.c.request_hash).scalar_subquery().label("request_hash"),
            select(key.c.order_id).scalar_subquery().label("order_id"),
        )
        .select_from(Sku.__table__.outerjoin(locked, locked.c.sku_id == Sku.id))
        .where(Sku.id.in_(bindparam("sku_ids", expanding=True)))
    )


def _lock_and_price(session, buyer, pairs, key):
    """({sku_id: priced row} of the visible SKUs, `inventory.lock_stock`'s answer, the
    stored key's row or None) for merged (sku_id, qty) `pairs`, in one statement."""
    params = {**buyer.params(), "sku_ids": sorted({sku_id for sku_id, _ in pairs}), "key": key}
    rows = session.connection().execute(_lock_and_price_statement(), params).all()
    if not rows:  # none of the SKUs exists: the key still needs looking up
        key_row = session.connection().execute(_replay_statement(), params).first()
        return {}, {}, key_row
    locked = inventory.locked_by_sku([r for r in rows if r.warehouse_id is not None])
    priced = {
        row.id: SimpleNamespace(**row._mapping, available=inventory.total_available(locked, row.id))
        for row in rows if row.visible
    }
    return priced, locked, rows[0]


def _create_order(session, *, user, account, balances, pairs, priced, locked, address, remark, payment_method,
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
        "status": "pending_approval", "payment_method": payment_method,
        "credit_held_fen": payable if on_credit else 0, **quote.totals(),
        "paid_fen": payable if payment_method == "prepaid" else 0, "rebate_fen": split.rebate_fen,
        "ship_contact": address["contact_name"], "ship_phone": address["phone"],
        "ship_region_code": address["region_code"], "ship_address": address["full_text"],
        "remark": remark or "", "created_at": now, "updated_at": now,
    }
    event = _event_values(None, None, "pending_approval", actor=user, reason="经销商提交订单", at=now)
    # order_id: filled in by the writer. Only credit holds (what the rebate leaves to pay).
    entry = funds.hold_entry(account, payable, at=now) if on_credit else None
    write = OrderWrite(
        order=values, lines=[_line_values(line) for line in quote.lines],
        allocations=sorted(inventory.allocate(locked, pairs)), credit_entry=entry, event=event,
        key={**key, "dealer_id": dealer_id, "created_at": now}, user_id=user.id,
    )
    if numbering is not None:
        order_id, order_no = _write_order_postgresql(session, write, numbering)
    else:
        order_id, order_no = _write_order(session, write, account)
    values.pop("updated_at")
    _take_order_charges(session, balances, order_id, order_no, split, actor=user, at=now)
    event["order_id"] = order_id
    order = PlacedOrder(id=order_id, order_no=order_no, **values, lines=quote.lines, events=[OrderEvent(**event)])
    notify_events.order_changed(session, order, from_status=None, to_status="pending_approval", actor=user)
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


@dataclass
class OrderWrite:
    """Every row a submission writes, decided: the order (without id and number), its
    lines, stock allocations [(sku_id, warehouse_id, qty)], the credit hold's ledger
    entry (None: no hold), the first event and the Idempotency-Key (all without the order id)."""

    order: dict
    lines: list
    allocations: list
    credit_entry: dict | None
    event: dict
    key: dict
    user_id: int


def _line_values(line):
    return {
        "sku_id": line.sku_id, "sku_code": line.sku_code, "name": line.name, "spec": line.spec,
        "unit": line.unit, "qty": line.qty, "list_price_fen": line.list_price_fen,
        "unit_price_fen": line.unit_price_fen, "amount_fen": line.amount_fen, "price_source": line.price_source,
    }


def _write_order(session, write, account):
    """Write an `OrderWrite` statement by statement (any database): (order id, number)."""
    conn = session.connection()
    order_no = _next_order_no(session)
    order_id = conn.execute(_insert_statement(Order, returning_id=True), {**write.order, "order_no": order_no}).scalar_one()
    conn.execute(_insert_statement(OrderLine), [{**line, "order_id": order_id} for line in write.lines])
    inventory.reserve(session, order_id, write.allocations)
    if write.credit_entry is not None:
        funds.write_entry(session, account, {**write.credit_entry, "order_id": order_id})
    conn.execute(_insert_statement(OrderEvent), {**write.event, "order_id": order_id})
    conn.execute(_clear_cart_statement(), {"user_id": write.user_id, "sku_ids": [line["sku_id"] for line in write.lines]})
    conn.execute(_insert_statement(IdempotencyKey), {**write.key, "order_id": order_id})
    return order_id, order_no


# PostgreSQL writes an `OrderWrite` in one statement: the same rows `_write_order` writes
# (the order numbered from the day's sequence, lines, stock reserved and the reservations,
# the credit hold and its ledger entry, the first event, the cart cleared, the key), with
# the lines and allocations passed as arrays so the text never changes (prepared once).
_WRITE_ORDER_SQL = text("""
WITH number AS (
    SELECT nextval(CAST(:sequence AS regclass)) AS n
), new_order AS (
    INSERT INTO orders (order_no, dealer_id, placed_by_id, status, payment_method, subtotal_fen,
                        discount_fen, shipping_fen, total_fen, credit_held_fen, paid_fen, rebate_fen,
                        ship_contact, ship_phone, ship_region_code, ship_address, remark, created_at, updated_at)
    SELECT :order_no_prefix || CASE WHEN n < 10000 THEN lpad(CAST(n AS text), 4, '0') ELSE CAST(n AS text) END,
           :dealer_id, :placed_by_id, :status, :payment_method, :subtotal_fen,
           :discount_fen, :shipping_fen, :total_fen, :credit_held_fen, :paid_fen, :rebate_fen,
           :ship_contact, :ship_phone,
           :ship_region_code, :ship_address, :remark, :created_at, :updated_at
    FROM number
    RETURNING id, order_no
), lines AS (
    INSERT INTO order_lines (order_id, sku_id, sku_code, name, spec, unit, qty, list_price_fen,
                             unit_price_fen, amount_fen, price_source)
    SELECT new_order.id, l.sku_id, l.sku_code, l.name, l.spec, l.unit, l.qty, l.list_price_fen,
           l.unit_price_fen, l.amount_fen, l.price_source
    FROM new_order, unnest(CAST(:line_sku_id AS bigint[]), CAST(:line_sku_code AS text[]),
                           CAST(:line_name AS text[]), CAST(:line_spec AS text[]), CAST(:line_unit AS text[]),
                           CAST(:line_qty AS integer[]), CAST(:line_list_price_fen AS bigint[]),
                           CAST(:line_unit_price_fen AS bigint[]), CAST(:line_amount_fen AS bigint[]),
                           CAST(:line_price_source AS text[]))
         WITH ORDINALITY AS l(sku_id, sku_code, name, spec, unit, qty, list_price_fen, unit_price_fen,
                              amount_fen, price_source, position)
    ORDER BY l.position
), allocations AS (
    SELECT * FROM unnest(CAST(:alloc_sku_id AS bigint[]), CAST(:alloc_warehouse_id AS bigint[]),
                         CAST(:alloc_qty AS bigint[])) AS a(sku_id, warehouse_id, qty)
), reserved AS (
    UPDATE stock SET reserved = stock.reserved + allocations.qty
    FROM allocations
    WHERE stock.sku_id = allocations.sku_id AND stock.warehouse_id = allocations.warehouse_id
    RETURNING 1
), reservations AS (
    INSERT INTO stock_reservations (order_id, sku_id, warehouse_id, qty)
    SELECT new_order.id, allocations.sku_id, allocations.warehouse_id, allocations.qty FROM new_order, allocations
), held AS (
    UPDATE credit_accounts SET held_fen = credit_accounts.held_fen + :entry_amount_fen
    WHERE credit_accounts.dealer_id = :dealer_id AND CAST(:with_hold AS boolean)
    RETURNING 1
), entry AS (
    INSERT INTO credit_entries (dealer_id, kind, amount_fen, held_after_fen, receivable_after_fen,
                                limit_after_fen, order_id, note, created_at)
    SELECT :dealer_id, :entry_kind, :entry_amount_fen, :entry_held_after_fen, :entry_receivable_after_fen,
           :entry_limit_after_fen, new_order.id, :entry_note, :entry_created_at
    FROM new_order WHERE CAST(:with_hold AS boolean)
), event AS (
    INSERT INTO order_events (order_id, from_status, to_status, actor_type, actor_id, actor_name, reason, created_at)
    SELECT new_order.id, :event_from_status, :event_to_status, :event_actor_type, :event_actor_id,
           :event_actor_name, :event_reason, :event_created_at
    FROM new_order
), cart AS (
    DELETE FROM cart_items WHERE cart_items.user_id = :user_id AND cart_items.sku_id = ANY(CAST(:line_sku_id AS bigint[]))
), idempotency AS (
    INSERT INTO idempotency_keys (dealer_id, key, request_hash, order_id, created_at)
    SELECT :dealer_id, :key, :request_hash, new_order.id, :key_created_at FROM new_order
)
SELECT new_order.id, new_order.order_no,
       (SELECT count(*) FROM reserved) AS reserved_rows, (SELECT count(*) FROM held) AS held_rows
FROM new_order
""")


def _write_order_postgresql(session, write, numbering):
    """Write an `OrderWrite` in one statement on PostgreSQL: (order id, number)."""
    sequence, prefix = numbering
    params = {
        **write.order, "sequence": sequence, "order_no_prefix": prefix,
        "user_id": write.user_id, "key": write.key["key"], "request_hash": write.key["request_hash"],
        "key_created_at": write.key["created_at"],
        **{f"line_{name}": [line[name] for line in write.lines] for name in _LINE_COLUMNS},
        "alloc_sku_id": [s for s, _, _ in write.allocations],
        "alloc_warehouse_id": [w for _, w, _ in write.allocations],
        "alloc_qty": [q for _, _, q in write.allocations],
        "with_hold": write.credit_entry is not None,
        **{f"entry_{name}": value for name, value in (write.credit_entry or _NO_HOLD).items()
           if name not in ("dealer_id", "order_id")},
        **{f"event_{name}": value for name, value in write.event.items() if name != "order_id"},
    }
    row = session.connection().execute(_WRITE_ORDER_SQL, params).one()
    if row.reserved_rows != len(write.allocations) or row.held_rows != (write.credit_entry is not None):
        raise RuntimeError("stock or credit rows locked for this order were not all updated")
    return row.id, row.order_no


# The entry parameters when there is no hold (the statement's text stays the same).
_NO_HOLD = {"kind": "hold", "amount_fen": 0, "held_after_fen": 0, "receivable_after_fen": 0, "limit_after_fen": 0,
            "note": None, "created_at": None}

_LINE_COLUMNS = ("sku_id", "sku_code", "name", "spec", "unit", "qty", "list_price_fen", "unit_price_fen",
                 "amount_fen", "price_source")


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


def _order_no_prefix(day):
    return f"SO{day:%Y%m%d}"


@functools.cache
def _bump_counter_statement():
    counters = OrderNoCounter.__table__
    return (
        update(counters).where(counters.c.day == bindparam("for_day"))
        .values(last=counters.c.last + 1).returning(counters.c.last)
    )


def _next_order_no(session):
    """`SO` + China date + 4-digit daily sequence (more digits past 9999), from the day's
    counter row (SQLite, where writers are serialised anyway)."""
    day = business_today()
    bumped = session.connection().execute(_bump_counter_statement(), {"for_day": day}).scalar_one_or_none()
    if bumped is None:
        try:
            with session.begin_nested():
                session.execute(insert(OrderNoCounter).values(day=day, last=1))
            bumped = 1
        except IntegrityError:
            bumped = session.connection().execute(_bump_counter_statement(), {"for_day": day}).scalar_one()
    return f"{_order_no_prefix(day)}{bumped:04d}"


def _order_numbering(day):
    """PostgreSQL: (`day`'s order-number sequence, created on first use, and the number
    prefix of that day); None elsewhere (SQLite counts in `order_no_counters`).

    A counter row bumped inside the order transaction stays locked until COMMIT, so every
    dealer's submissions would queue on it; a sequence hands out numbers without locking
    (a number taken by a transaction that then fails is skipped, never reused). The
    sequence continues the day's counter row if one exists (orders numbered before this
    change), and is owned by `order_no_counters.last`, so it goes with that table.
    """
    if db.engine.dialect.name != "postgresql":
        return None
    name = f"order_no_{day:%Y%m%d}"
    known = current_app.extensions.setdefault("dinghuo_order_no_sequences", set())
    if name in known:
        return name, _order_no_prefix(day)
    with _NUMBERING_LOCK:  # threads of one process create it once, on one extra connection
        if name not in known:
            _create_order_no_sequence(name, day)
            known.add(name)
    return name, _order_no_prefix(day)


_NUMBERING_LOCK = threading.Lock()


def _create_order_no_sequence(name, day):
    counters = OrderNoCounter.__table__
    # A connection of its own, in autocommit and outside the pool (the request may hold a
    # pooled one already, and a full pool would then wait on itself): DDL inside the order
    # transaction would hold catalog locks until COMMIT, or vanish with a ROLLBACK.
    engine = create_engine(db.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.execute(select(func.to_regclass(name))).scalar() is not None:
                return
            last = conn.execute(select(counters.c.last).where(counters.c.day == day)).scalar() or 0
            try:
                conn.exec_driver_sql(
                    f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {int(last) + 1} OWNED BY order_no_counters.last"
                )
            except DBAPIError:
                # Another process created it at the same moment (a unique violation in the catalog).
                if conn.execute(select(func.to_regclass(name))).scalar() is None:
                    raise
    finally:
        engine.dispose()


def _event_values(order_id, from_status, to_status, *, actor, reason=None, at=None, actor_type="dealer_user"):
    return {
        "order_id": order_id, "from_status": from_status, "to_status": to_status,
        "actor_type": actor_type, "actor_id": actor.id, "actor_name": actor.name,
        "reason": reason, "created_at": at or utcnow(),
    }


def _record_event(session, order_id, from_status, to_status, *, actor, reason=None, at=None,
                  actor_type="dealer_user"):
    """Write one state change of an order (who, when, from, to, why); returns it."""
    values = _event_values(order_id, from_status, to_status, actor=actor, reason=reason, at=at, actor_type=actor_type)
    session.connection().execute(_insert_statement(OrderEvent), values)
    return OrderEvent(**values)


# --- transitions ---------------------------------------------------------------

def lock_dealer_order(session, *, dealer_id, order_no):
    """The dealer's own order, locked (FOR UPDATE) and freshly read for the caller's write
    transaction. Another dealer's order number raises the same 404 as an unknown one."""
    order = session.execute(
        select(Order).where(Order.order_no == order_no, Order.dealer_id == dealer_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound("订单不存在", "order_not_found")
    return order


def cancel_order(*, user, order_no, reason=None):
    """Dealer cancels an order before approval: stock and credit are released.

    Raises 404 for another dealer's order, 409 `order_not_cancellable` after approval.
    """
    with write_transaction() as session:
        account = funds.lock_account(session, user.dealer_id)
        check_may_act(session, user)
        order = lock_dealer_order(session, dealer_id=user.dealer_id, order_no=order_no)
        if order.status not in CANCELLABLE:
            raise DomainError(
                "order_not_cancellable",
                f"订单当前状态为「{STATUS_LABELS[order.status]}」，不能取消；如需取消请联系业务员",
                409,
            )
        inventory.release(session, order.id)
        if order.credit_held_fen:
            funds.release_credit(session, account, amount_fen=order.credit_held_fen, order_id=order.id, note="订单取消")
            order.credit_held_fen = 0
        _give_back_payments(session, order, actor=user, actor_type="dealer_user", why="订单取消")
        previous = order.status
        order.status = "cancelled"
        order.updated_at = utcnow()
        reason = reason or "经销商取消订单"
        _record_event(session, order.id, previous, "cancelled", actor=user, reason=reason)
        notify_events.order_changed(session, order, from_status=previous, to_status="cancelled", actor=user, reason=reason)
    return order


def _give_back_payments(session, order, *, actor, actor_type, why):
    """What an order that will not be delivered was paid stays the dealer's (ref "order"):
    the rebate it used goes back to the rebate balance, and what its method paid (prepaid
    at submission, WeChat Pay, an offline transfer) is credited to the prepaid balance
    (refunds to WeChat Pay are later work). `paid_fen` and `rebate_fen` stay as the record
    of what was paid; a cancelled or rejected order is due nothing. The caller locked the
    dealer's account row, then the order."""
    movements = []
    if order.rebate_fen:
        movements.append(ledger.Movement(
            "rebate", order.rebate_fen, "order", order.id, f"{why}，订单 {order.order_no} 返利抵扣退回"))
    if order.paid_fen:
        movements.append(ledger.Movement(
            "prepaid", order.paid_fen, "order", order.id, f"{why}，订单 {order.order_no} 已付款转入预付款"))
    if movements:
        balances = ledger.lock_balances(session, order.dealer_id)
        ledger.post(session, balances, movements, actor=actor, actor_type=actor_type)


# --- payments --------------------------------------------------------------------------

PAYMENT_METHODS_APPLIED = ("wechat", "offline")


def apply_payment(session, balances, order, *, amount_fen, method, reference, actor, actor_type, at=None,
                  **payment_columns):
    """Record money a dealer paid for `order` (WeChat Pay, a confirmed offline transfer): the
    one way a payment reaches an order. Returns the new `Payment` (`applied_fen`: what went
    to the order).

    The caller locked the dealer's account row (`ledger.lock_balances` → `balances`), then
    the order row (`FOR UPDATE`), in that order, and made sure this payment is recorded
    only once (e.g. a unique transaction id). In the caller's transaction:
    - applied = min(amount, what the order still has due, `due_fen`: nothing once it was
      cancelled or rejected); the order's `paid_fen` grows by it;
    - ledger (ref "payment" unless said): receivable +applied (the order's charge, ref
      "order") and −applied (the payment), so an order paid up front nets to zero;
      anything beyond (the order was cancelled meanwhile, paid twice) goes to prepaid
      (+excess), never lost;
    - a credit order is not paid by order (its shipments post receivable): the whole
      amount pays the dealer's receivable (−amount), `applied_fen` 0.
    `reference` says what paid in the ledger notes ("微信支付 4200…", "线下转账凭证 #12");
    `payment_columns` are `Payment` columns (transaction_id, out_trade_no, payer_openid,
    paid_at, ...). 422 for a method other than wechat/offline or an amount that is not a
    positive integer of fen.
    """
    if method not in PAYMENT_METHODS_APPLIED:
        raise DomainError("invalid_payment_method", "付款方式应为微信支付或线下转账", 422)
    if type(amount_fen) is not int or not 0 < amount_fen <= ledger.MAX_AMOUNT_FEN:
        raise DomainError("invalid_amount", "付款金额应为正整数（单位：分）", 422)
    now = at or utcnow()
    on_account = order.payment_method == "credit"
    applied = 0 if on_account else min(amount_fen, order.due_fen)
    payment = Payment(dealer_id=order.dealer_id, order_id=order.id, method=method, amount_fen=amount_fen,
                      applied_fen=applied, created_at=now, **payment_columns)
    session.add(payment)
    session.flush()
    label = PAYMENT_METHOD_LABELS[method]
    movements = []
    if on_account:
        movements.append(ledger.Movement(
            "receivable", -amount_fen, "payment", payment.id, f"{reference}：账期订单 {order.order_no} 还款"))
    if applied:
        movements += [
            ledger.Movement("receivable", applied, "order", order.id, f"订单 {order.order_no} 应付（{label}）"),
            ledger.Movement("receivable", -applied, "payment", payment.id, reference),
        ]
    excess = 0 if on_account else amount_fen - applied
    if excess:
        why = "订单已取消或驳回" if order.status in CLOSED_UNPAID_STATUSES else "超出订单未付金额"
        movements.append(ledger.Movement(
            "prepaid", excess, "payment", payment.id, f"{reference}：{why}，{format_yuan(excess)} 转入预付款"))
    ledger.post(session, balances, movements, actor=actor, actor_type=actor_type, at=now)
    if applied:
        order.paid_fen += applied
        order.updated_at = now
    return payment


# --- receipt and completion ----------------------------------------------------------

COMPLETABLE = ("shipped",)
AUTO_COMPLETE_ACTOR = SimpleNamespace(id=None, name="系统自动确认收货")


def confirm_receipt(*, user, order_no):
    """The dealer (owner or buyer) confirms a fully shipped order arrived: `completed`.

    Raises 404 for another dealer's order, 403 for a viewer, 409 `order_not_shipped`
    unless the order is `shipped` (a second confirmation is a 409 too).
    """
    with write_transaction() as session:
        check_may_act(session, user)
        order = lock_dealer_order(session, dealer_id=user.dealer_id, order_no=order_no)
        if order.status not in COMPLETABLE:
            raise DomainError(
                "order_not_shipped",
                f"订单当前状态为「{STATUS_LABELS[order.status]}」，全部发货后才能确认收货",
                409, {"status": order.status},
            )
        _transition(session, order, "completed", actor=user, reason="经销商确认收货")
    return order


def auto_complete_orders(*, days=None, now=None):
    """Complete every order shipped (in full) more than `days` ago (default
    ORDER_AUTO_COMPLETE_DAYS) that the dealer has not confirmed. Idempotent: an order is
    completed once, and running twice (or on two workers at once) completes nothing more.
    Returns the completed order numbers."""
    days = current_app.config["ORDER_AUTO_COMPLETE_DAYS"] if days is None else days
    cutoff = (now or utcnow()) - timedelta(days=days)
    due = db.session.execute(
        select(Order.id).where(Order.status.in_(COMPLETABLE), Order.shipped_at < cutoff).order_by(Order.id)
    ).scalars().all()
    db.session.rollback()
    completed = []
    for order_id in due:
        with write_transaction() as session:
            order = session.execute(
                select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
            ).scalar_one()
            if order.status not in COMPLETABLE:
                continue  # the dealer confirmed meanwhile, or another run got here first
            _transition(session, order, "completed", actor=AUTO_COMPLETE_ACTOR, actor_type="system",
                        reason=f"发货满 {days} 天，系统自动确认收货")
            completed.append(order.order_no)
    return completed


# --- cart ------------------------------------------------------------------------

def get_cart(*, user):
    """The user's cart priced for their dealer, with every problem (as at checkout)."""
    items = db.session.execute(
        select(CartItem.sku_id, CartItem.qty).where(CartItem.user_id == user.id).order_by(CartItem.updated_at)
    ).all()
    lines = [{"sku_id": i.sku_id, "qty": i.qty} for i in items]
    return quote_lines(db.session, Buyer.of(user.dealer), lines)


def set_cart_item(*, user, sku_id, qty):
    """Put `qty` of a SKU in the cart (replacing what was there). 404 if not orderable."""
    with write_transaction() as session:
        buyer = check_may_act(session, user).buyer
        lock_dealer(session, user.dealer_id)  # a double tap queues instead of racing
        if not priced_skus(session, buyer, [sku_id]):
            raise NotFound("商品不存在或不可订购", "sku_not_found")
        cart = CartItem.__table__
        others = session.execute(
            select(func.count()).select_from(cart).where(cart.c.user_id == user.id, cart.c.sku_id != sku_id)
        ).scalar_one()
        if others >= MAX_CART_ITEMS:
            raise DomainError("cart_full", f"购物车最多 {MAX_CART_ITEMS} 种商品", 422)
        now = utcnow()
        upsert = dialect_insert(session, cart).values(user_id=user.id, sku_id=sku_id, qty=qty, updated_at=now)
        session.execute(upsert.on_conflict_do_update(
            index_elements=[cart.c.user_id, cart.c.sku_id], set_={"qty": qty, "updated_at": now},
        ))


def remove_cart_item(*, user, sku_id):
    with write_transaction() as session:
        check_may_act(session, user)
        deleted = session.execute(
            delete(CartItem).where(CartItem.user_id == user.id, CartItem.sku_id == sku_id)
        ).rowcount
        if not deleted:
            raise NotFound("购物车中没有该商品", "cart_item_not_found")


# --- approval (WeCom card, bot, console) ------------------------------------------

APPROVABLE = ("pending_approval",)
# A rep's approval (`orders.approve` without `orders.review_credit`) is final unless the dealer
# is over its credit limit; then finance (`orders.review_credit` only) decides the orders a rep
# approved (`Order.awaiting_finance`). An admin holds both, and decides alone.


def _staff_order_query(staff, order_no):
    """Select the order if this staff member may decide on it.

    A sales rep acts only on dealers assigned to them (an order of another rep's dealer
    answers 404, as if it did not exist); admins act on every dealer.
    """
    from app.dealers.models import Dealer

    _require_approver(staff)
    query = select(Order).join(Dealer, Dealer.id == Order.dealer_id).where(Order.order_no == order_no)
    return scope_to_staff(query, staff)


def may_decide(staff):
    """True when `staff` takes part in approving orders (a rep's step, finance's or both)."""
    return can(staff, "orders.approve") or can(staff, "orders.review_credit")


def _require_approver(staff):
    if not may_decide(staff):
        raise DomainError("forbidden", "你没有审批订单的权限", 403)


def _lock_order_for_staff(session, staff, order_no, *, lock_account=False):
    """The order, locked, or 404. With `lock_account` the dealer's credit account is locked
    first (returned too), in the same order as submit and cancel take them: no deadlock."""
    query = _staff_order_query(staff, order_no)
    account = None
    if lock_account:
        found = session.execute(query.with_only_columns(Order.dealer_id)).scalar_one_or_none()
        if found is not None:
            account = funds.lock_account(session, found)
    order = session.execute(query.with_for_update(of=Order)).scalar_one_or_none()
    if order is None:
        raise NotFound("订单不存在，或不是你负责的经销商的订单", "order_not_found")
    return (order, account) if lock_account else order


def _require_pending(order, action):
    if order.status not in APPROVABLE:
        raise DomainError(
            "order_not_pending",
            f"订单 {order.order_no} 当前状态为「{STATUS_LABELS[order.status]}」，不能{action}",
            409,
            {"status": order.status},
        )


def over_credit_limit(account):
    """The finance co-approval rule: the dealer's exposure (receivable + every open order's
    credit hold, this order's included) is above its limit right now. An order could only be
    placed within the limit, so this happens when the limit was lowered or the receivable
    grew while the order waited."""
    return account.used_fen > account.credit_limit_fen


def _current_balances(session, dealer_id):
    row = session.connection().execute(
        select(*funds.ACCOUNT_COLUMNS).where(funds.ACCOUNTS.c.dealer_id == dealer_id)
    ).first()
    return funds.account_from_row(dealer_id, row) if row is not None else funds.Account(dealer_id, 0, 0, 0)


def approve_order(*, staff, order_no, reason=None):
    """Staff approves a pending order: stock stays reserved, credit stays held.

    Finance co-approval: when the dealer is over its credit limit at this moment
    (`over_credit_limit`), a rep's approval is recorded (event, audit `order.approve_rep`)
    but the order stays `pending_approval`, `awaiting_finance`, until finance or an admin
    approves it too. Finance approves only such orders; an admin's approval is always final.

    Returns the order (check `status`: still `pending_approval` after a rep's approval that
    needs finance). 404 for an order the staff member may not see, 409 `order_not_pending`
    when it was already decided (e.g. a second tap on the card), 409 `awaiting_finance` for
    a rep approving again, 409 `not_awaiting_finance` for finance on an order that does not
    need them.
    """
    with write_transaction() as session:
        order = _lock_order_for_staff(session, staff, order_no)
        _require_pending(order, "审批通过")
        # Read, not locked: approving changes no balance, so approvals of one dealer's
        # orders need not queue behind each other (a limit cut committed a moment later
        # simply comes after this approval).
        account = _current_balances(session, order.dealer_id)
        # Only an order on credit (it holds credit) can take the dealer over its limit.
        over = order.credit_held_fen > 0 and over_credit_limit(account)
        credit = {"credit_limit_fen": account.credit_limit_fen, "exposure_fen": account.used_fen}
        if not can(staff, "orders.approve"):  # finance: only the orders a rep approved over credit
            if not order.awaiting_finance:
                raise DomainError(
                    "not_awaiting_finance",
                    f"订单 {order.order_no} 不在等待财务复核（业务员尚未审批，或未超出信用额度），财务无需审批",
                    409, {"status": order.status},
                )
            _transition(session, order, "approved", actor=staff, reason=reason or "财务复核通过（超出信用额度）",
                        audit_after=credit)
        elif not can(staff, "orders.review_credit") and order.awaiting_finance:
            raise DomainError("awaiting_finance", f"你已审批订单 {order.order_no}，正在等待财务复核（超出信用额度）", 409,
                              {"status": order.status})
        elif not can(staff, "orders.review_credit") and over:
            order.rep_approved_by_id = staff.id
            order.rep_approved_at = utcnow()
            _transition(
                session, order, "pending_approval", actor=staff, audit_action="order.approve_rep",
                reason=(f"业务员审批通过；经销商已用额度 {format_yuan(account.used_fen)} 超出信用额度 "
                        f"{format_yuan(account.credit_limit_fen)}，等待财务复核"),
                audit_after={"awaiting": "finance", **credit},
            )
        else:
            if over:
                reason = reason or "审批通过（超出信用额度，管理员审批）"
            _transition(session, order, "approved", actor=staff, reason=reason or "审批通过",
                        audit_after=credit if over else None)
    return order


def reject_order(*, staff, order_no, reason):
    """Staff rejects a pending order with a reason: stock and credit are released.

    Finance may reject only orders waiting for finance; reps and admins any pending order.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("reason_required", "驳回订单需要填写原因", 422)
    with write_transaction() as session:
        order, account = _lock_order_for_staff(session, staff, order_no, lock_account=True)
        _require_pending(order, "驳回")
        if not can(staff, "orders.approve") and not order.awaiting_finance:
            raise DomainError("not_awaiting_finance", f"订单 {order.order_no} 不在等待财务复核，请由业务员处理", 409,
                              {"status": order.status})
        inventory.release(session, order.id)
        if order.credit_held_fen:
            funds.release_credit(session, account, amount_fen=order.credit_held_fen, order_id=order.id, note="订单驳回")
            order.credit_held_fen = 0
        _give_back_payments(session, order, actor=staff, actor_type="staff", why="订单驳回")
        _transition(session, order, "rejected", actor=staff, reason=reason)
    return order


SYSTEM_ACTOR = SimpleNamespace(id=None, name="自动审批")


def _auto_approve(session, order, *, dealer_status, account):
    """Approve a just-placed order, in the transaction that placed it, when the brand's auto-approval
    rules allow it (`app.orders.approval_rules`); otherwise leave it for the rep."""
    setting = approval_rules.read_setting(session)
    if approval_rules.refusal(setting, dealer_status=dealer_status, account=account, order=order):
        return
    now = utcnow()
    orders = Order.__table__
    session.connection().execute(
        update(orders).where(orders.c.id == order.id).values(status="approved", updated_at=now)
    )
    order.status = "approved"
    reason = "符合自动审批规则"
    order.events.append(_record_event(
        session, order.id, "pending_approval", "approved", actor=SYSTEM_ACTOR, reason=reason, at=now,
        actor_type="system",
    ))
    notify_events.order_changed(
        session, order, from_status="pending_approval", to_status="approved", actor=SYSTEM_ACTOR, reason=reason
    )


_AUDIT_ACTIONS = {
    "approved": "order.approve",
    "rejected": "order.reject",
    "cancelled": "order.cancel",
    "partially_shipped": "order.ship",
    "shipped": "order.ship",
    "completed": "order.complete",
}


def _transition(session, order, to_status, *, actor, reason, actor_type=None, audit_action=None, audit_after=None):
    """Move `order` to `to_status` (the same status again records another step, e.g. a
    second partial shipment): the event row, the audit entry when staff acted (`audit_after`
    adds facts to it) and the notifications, all in the caller's transaction."""
    previous = order.status
    order.status = to_status
    order.updated_at = utcnow()
    session.flush()
    if actor_type is None:
        actor_type = "staff" if actor.__class__.__name__ == "Staff" else "dealer_user"
    if actor_type == "staff":
        audit.record(
            session, actor=actor, action=audit_action or _AUDIT_ACTIONS[to_status], entity_type="order",
            entity_id=order.order_no, label=order.order_no, before={"status": previous},
            after={"status": to_status, **(audit_after or {})}, reason=reason,
        )
    event = _record_event(session, order.id, previous, to_status, actor=actor, reason=reason, actor_type=actor_type)
    notify_events.order_changed(session, order, from_status=previous, to_status=to_status, actor=actor, reason=reason)
    return event


def list_pending_for_staff(*, staff, limit=200):
    """Orders waiting for approval that `staff` may decide on, oldest first:
    [(order, dealer_code, dealer_name)]. Reps see their own dealers' orders (those waiting
    for finance too, marked by `order.awaiting_finance`); finance only the orders waiting for
    finance; admins all."""
    from app.dealers.models import Dealer

    _require_approver(staff)
    query = scope_to_staff(
        select(Order, Dealer.code, Dealer.name).join(Dealer, Dealer.id == Order.dealer_id)
        .where(Order.status.in_(APPROVABLE)),
        staff,
    )
    if not can(staff, "orders.approve"):  # finance's queue: what reps approved over credit
        query = query.where(Order.rep_approved_by_id.is_not(None))
    return db.session.execute(query.order_by(Order.id).limit(limit)).all()
