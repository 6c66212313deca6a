"""How a submission's rows reach the database, once `app.orders.submission` decided them.

`write_order` writes an `OrderWrite` statement by statement (any database; SQLite numbers
orders from `order_no_counters`); on PostgreSQL `write_order_postgresql` writes the same
rows in one statement, numbering from the day's sequence (`order_numbering`). Either way
inventory writes the stock reservation (`inventory.reserve`, or its fragment
`inventory.reserve_ctes`) and funds the credit hold with its entry (`funds.write_entry`,
or `funds.hold_ctes`); orders write only their own rows.
"""
import functools
import re
import threading
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, create_engine, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from app.extensions import db
from app.funds import service as funds
from app.inventory import service as inventory
from app.orders.models import CartItem, IdempotencyKey, Order, OrderEvent, OrderLine, OrderNoCounter
from app.pricing.service import LINE_FIELDS, business_today, stored_line_values


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


def line_values(line):
    """The stored fields of a priced line (`app.pricing.service.LINE_FIELDS`)."""
    return stored_line_values(line)


def write_order(session, write, account):
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


# PostgreSQL writes an `OrderWrite` in one statement: the same rows `write_order` writes
# (the order numbered from the day's sequence, lines, stock reserved and the reservations,
# the credit hold and its ledger entry, the first event, the cart cleared, the key), with
# the lines and allocations passed as arrays so the text never changes (prepared once).
# Orders write their own rows; the stock reservation is inventory's fragment
# (`inventory.reserve_ctes`) and the credit hold with its entry funds' (`funds.hold_ctes`);
# the line columns come from the one declaration of a line (`LINE_FIELDS`).
_WRITE_ORDER_SQL = """
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
    INSERT INTO order_lines (order_id, {line_columns})
    SELECT new_order.id, {line_values}
    FROM new_order, unnest({line_arrays})
         WITH ORDINALITY AS l({line_columns}, position)
    ORDER BY l.position
), {reserve}, {hold}, event AS (
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
"""


@functools.cache
def write_order_statement():
    """The one-statement PostgreSQL write, built once per process (its text never changes,
    so the server prepares it once); `write_order_postgresql` runs its driver form."""
    return text(_WRITE_ORDER_SQL.format(
        line_columns=", ".join(LINE_FIELDS),
        line_values=", ".join(f"l.{name}" for name in LINE_FIELDS),
        line_arrays=", ".join(f"CAST(:line_{name} AS {sql_type}[])" for name, sql_type in LINE_FIELDS.items()),
        reserve=inventory.reserve_ctes("new_order"),
        hold=funds.hold_ctes("new_order"),
    ))


# A `:name` bind as `text()` reads it (not `::type`, not `\:`).
_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)")


@functools.cache
def _write_order_driver_sql():
    """(the write's text with positional `%s` placeholders, the bind name of each in
    order): what `write_order_postgresql` hands psycopg, built once per process."""
    sql = write_order_statement().text
    if "%" in sql:
        raise AssertionError("the order write's text must not contain %: psycopg reads it as a placeholder")
    return _BIND.sub("%s", sql), tuple(_BIND.findall(sql))


def write_order_postgresql(session, write, numbering, account):
    """Write an `OrderWrite` in one statement on PostgreSQL: (order id, number).

    The statement runs on the driver's cursor of the session's connection (the same
    transaction, as `inventory.available_now` reads through the driver) with positional
    parameters: SQLAlchemy's execute machinery (cache key, bind processing of 58 untyped
    binds, result wrapping) was a third of this call's time and adds nothing to a fixed
    text. A driver error is raised as SQLAlchemy's (`IntegrityError` for a twin's key...),
    as if `Connection.execute` had run it.
    """
    sequence, prefix = numbering
    params = {
        **write.order, "sequence": sequence, "order_no_prefix": prefix,
        "user_id": write.user_id, "key": write.key["key"], "request_hash": write.key["request_hash"],
        "key_created_at": write.key["created_at"],
        **{f"line_{name}": [line[name] for line in write.lines] for name in LINE_FIELDS},
        **inventory.reserve_parameters(write.allocations),
        **funds.hold_parameters(account, write.credit_entry),
        **{f"event_{name}": value for name, value in write.event.items() if name != "order_id"},
    }
    sql, names = _write_order_driver_sql()
    values = tuple(params[name] for name in names)
    conn = session.connection()
    driver = conn.connection.driver_connection
    try:
        with driver.cursor() as cursor:
            cursor.execute(sql, values, prepare=True)
            rows = cursor.fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:
        invalidated = conn.dialect.is_disconnect(exc, conn.connection, None)
        if invalidated:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, values, exc, conn.dialect.loaded_dbapi.Error,
                                  connection_invalidated=invalidated, dialect=conn.dialect) from exc
    if len(rows) != 1:
        raise RuntimeError(f"the order write returned {len(rows)} rows, not one")
    order_id, order_no, reserved_rows, held_rows = rows[0]
    if reserved_rows != len(write.allocations) or held_rows != (write.credit_entry is not None):
        raise RuntimeError("stock or credit rows locked for this order were not all updated")
    return order_id, order_no


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


def order_numbering(day):
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
