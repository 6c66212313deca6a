"""Statements (对账单): issuing them from the ledger, the dealer's confirm/dispute, finance's resolve.

Issuing (`issue_statements`, the CLI and the hourly `issue_due_statements` job): for a China
calendar month, every active dealer and every dealer with a ledger movement that month gets
one statement. Per account (receivable, prepaid, rebate):

    opening = balance_after of the account's last ledger entry before the month (0 if none)
    lines   = the account's entries created in [month start, next month start), by id
    closing = opening + Σ lines = balance_after of the last entry before the next month

The last equality is checked at issue (the ledger's entries of an account replay its balance,
so it only fails if entry ids and timestamps disagree around a boundary: then nothing is
issued for that dealer and the error is logged). Because opening is read from the ledger at
the boundary, a statement's opening is the previous statement's closing.

Idempotent: a dealer that already has the month's statement keeps it untouched (whatever its
status): a statement is a document. Each new statement notifies the dealer (message list +
subscribe message) in its own transaction.

Dealer side: `list_statements`, `get_statement` (scoped by the caller's dealer: another
dealer's id answers 404 like a missing one), `confirm_statement`, `dispute_statement`.
Staff side (admin, finance): `list_statements_for_staff`, `get_statement_for_staff`,
`resolve_dispute` (audited).
"""
import logging
import re
from datetime import date, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.audit import service as audit
from app.database import write_transaction
from app.dealers.models import ORDERING_ROLES, Dealer
from app.dealers.access import check_may_act
from app.extensions import db
from app.funds.models import (
    ACCOUNT_LABELS,
    LEDGER_ACCOUNTS,
    LedgerEntry,
    Payment,
    Refund,
)
from app.kernel.clock import BUSINESS_TZ, business_day_start, utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish
from app.kernel.permissions import require
from app.orders.models import Order, Shipment
from app.statements.models import (
    STATUS_LABELS,
    Statement,
    StatementEvent,
    StatementLine,
)

log = logging.getLogger(__name__)

STAFF_PAGE_SIZE = 50
MAX_COMMENT = 500
# The job waits this long after a month ends, so a movement stamped just before midnight
# whose transaction commits just after is in the ledger when the month is read.
ISSUE_GRACE = timedelta(minutes=30)
PRINT_LINK_MAX_AGE = 30 * 86400  # seconds a dealer's print link works

# How a ledger movement is shown: its ref_type's category (anything else: 其他).
CATEGORY_OF_REF_TYPE = {
    "order": "orders",
    "shipment": "orders",
    "payment": "payments",
    "rebate": "rebates",
    "refund": "returns",
    "adjustment": "adjustments",
}
CATEGORIES = ("orders", "payments", "rebates", "returns", "adjustments", "other")
CATEGORY_LABELS = {
    "orders": "订货", "payments": "付款", "rebates": "返利", "returns": "退货退款", "adjustments": "调整", "other": "其他",
}
# The order a movement belongs to, per ref_type: (table, its id column, its order id column).
ORDER_LINKS = {
    "order": (Order.__table__, Order.__table__.c.id, Order.__table__.c.id),
    "payment": (Payment.__table__, Payment.__table__.c.id, Payment.__table__.c.order_id),
    "shipment": (Shipment.__table__, Shipment.__table__.c.id, Shipment.__table__.c.order_id),
    "refund": (Refund.__table__, Refund.__table__.c.id, Refund.__table__.c.order_id),
}

ENTRIES = LedgerEntry.__table__
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def category_of(ref_type):
    return CATEGORY_OF_REF_TYPE.get(ref_type, "other")


# --- months --------------------------------------------------------------------------------

def parse_month(text):
    """'2026-11' -> date(2026, 11, 1); 422 `invalid_month` otherwise."""
    match = _MONTH.fullmatch((text or "").strip())
    if not match:
        raise DomainError("invalid_month", "月份格式应为 YYYY-MM，例如 2026-11", 422, {"field": "month"})
    return date(int(match.group(1)), int(match.group(2)), 1)


def next_month(first):
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def month_bounds(first):
    """The UTC instants [start, end) of the China calendar month beginning on `first`."""
    return business_day_start(first), business_day_start(next_month(first))


def previous_month(now=None):
    """The first day of the China calendar month before the one `now` (UTC) falls in."""
    today = (now or utcnow()).astimezone(BUSINESS_TZ).date()
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1)


# --- issuing -------------------------------------------------------------------------------

def issue_statements(*, month, now=None):
    """Issue the statements of `month` ('2026-11' or the month's first day) that are missing.

    Returns {"month", "created": [statement ids], "existing": n, "failed": [dealer codes]}.
    Raises 422 `invalid_month`, 409 `month_not_over` while the month has not ended in China.
    Each dealer's statement is its own transaction; one that fails (logged) does not stop the rest.
    """
    first = month if isinstance(month, date) else parse_month(month)
    start, end = month_bounds(first)
    if (now or utcnow()) < end:
        raise DomainError("month_not_over", f"{first:%Y-%m} 尚未结束（按北京时间），月末之后才能出具对账单", 409)
    label = f"{first:%Y-%m}"
    have = set(db.session.execute(select(Statement.dealer_id).where(Statement.month == label)).scalars())
    dealers = [d for d in _dealers_for(start, end) if d not in have]
    db.session.rollback()  # end the read transaction before each dealer's write transaction
    created, failed, existing = [], [], len(have)
    for dealer_id in dealers:
        try:
            statement_id = _issue_one(dealer_id=dealer_id, month=label, start=start, end=end)
        except IntegrityError:  # another run issued it meanwhile
            existing += 1
        except DomainError as exc:
            log.error("statement %s for dealer %s not issued: %s", label, dealer_id, exc.message)
            failed.append(dealer_id)
        else:
            created.append(statement_id)
    return {"month": label, "created": created, "existing": existing, "failed": failed}


def issue_due_statements():
    """The periodic job: issue last month's missing statements once the month is over (China
    time) plus a grace period. Runs hourly, so it lands early on the 1st and catches up after
    any missed run; when everything is issued it only reads."""
    now = utcnow()
    first = previous_month(now)
    if now < month_bounds(first)[1] + ISSUE_GRACE:
        return None
    result = issue_statements(month=first, now=now)
    if result["created"] or result["failed"]:
        log.info("statements %s: %d issued, %d failed", result["month"], len(result["created"]), len(result["failed"]))
    return result


def _dealers_for(start, end):
    """Ids of the dealers owed a statement for [start, end): active ones that existed by the
    end, and any with a ledger movement in it."""
    active = select(Dealer.id).where(Dealer.status == "active", Dealer.created_at < end)
    moved = select(ENTRIES.c.dealer_id).where(ENTRIES.c.created_at >= start, ENTRIES.c.created_at < end)
    return sorted(set(db.session.execute(active).scalars()) | set(db.session.execute(moved).scalars()))


def _balances_before(session, dealer_id, instant):
    """{account: balance_after of its last entry created before `instant`} (0 without one)."""
    last = (
        select(ENTRIES.c.account, func.max(ENTRIES.c.id).label("id"))
        .where(ENTRIES.c.dealer_id == dealer_id, ENTRIES.c.created_at < instant)
        .group_by(ENTRIES.c.account).subquery()
    )
    rows = session.execute(
        select(ENTRIES.c.account, ENTRIES.c.balance_after_fen).join(last, ENTRIES.c.id == last.c.id)
    ).all()
    balances = dict.fromkeys(LEDGER_ACCOUNTS, 0)
    balances.update({account: balance for account, balance in rows})
    return balances


def _order_numbers(session, dealer_id, entries):
    """{(ref_type, ref_id): order_no} for the entries whose reference leads to an order of the dealer."""
    found = {}
    orders = Order.__table__
    for ref_type, (table, id_column, order_column) in ORDER_LINKS.items():
        ids = {e.ref_id for e in entries if e.ref_type == ref_type and e.ref_id is not None}
        if not ids:
            continue
        if table is orders:
            query = select(orders.c.id, orders.c.order_no).where(orders.c.id.in_(ids))
        else:
            query = select(id_column, orders.c.order_no).join(orders, orders.c.id == order_column).where(id_column.in_(ids))
        rows = session.execute(query.where(orders.c.dealer_id == dealer_id)).all()
        found.update({(ref_type, ref_id): order_no for ref_id, order_no in rows})
    return found


def _issue_one(*, dealer_id, month, start, end):
    """Write one dealer's statement of the month and notify it; returns the statement id."""
    with write_transaction() as session:
        dealer = session.get(Dealer, dealer_id)
        opening = _balances_before(session, dealer_id, start)
        closing_by_ledger = _balances_before(session, dealer_id, end)
        entries = session.execute(
            select(ENTRIES).where(ENTRIES.c.dealer_id == dealer_id, ENTRIES.c.created_at >= start,
                                  ENTRIES.c.created_at < end).order_by(ENTRIES.c.id)
        ).all()
        closing = dict(opening)
        for entry in entries:
            closing[entry.account] += entry.amount_fen
        if closing != closing_by_ledger:
            raise DomainError(
                "ledger_out_of_order",
                f"经销商 {dealer.code} {month} 的台账流水与余额对不上（期初 + 本月发生 ≠ 月末余额），请核查后再出具",
                409, {"computed": closing, "ledger": closing_by_ledger},
            )
        order_nos = _order_numbers(session, dealer_id, entries)
        now = utcnow()
        statement = Statement(
            statement_no=f"DZ{month.replace('-', '')}-{dealer.code}", dealer_id=dealer_id, month=month,
            period_start=start, period_end=end, dealer_code=dealer.code, dealer_name=dealer.name,
            line_count=len(entries), status="pending", issued_at=now, created_at=now, updated_at=now,
            **{f"opening_{a}_fen": opening[a] for a in LEDGER_ACCOUNTS},
            **{f"closing_{a}_fen": closing[a] for a in LEDGER_ACCOUNTS},
        )
        statement.lines = [
            StatementLine(
                ledger_entry_id=e.id, account=e.account, category=category_of(e.ref_type), ref_type=e.ref_type,
                ref_id=e.ref_id, order_no=order_nos.get((e.ref_type, e.ref_id)), amount_fen=e.amount_fen,
                balance_after_fen=e.balance_after_fen, note=e.note, occurred_at=e.created_at,
            )
            for e in entries
        ]
        session.add(statement)
        session.flush()
        _event(session, statement, "issued", None, "pending", actor_type="system", actor=None, at=now)
        publish(session, "statement.issued", statement=statement)
        statement_id = statement.id
    return statement_id


def _event(session, statement, action, from_status, to_status, *, actor_type, actor, comment=None, at=None):
    session.add(StatementEvent(
        statement_id=statement.id, action=action, from_status=from_status, to_status=to_status,
        actor_type=actor_type, actor_id=getattr(actor, "id", None),
        actor_name=getattr(actor, "name", None) or ("系统" if actor_type == "system" else None),
        comment=comment, created_at=at or utcnow(),
    ))


# --- reading -------------------------------------------------------------------------------

def summarize(statement):
    """What every view of a statement shows: per account the opening, each category's total
    and lines, all lines in ledger order, the closing. Totals are sums of the snapshotted lines."""
    accounts = []
    for account in LEDGER_ACCOUNTS:
        lines = [line for line in statement.lines if line.account == account]
        groups = []
        for category in CATEGORIES:  # every category, so the accounts' summary rows line up
            mine = [line for line in lines if line.category == category]
            groups.append({"category": category, "label": CATEGORY_LABELS[category],
                           "total_fen": sum(line.amount_fen for line in mine), "lines": mine})
        accounts.append({
            "account": account, "label": ACCOUNT_LABELS[account], "opening_fen": statement.opening_fen(account),
            "movement_fen": sum(line.amount_fen for line in lines), "closing_fen": statement.closing_fen(account),
            "groups": groups, "lines": lines,  # lines: in ledger order, for the running balance
        })
    return accounts


def status_label(status):
    return STATUS_LABELS[status]


_LOADED = (selectinload(Statement.lines), selectinload(Statement.events))


def list_statements(*, dealer_id, status=None, page=1, page_size=20):
    """The dealer's statements, newest month first: (rows, total)."""
    where = [Statement.dealer_id == dealer_id]
    if status:
        where.append(Statement.status == status)
    total = db.session.execute(select(func.count()).select_from(Statement).where(*where)).scalar_one()
    rows = db.session.execute(
        select(Statement).where(*where).order_by(Statement.month.desc(), Statement.id.desc())
        .limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return rows, total


def get_statement(*, dealer_id, statement_id):
    """The dealer's own statement with lines and events; 404 `statement_not_found` otherwise."""
    statement = db.session.execute(
        select(Statement).options(*_LOADED).where(Statement.id == statement_id, Statement.dealer_id == dealer_id)
    ).scalar_one_or_none()
    if statement is None:
        raise NotFound("对账单不存在", code="statement_not_found")
    return statement


# --- the dealer confirms or disputes --------------------------------------------------------

def _lock_dealer_statement(session, *, dealer_id, statement_id):
    statement = session.execute(
        select(Statement).where(Statement.id == statement_id, Statement.dealer_id == dealer_id)
        .with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if statement is None:
        raise NotFound("对账单不存在", code="statement_not_found")
    return statement


def _check_dealer_may_sign(session, user):
    if user.role not in ORDERING_ROLES:
        raise DomainError("forbidden_role", "您的账号为只读角色，不能确认对账单或提出异议", 403)
    check_may_act(session, user)  # the role and account as they are now, not as cached


def confirm_statement(*, user, statement_id):
    """The dealer (owner or buyer) confirms its statement: `confirmed`.

    Confirming a confirmed statement again changes nothing. Raises 404 for another dealer's
    or an unknown id, 403 for a viewer, 409 `statement_disputed` while a dispute is open.
    """
    with write_transaction() as session:
        statement = _lock_dealer_statement(session, dealer_id=user.dealer_id, statement_id=statement_id)
        _check_dealer_may_sign(session, user)
        if statement.status == "confirmed":
            return statement
        if statement.status == "disputed":
            raise DomainError("statement_disputed", "该对账单已提出异议，财务处理后才能确认", 409,
                              {"status": statement.status})
        now = utcnow()
        statement.status, statement.confirmed_at, statement.confirmed_by_id = "confirmed", now, user.id
        statement.updated_at = now
        _event(session, statement, "confirmed", "pending", "confirmed", actor_type="dealer_user", actor=user, at=now)
    return statement


def dispute_statement(*, user, statement_id, comment):
    """The dealer disputes its pending statement with a comment (1–500 characters): `disputed`.

    Raises 422 `comment_required` / `comment_too_long`, 404 for another dealer's or an
    unknown id, 403 for a viewer, 409 `statement_confirmed` after confirmation and 409
    `statement_already_disputed` while a dispute is open.
    """
    comment = (comment or "").strip()
    if not comment:
        raise DomainError("comment_required", "请填写异议说明", 422, {"field": "comment"})
    if len(comment) > MAX_COMMENT:
        raise DomainError("comment_too_long", f"异议说明不能超过 {MAX_COMMENT} 个字", 422, {"field": "comment"})
    with write_transaction() as session:
        statement = _lock_dealer_statement(session, dealer_id=user.dealer_id, statement_id=statement_id)
        _check_dealer_may_sign(session, user)
        if statement.status == "confirmed":
            raise DomainError("statement_confirmed", "对账单已确认，不能再提出异议；如有问题请联系财务", 409,
                              {"status": statement.status})
        if statement.status == "disputed":
            raise DomainError("statement_already_disputed", "已提出异议，请等待财务处理", 409,
                              {"status": statement.status})
        now = utcnow()
        statement.status, statement.disputed_at, statement.disputed_by_id = "disputed", now, user.id
        statement.dispute_comment, statement.updated_at = comment, now
        _event(session, statement, "disputed", "pending", "disputed", actor_type="dealer_user", actor=user,
               comment=comment, at=now)
    return statement


# --- staff ---------------------------------------------------------------------------------

def _check_staff(staff):
    require(staff, "statements.manage", "你的角色无权查看对账单")


def list_statements_for_staff(*, staff, month=None, status=None, dealer_q=None, page=1, page_size=STAFF_PAGE_SIZE):
    """Statements filtered by month, status and dealer (code or name): (rows, total, counts),
    counts = {status: n} under the same month and dealer filters, so open disputes show."""
    _check_staff(staff)
    where = []
    if month:
        where.append(Statement.month == month)
    if dealer_q:
        pattern = f"%{dealer_q}%"
        where.append(or_(Statement.dealer_code.ilike(pattern), Statement.dealer_name.ilike(pattern)))
    counts = dict.fromkeys(STATUS_LABELS, 0)
    counts.update(db.session.execute(
        select(Statement.status, func.count()).where(*where).group_by(Statement.status)
    ).all())
    if status:
        where.append(Statement.status == status)
    total = db.session.execute(select(func.count()).select_from(Statement).where(*where)).scalar_one()
    rows = db.session.execute(
        select(Statement).where(*where).order_by(Statement.month.desc(), Statement.dealer_code, Statement.id)
        .limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return rows, total, counts


def get_statement_for_staff(*, staff, statement_id):
    _check_staff(staff)
    statement = db.session.execute(
        select(Statement).options(*_LOADED).where(Statement.id == statement_id)
    ).scalar_one_or_none()
    if statement is None:
        raise NotFound("对账单不存在", code="statement_not_found")
    return statement


def resolve_dispute(*, staff, statement_id, note):
    """Finance records how a dispute was resolved; the statement is pending again, so the
    dealer can confirm it (or dispute again). Audited; the dealer is told.

    Raises 403 for other roles, 404 for an unknown id, 422 `note_required`, 409
    `statement_not_disputed` unless a dispute is open.
    """
    _check_staff(staff)
    note = (note or "").strip()
    if not note:
        raise DomainError("note_required", "请填写处理说明", 422, {"field": "note"})
    if len(note) > MAX_COMMENT:
        raise DomainError("note_too_long", f"处理说明不能超过 {MAX_COMMENT} 个字", 422, {"field": "note"})
    with write_transaction() as session:
        statement = session.execute(
            select(Statement).where(Statement.id == statement_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if statement is None:
            raise NotFound("对账单不存在", code="statement_not_found")
        if statement.status != "disputed":
            raise DomainError("statement_not_disputed",
                              f"对账单当前状态为「{STATUS_LABELS[statement.status]}」，没有待处理的异议", 409)
        now = utcnow()
        statement.status, statement.resolved_at, statement.resolved_by_id = "pending", now, staff.id
        statement.resolution_note, statement.updated_at = note, now
        _event(session, statement, "resolved", "disputed", "pending", actor_type="staff", actor=staff, comment=note,
               at=now)
        audit.record(
            session, actor=staff, action="statement.resolve", entity_type="statement", entity_id=statement.id,
            label=statement.statement_no, before={"status": "disputed", "dispute_comment": statement.dispute_comment},
            after={"status": "pending", "resolution_note": note},
        )
        publish(session, "statement.dispute_resolved", statement=statement)
    return statement


# --- the dealer's print link ------------------------------------------------------------------

def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="dinghuo-statement-print")


def print_token(statement):
    """A signed token naming the statement (and its dealer) for the print page link."""
    return _serializer().dumps([statement.id, statement.dealer_id])


def statement_for_token(token):
    """The statement a print token names, if the signature holds and it is not older than
    PRINT_LINK_MAX_AGE; 404 otherwise (a bad link learns nothing)."""
    try:
        statement_id, dealer_id = _serializer().loads(token, max_age=PRINT_LINK_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        raise NotFound("链接无效或已过期", code="statement_not_found") from None
    return get_statement(dealer_id=dealer_id, statement_id=statement_id)


def month_label(month):
    year, mon = month.split("-")
    return f"{year} 年 {int(mon)} 月"

