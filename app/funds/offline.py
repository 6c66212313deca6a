"""Offline payments (线下转账): the dealer submits a transfer voucher, finance confirms or rejects it.

Dealer side: `submit_offline_payment` (owner/buyer), `list_offline_payments`,
`get_offline_payment` — every row read through the caller's dealer, so another dealer's id
answers 404 like a missing one.

Finance side (admin, finance): `list_offline_for_staff`, `get_offline_for_staff`,
`confirm_offline_payment`, `reject_offline_payment`. A decision is one write transaction:

- confirm: the dealer's account row is locked first (as orders and WeChat payments lock it),
  then the submission row; only a `pending` one may be confirmed, so two clerks confirming at
  once make exactly one payment (the second waits for the lock, then sees `confirmed`: 409).
  A `Payment` (method "offline", `offline_payment_id` unique as a backstop) is written for the
  amount actually received, and `app.orders.payments.apply_payment` posts it as WeChat
  payments are posted: to the order it names (receivable +/−, the order's `paid_fen`) up to
  what the order still owes, the rest to prepaid; a transfer naming no order pays down the
  receivable first (what the dealer owes on credit) and the rest goes to prepaid.
- reject: a reason the dealer sees; no money moves.

Both write the audit entry and the dealer's notification (message list + subscribe message
outbox rows) in the same transaction.
"""
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.audit import service as audit
from app.database import write_transaction
from app.dealers.models import ORDERING_ROLES, Dealer
from app.dealers.access import check_may_act
from app.extensions import db
from app.funds import ledger
from app.funds.models import OFFLINE_STATUS_LABELS, OfflinePayment, Payment
from app.funds.payments import UNPAYABLE_STATUSES, apply_payment
from app.kernel.clock import business_day_start, business_today, utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.events import publish
from app.kernel.money import format_yuan
from app.kernel.permissions import require
from app.orders.models import Order
from app.storage.service import dealer_uploads

# A voucher for a transfer older than this is almost certainly a mistake (or an old one reused).
MAX_TRANSFER_AGE_DAYS = 366
STAFF_PAGE_SIZE = 50
# Submissions that hold their voucher image: it cannot be submitted again for another transfer.
HOLDING_STATUSES = ("pending", "confirmed")

_LOADED = (selectinload(OfflinePayment.order), selectinload(OfflinePayment.voucher))


# --- dealer side ---------------------------------------------------------------------------

def submit_offline_payment(*, user, amount_fen, transfer_date, voucher_id, order_no=None, payer_name=None,
                           bank_reference=None, remark=None):
    """Record a transfer the dealer made, for finance to confirm: a `pending` `OfflinePayment`.

    `voucher_id` is an upload of the user's dealer (POST /uploads); `order_no` the dealer's
    order it pays (None: a deposit to the prepaid balance). Raises 403 for a read-only user,
    422 `invalid_amount` / `transfer_date_in_future` / `transfer_date_too_old`, 404
    `upload_not_found` or `order_not_found` for another dealer's (or no) upload or order,
    409 `voucher_in_use` when the image already backs a pending or confirmed submission,
    409 `order_not_payable` (cancelled or rejected) or `order_already_paid`. Nothing is
    written when it raises.
    """
    if user.role not in ORDERING_ROLES:
        raise DomainError("forbidden_role", "您的账号为只读角色，不能提交付款", 403)
    if type(amount_fen) is not int or not 0 < amount_fen <= ledger.MAX_AMOUNT_FEN:
        raise DomainError("invalid_amount", "转账金额应为大于 0 的整数（单位：分）", 422)
    today = business_today()
    if transfer_date > today:
        raise DomainError("transfer_date_in_future", "转账日期不能晚于今天", 422, {"today": today.isoformat()})
    if transfer_date < today - timedelta(days=MAX_TRANSFER_AGE_DAYS):
        raise DomainError("transfer_date_too_old", "转账日期距今超过一年，请核对日期，或联系财务处理", 422)

    with write_transaction() as session:
        check_may_act(session, user)
        # The image row, locked: two submissions of one image queue here and the second sees the first.
        voucher = dealer_uploads(session, dealer_id=user.dealer_id, upload_ids=[voucher_id], lock=True).get(voucher_id)
        if voucher is None:
            raise NotFound("付款凭证图片不存在，请重新上传", "upload_not_found")
        used = session.execute(
            select(OfflinePayment.id).where(
                OfflinePayment.voucher_upload_id == voucher.id, OfflinePayment.status.in_(HOLDING_STATUSES))
        ).first()
        if used is not None:
            raise DomainError("voucher_in_use", "这张凭证图片已用于另一笔付款，请上传本次转账的凭证", 409)
        order = None
        if order_no:
            order = session.execute(
                select(Order).where(Order.order_no == order_no, Order.dealer_id == user.dealer_id)
            ).scalar_one_or_none()
            if order is None:
                raise NotFound("订单不存在", "order_not_found")
            if order.status in UNPAYABLE_STATUSES:
                raise DomainError("order_not_payable", "订单已取消或已驳回，不能付款", 409, {"status": order.status})
            if order.due_fen <= 0:
                raise DomainError("order_already_paid", "订单已付清，无需再付款", 409)
        now = utcnow()
        record = OfflinePayment(
            dealer_id=user.dealer_id, submitted_by_id=user.id, order_id=order.id if order else None,
            amount_fen=amount_fen, transfer_date=transfer_date, payer_name=_optional(payer_name, 64),
            bank_reference=_optional(bank_reference, 64), remark=_optional(remark, 200),
            voucher_upload_id=voucher.id, status="pending", created_at=now, updated_at=now,
        )
        session.add(record)
    return record


def _optional(text, limit):
    text = (text or "").strip()
    return text[:limit] or None


def list_offline_payments(*, dealer_id, status=None, page=1, page_size=20):
    """One page of the dealer's submissions, newest first: (rows, total)."""
    where = [OfflinePayment.dealer_id == dealer_id]
    if status:
        where.append(OfflinePayment.status == status)
    total = db.session.execute(select(func.count()).select_from(OfflinePayment).where(*where)).scalar_one()
    rows = db.session.execute(
        select(OfflinePayment).options(*_LOADED).where(*where)
        .order_by(OfflinePayment.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    return rows, total


def get_offline_payment(*, dealer_id, payment_id):
    """The dealer's own submission; another dealer's id answers 404."""
    record = db.session.execute(
        select(OfflinePayment).options(*_LOADED)
        .where(OfflinePayment.id == payment_id, OfflinePayment.dealer_id == dealer_id)
    ).scalar_one_or_none()
    if record is None:
        raise NotFound("付款记录不存在", "offline_payment_not_found")
    return record


# --- finance side --------------------------------------------------------------------------

def list_offline_for_staff(*, staff, status=None, dealer_id=None, q=None, day_from=None, day_to=None, page=1):
    """One page of submissions, oldest pending first when filtered to `pending`, otherwise
    newest first: ([(OfflinePayment, Dealer)], total). `day_from`/`day_to` are China dates of
    submission (inclusive); `q` matches the dealer's code or name or the bank reference."""
    require(staff, "payments.manage", "你没有查看付款的权限")
    query = select(OfflinePayment, Dealer).join(Dealer, Dealer.id == OfflinePayment.dealer_id)
    if status:
        query = query.where(OfflinePayment.status == status)
    if dealer_id:
        query = query.where(OfflinePayment.dealer_id == dealer_id)
    if q:
        like = f"%{q}%"
        query = query.where(Dealer.code.ilike(like) | Dealer.name.ilike(like) | OfflinePayment.bank_reference.ilike(like))
    if day_from:
        query = query.where(OfflinePayment.created_at >= business_day_start(day_from))
    if day_to:
        query = query.where(OfflinePayment.created_at < business_day_start(day_to + timedelta(days=1)))
    total = db.session.execute(query.with_only_columns(func.count(), maintain_column_froms=True)).scalar_one()
    order = OfflinePayment.id.asc() if status == "pending" else OfflinePayment.id.desc()
    rows = db.session.execute(
        query.options(selectinload(OfflinePayment.order)).order_by(order)
        .limit(STAFF_PAGE_SIZE).offset((page - 1) * STAFF_PAGE_SIZE)
    ).all()
    return rows, total


def get_offline_for_staff(*, staff, payment_id):
    require(staff, "payments.manage", "你没有查看付款的权限")
    record = db.session.execute(
        select(OfflinePayment).options(*_LOADED, selectinload(OfflinePayment.dealer))
        .where(OfflinePayment.id == payment_id)
    ).scalar_one_or_none()
    if record is None:
        raise NotFound("线下付款记录不存在", "offline_payment_not_found")
    return record


def payment_of(record):
    """The `Payment` a confirmed submission became (None before)."""
    return db.session.execute(select(Payment).where(Payment.offline_payment_id == record.id)).scalar_one_or_none()


def _lock_pending(session, payment_id, action):
    record = session.execute(
        select(OfflinePayment).where(OfflinePayment.id == payment_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if record is None:
        raise NotFound("线下付款记录不存在", "offline_payment_not_found")
    if record.status != "pending":
        raise DomainError(
            "offline_payment_decided",
            f"这笔线下付款已{OFFLINE_STATUS_LABELS[record.status]}，不能再{action}",
            409, {"status": record.status},
        )
    return record


def confirm_offline_payment(*, staff, payment_id, received_fen=None, note=None):
    """Finance saw the money arrive: record the payment and post it to the ledger, exactly once.

    `received_fen` is what actually arrived (default: the submitted amount). Returns
    (record, payment). Raises 403 unless admin/finance, 404, 409 `offline_payment_decided`
    once confirmed or rejected, 422 `invalid_amount`. See the module docstring.
    """
    require(staff, "payments.manage", "你没有确认付款的权限")
    if received_fen is not None and (type(received_fen) is not int or not 0 < received_fen <= ledger.MAX_AMOUNT_FEN):
        raise DomainError("invalid_amount", "实收金额应大于 0", 422, {"field": "received"})
    note = _optional(note, 200)
    dealer_id = db.session.execute(
        select(OfflinePayment.dealer_id).where(OfflinePayment.id == payment_id)
    ).scalar_one_or_none()
    if dealer_id is None:
        raise NotFound("线下付款记录不存在", "offline_payment_not_found")
    with write_transaction() as session:
        balances = ledger.lock_balances(session, dealer_id)  # lock order: account row, then the rest
        record = _lock_pending(session, payment_id, "确认")
        order = None
        if record.order_id is not None:
            order = session.execute(
                select(Order).where(Order.id == record.order_id).with_for_update()
                .execution_options(populate_existing=True)
            ).scalar_one()
        received = received_fen if received_fen is not None else record.amount_fen
        now = utcnow()
        payment = _record_payment(session, balances, record, order, received, staff=staff, at=now)
        applied = payment.applied_fen
        record.status, record.received_fen, record.decision_note = "confirmed", received, note
        record.decided_by_id, record.decided_at, record.updated_at = staff.id, now, now
        audit.record(
            session, actor=staff, action="payment.offline_confirm", entity_type="offline_payment",
            entity_id=record.id, label=_audit_label(session, record, order),
            before={"status": "pending", "amount_fen": record.amount_fen},
            after={"status": "confirmed", "received_fen": received, "applied_fen": applied, "payment_id": payment.id},
            reason=note,
        )
        publish(session, "offline_payment.decided", record=record, order=order, to_status="confirmed", reason=None)
    return record, payment


def _record_payment(session, balances, record, order, amount_fen, *, staff, at):
    """The confirmed transfer's `Payment` and ledger entries. Paying an order goes through the
    one step that applies money to orders (shared with WeChat Pay). A transfer that names no
    order first pays down what the dealer owes on credit (receivable −, as far as it is
    positive; 回款), and the rest is a deposit (prepaid +)."""
    reference = f"线下转账 #{record.id}"
    columns = {"offline_payment_id": record.id, "paid_at": at}
    if order is not None:
        return apply_payment(session, balances, order, amount_fen=amount_fen, method="offline", reference=reference,
                             actor=staff, actor_type="staff", at=at, **columns)
    payment = Payment(dealer_id=record.dealer_id, order_id=None, method="offline", amount_fen=amount_fen,
                      applied_fen=0, created_at=at, **columns)
    session.add(payment)
    session.flush()
    repaid = min(amount_fen, max(balances.receivable, 0))
    movements = []
    if repaid:
        movements.append(ledger.Movement(
            "receivable", -repaid, "payment", payment.id, f"{reference}：回款，冲减应收账款 {format_yuan(repaid)}"))
    if amount_fen - repaid:
        movements.append(ledger.Movement(
            "prepaid", amount_fen - repaid, "payment", payment.id,
            f"{reference}：预付款充值 {format_yuan(amount_fen - repaid)}"))
    ledger.post(session, balances, movements, actor=staff, actor_type="staff", at=at)
    return payment


def reject_offline_payment(*, staff, payment_id, reason):
    """The money did not arrive (or the voucher is wrong): reject with a reason the dealer
    sees. No money moves. 403 / 404 / 409 as `confirm_offline_payment`, 422 `reason_required`."""
    require(staff, "payments.manage", "你没有驳回付款的权限")
    reason = _optional(reason, 200)
    if not reason:
        raise DomainError("reason_required", "驳回需要填写原因（经销商可见）", 422, {"field": "reason"})
    with write_transaction() as session:
        record = _lock_pending(session, payment_id, "驳回")
        order = session.get(Order, record.order_id) if record.order_id is not None else None
        now = utcnow()
        record.status, record.decision_note = "rejected", reason
        record.decided_by_id, record.decided_at, record.updated_at = staff.id, now, now
        audit.record(
            session, actor=staff, action="payment.offline_reject", entity_type="offline_payment",
            entity_id=record.id, label=_audit_label(session, record, order),
            before={"status": "pending"}, after={"status": "rejected"}, reason=reason,
        )
        publish(session, "offline_payment.decided", record=record, order=order, to_status="rejected", reason=reason)
    return record


def _audit_label(session, record, order):
    dealer = session.execute(select(Dealer.code, Dealer.name).where(Dealer.id == record.dealer_id)).one()
    target = f"订单 {order.order_no}" if order is not None else "预付款"
    return f"{dealer.name}（{dealer.code}）{format_yuan(record.amount_fen)} → {target}"
