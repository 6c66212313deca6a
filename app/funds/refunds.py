"""Refunds for returned goods: the money goes back the way it came, through the ledger.

When returned goods are received (`app.returns.service.receive_return`), the receipt's value
(unit price × qty received per line, capped so an order line is never refunded more than it
was charged) is refunded by `refund_receipt`, inside the receipt's transaction, according to
how the order was paid:

- the order's rebate part-payment first: an order that spent rebate on checkout gets that
  share back on the rebate balance (rebate +share; share = amount × rebate_fen / total_fen,
  ROUND_HALF_UP, never more than the rebate not yet given back). Done at once. The rest:
- credit (账期): a credit note, receivable −amount. Done at once (`refunded`).
- prepaid, offline: prepaid +amount. Done at once (`refunded`).
- wechat: a WeChat Pay v3 refund of the payment(s) that paid the order (never more than a
  payment applied to the order less what was already refunded of it). The `Refund` row and
  its `out_refund_no` are written first (`pending`); WeChat Pay is called after the commit
  (`submit_wechat_refund`, a job), never inside a transaction. Its answer, the REFUND.*
  notification (`record_wechat_refund`) and the reconcile job's query (`reconcile_wechat_refunds`)
  all end in the same recording, which under the dealer's account lock and the refund row's
  lock moves `refunding` → `refunded` (ledger posted) or `failed`, exactly once: a duplicate
  or late notification finds the refund settled and changes nothing; a forged one never gets
  here (signature), one that disagrees with what we asked for (amount, payment, merchant) is
  refused. The ledger for a WeChat refund: receivable −amount (the returned goods' charge
  taken back) and receivable +amount (the money paid back out), both ref_type "refund", so
  the receivable nets to zero exactly as the payment's pair did.
  A WeChat order's part that was never paid has nothing to refund.

A `failed` refund is shown to finance in the console; `retry_refund` tries again (a WeChat
refund with a new out_refund_no). After every change the return's `refund_status` and
`refunded_fen` are recomputed from its refunds.

Lock order: the dealer's account row (`ledger.lock_balances`), then the return row, then
refund rows — the same order receipts take — so they never deadlock.
"""
import logging
import re
from datetime import timedelta
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.database import write_transaction
from app.extensions import db
from app.funds import ledger
from app.funds.models import REFUND_STATUS_LABELS, Payment, Refund
from app.funds.payments import PaymentRejected
from app.integrations.wechatpay import (
    WeChatPayError,
    WeChatPayNotConfigured,
    wechatpay_gateway,
)
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.kernel.money import format_yuan, share_of
from app.kernel.permissions import require

log = logging.getLogger(__name__)

WECHATPAY_ACTOR = SimpleNamespace(id=None, name="微信支付")
# A pending refund whose call was lost is looked at again after this long.
PENDING_GRACE = timedelta(minutes=1)
# WeChat Pay's refund states as they end up here.
FINAL_FAILURES = ("CLOSED", "ABNORMAL")
FAILURE_TEXT = {"CLOSED": "微信支付关闭了这笔退款", "ABNORMAL": "退款异常（如用户银行卡已注销或冻结），请在商户平台处理或重试"}
METHOD_BY_PAYMENT = {"credit": "receivable", "prepaid": "prepaid", "offline": "prepaid", "wechat": "wechat"}


# --- planning (inside the receipt's transaction) ---------------------------------------------

def refund_receipt(session, balances, *, request, order, receipt, amount_fen, actor, actor_type):
    """Refund `amount_fen` for `receipt` of `request` (a return of `order`), in the caller's
    transaction, which locked `balances` (the dealer's) and then the return row. Returns the
    new `Refund` rows; those with `status == "pending"` go to WeChat Pay after the commit
    (`submit_after_commit`). The return's refund status is brought up to date."""
    if amount_fen <= 0:
        return []
    now = utcnow()
    method = METHOD_BY_PAYMENT.get(order.payment_method, "prepaid")
    made = []
    rebate_part = _rebate_share(session, order, amount_fen)
    if rebate_part:
        refund = _new_refund(session, request, order, receipt, "rebate", rebate_part, now)
        _post_ledger(session, balances, refund, request, order, actor=actor, actor_type=actor_type, at=now)
        made.append(refund)
        amount_fen -= rebate_part
    if amount_fen > 0 and method == "wechat":
        for payment, part in _wechat_split(session, order, amount_fen):
            made.append(_new_refund(session, request, order, receipt, "wechat", part, now, payment=payment))
    elif amount_fen > 0:
        refund = _new_refund(session, request, order, receipt, method, amount_fen, now)
        _post_ledger(session, balances, refund, request, order, actor=actor, actor_type=actor_type, at=now)
        made.append(refund)
    sync_return(session, request)
    return made


def _rebate_share(session, order, amount_fen):
    """How much of a refund of `amount_fen` goes back to the rebate balance: the share the
    order paid with rebate (`rebate_fen` of `total_fen`), never more than is left of it."""
    if not order.rebate_fen or not order.total_fen:
        return 0
    given = session.execute(
        select(func.coalesce(func.sum(Refund.amount_fen), 0))
        .where(Refund.order_id == order.id, Refund.method == "rebate")
    ).scalar_one()
    return max(min(share_of(amount_fen, order.rebate_fen, order.total_fen), order.rebate_fen - int(given)), 0)


def _wechat_split(session, order, amount_fen):
    """[(payment, amount)] refunding `amount_fen` from the order's WeChat payments, oldest
    first, each at most what it applied to the order less what is (being) refunded of it."""
    payments = session.execute(
        select(Payment).where(Payment.order_id == order.id, Payment.method == "wechat", Payment.applied_fen > 0)
        .order_by(Payment.id)
    ).scalars().all()
    if not payments:
        return []
    taken = dict(session.execute(
        select(Refund.out_trade_no, func.sum(Refund.amount_fen))
        .where(Refund.order_id == order.id, Refund.method == "wechat", Refund.status != "failed")
        .group_by(Refund.out_trade_no)
    ).all())
    parts, left = [], amount_fen
    for payment in payments:
        room = payment.applied_fen - int(taken.get(payment.out_trade_no) or 0)
        if room > 0 and left > 0:
            part = min(room, left)
            parts.append((payment, part))
            left -= part
    if left:
        log.info("order %s: %s fen of the returned goods were never paid by WeChat Pay, nothing to refund",
                 order.order_no, left)
    return parts


def _new_refund(session, request, order, receipt, method, amount_fen, now, payment=None):
    refund = Refund(
        dealer_id=order.dealer_id, order_id=order.id, return_id=request.id, receipt_id=receipt.id if receipt else None,
        method=method, amount_fen=amount_fen, status="refunded" if method != "wechat" else "pending",
        attempts=0, created_at=now, updated_at=now,
    )
    if payment is not None:
        refund.out_trade_no, refund.transaction_id, refund.attempts = payment.out_trade_no, payment.transaction_id, 1
    session.add(refund)
    session.flush()
    if method == "wechat":
        refund.out_refund_no = _out_refund_no(request, refund)
    else:
        refund.refunded_at = now
    return refund


OUT_REFUND_NO_RE = re.compile(r"^(RT[0-9A-Za-z]+-[0-9]+)-R([0-9]{1,15})-([0-9]{1,9})$")


def _out_refund_no(request, refund):
    # Ours, unique, ≤ 64 characters of [0-9A-Za-z_-|*@]: the return number, the refund id, the attempt.
    return f"{request.return_no}-R{refund.id}-{refund.attempts}"


def _post_ledger(session, balances, refund, request, order, *, actor, actor_type, at=None):
    what = f"退货 {request.return_no}（订单 {order.order_no}）"
    if refund.method == "rebate":
        movements = [ledger.Movement("rebate", refund.amount_fen, "refund", refund.id, f"{what}返利抵扣部分退回返利账户")]
    elif refund.method == "receivable":
        movements = [ledger.Movement("receivable", -refund.amount_fen, "refund", refund.id, f"{what}冲减应收")]
    elif refund.method == "prepaid":
        movements = [ledger.Movement("prepaid", refund.amount_fen, "refund", refund.id, f"{what}退回预付款")]
    else:
        movements = [
            ledger.Movement("receivable", -refund.amount_fen, "refund", refund.id, f"{what}冲减货款"),
            ledger.Movement("receivable", refund.amount_fen, "refund", refund.id,
                            f"{what}微信支付原路退款 {refund.refund_id or refund.out_refund_no}"),
        ]
    ledger.post(session, balances, movements, actor=actor, actor_type=actor_type, at=at)


def sync_return(session, request):
    """Bring the return's `refund_status` and `refunded_fen` in line with its refunds."""
    from app.returns.models import ReturnRequest

    rows = session.execute(
        select(Refund.status, func.count(), func.sum(Refund.amount_fen))
        .where(Refund.return_id == request.id).group_by(Refund.status)
    ).all()
    by_status = {status: (count, int(total or 0)) for status, count, total in rows}
    if not by_status:
        status = None
    elif "failed" in by_status:
        status = "failed"
    elif "pending" in by_status:
        status = "pending"
    elif "refunding" in by_status:
        status = "refunding"
    else:
        status = "refunded"
    refunded = by_status.get("refunded", (0, 0))[1]
    session.execute(
        ReturnRequest.__table__.update().where(ReturnRequest.id == request.id)
        .values(refund_status=status, refunded_fen=refunded)
    )
    request.refund_status, request.refunded_fen = status, refunded


# --- WeChat Pay ---------------------------------------------------------------------------------

def submit_after_commit(refunds):
    """Send the pending WeChat refunds among `refunds` (call after the commit): a job each."""
    from app import jobs

    for refund in refunds:
        if refund.method == "wechat" and refund.status == "pending":
            try:
                jobs.enqueue(submit_wechat_refund, refund.id, queue="high", timeout=60)
            except Exception:  # Redis down: the reconcile job sends it
                log.exception("could not enqueue WeChat refund %s; the reconcile job will send it", refund.id)


def _gateway():
    try:
        return wechatpay_gateway(current_app)
    except WeChatPayNotConfigured as exc:
        log.error("WeChat Pay is not configured (missing %s): refunds wait", ", ".join(exc.missing))
        return None


def submit_wechat_refund(refund_id):
    """Job: ask WeChat Pay to refund a pending refund, outside any transaction, and record its
    answer. Safe to run twice (same out_refund_no = same refund at WeChat Pay). Returns what
    happened: "sent" / "recorded" / "failed" / "unavailable" / "skipped"."""
    refund = db.session.execute(
        select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if refund is None or refund.status != "pending" or refund.method != "wechat":
        db.session.rollback()
        return "skipped"
    if refund.out_trade_no is None:
        return _attach_payment_then_submit(refund_id)
    out_refund_no, out_trade_no, amount = refund.out_refund_no, refund.out_trade_no, refund.amount_fen
    payment_total = db.session.execute(
        select(Payment.amount_fen).where(Payment.out_trade_no == out_trade_no)
    ).scalar_one()
    db.session.rollback()
    gateway = _gateway()
    if gateway is None:
        return "unavailable"
    try:
        answer = gateway.refund(
            out_refund_no=out_refund_no, out_trade_no=out_trade_no, refund_fen=amount, total_fen=payment_total,
            reason="退货退款", notify_url=current_app.config.get("WECHATPAY_NOTIFY_URL"),
        )
    except WeChatPayError as exc:
        if exc.unavailable:
            log.warning("WeChat refund %s not sent (%s %s); the reconcile job retries", out_refund_no, exc.code,
                        exc.message)
            return "unavailable"
        _fail(out_refund_no, f"微信支付拒绝退款：{exc.code} {exc.message}")
        return "failed"
    try:
        return record_wechat_refund(answer, expected_out_refund_no=out_refund_no)
    except PaymentRejected as exc:
        log.error("WeChat refund %s answered something we did not ask for: %s", out_refund_no, exc.message)
        return "failed"


def _attach_payment_then_submit(refund_id):
    """A WeChat refund made before its payment was known (an upgraded database): pick the
    payment now, under the locks, then send it."""
    from app.orders.models import Order
    from app.returns.models import ReturnRequest

    dealer_id, return_id = db.session.execute(
        select(Refund.dealer_id, Refund.return_id).where(Refund.id == refund_id)).one()
    with write_transaction() as session:
        ledger.lock_balances(session, dealer_id)
        request = session.execute(select(ReturnRequest).where(ReturnRequest.id == return_id).with_for_update()
                                  .execution_options(populate_existing=True)).scalar_one()
        refund = _lock_refund(session, refund_id)
        order = session.get(Order, refund.order_id)
        if refund.status != "pending" or refund.out_trade_no is not None:
            return "skipped"
        refund.status = "failed"  # so the split does not count this refund against itself
        session.flush()
        parts = _wechat_split(session, order, refund.amount_fen)
        if len(parts) != 1 or parts[0][1] != refund.amount_fen:
            refund.failure = "找不到能覆盖这笔退款的微信支付记录，请核对后改为线下处理"
            refund.updated_at = utcnow()
            sync_return(session, request)
            return "failed"
        payment = parts[0][0]
        refund.status, refund.out_trade_no, refund.transaction_id = "pending", payment.out_trade_no, payment.transaction_id
        refund.out_refund_no = _out_refund_no(request, refund)
        refund.updated_at = utcnow()
        sync_return(session, request)
    return submit_wechat_refund(refund_id)


def record_wechat_notification(notification):
    """Record a verified, decrypted REFUND.* notification: "recorded", "duplicate",
    "ignored". Raises PaymentRejected when it does not match a refund we asked for."""
    resource = notification.get("resource") or {}
    return record_wechat_refund(resource)


def record_wechat_refund(resource, *, expected_out_refund_no=None):
    """Record what WeChat Pay says of one of our refunds (a notification's resource, the
    refund call's answer or a query's), exactly once. See the module docstring.

    Returns "recorded" (it is refunded now), "failed" (closed / abnormal now), "sent"
    (processing), or "duplicate" (nothing new). Raises PaymentRejected (nothing written)
    for an unknown out_refund_no, another merchant, another payment or another amount."""
    from app.returns.models import ReturnRequest

    state = resource.get("refund_status") or resource.get("status")
    out_refund_no = resource.get("out_refund_no")
    amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
    refunded = amount.get("refund")
    if not isinstance(out_refund_no, str) or state not in ("SUCCESS", "PROCESSING", *FINAL_FAILURES) \
            or type(refunded) is not int:
        raise PaymentRejected("PARAM_ERROR", "退款通知缺少 out_refund_no、退款状态或 amount.refund")
    if expected_out_refund_no and out_refund_no != expected_out_refund_no:
        raise PaymentRejected("PARAM_ERROR", "退款应答的退款单号与申请的不符")
    if "mchid" in resource and resource["mchid"] != current_app.config["WECHATPAY_MCHID"]:
        log.error("WeChat refund %s names mchid %r, not ours", out_refund_no, resource.get("mchid"))
        raise PaymentRejected("PARAM_ERROR", "商户号与本系统不符")
    refund_id = resource.get("refund_id")
    if refund_id is not None and (not isinstance(refund_id, str) or not 0 < len(refund_id) <= 64):
        raise PaymentRejected("PARAM_ERROR", "refund_id 无效")

    known = db.session.execute(
        select(Refund.id, Refund.dealer_id, Refund.return_id).where(Refund.out_refund_no == out_refund_no)
    ).first()
    db.session.rollback()
    if known is None:
        if _superseded(out_refund_no):
            # An attempt finance replaced by a retry: it failed before, so it stays history.
            (log.error if state == "SUCCESS" else log.info)(
                "WeChat Pay reports %s for superseded refund attempt %s", state, out_refund_no)
            return "duplicate"
        log.error("WeChat Pay reports refund %s that we never asked for", out_refund_no)
        raise PaymentRejected("RESOURCE_NOT_EXISTS", "商户退款单号不存在", 404)
    try:
        with write_transaction() as session:
            balances = ledger.lock_balances(session, known.dealer_id)
            request = session.execute(
                select(ReturnRequest).where(ReturnRequest.id == known.return_id).with_for_update()
                .execution_options(populate_existing=True)
            ).scalar_one()
            refund = _lock_refund(session, known.id)
            if refund.out_refund_no != out_refund_no:  # retried meanwhile: this attempt is history
                return "duplicate"
            if refunded != refund.amount_fen or resource.get("out_trade_no") not in (None, refund.out_trade_no):
                log.error("WeChat refund %s: %s fen of %s, we asked %s fen of %s", out_refund_no, refunded,
                          resource.get("out_trade_no"), refund.amount_fen, refund.out_trade_no)
                raise PaymentRejected("AMOUNT_MISMATCH", "退款金额或商户订单号与申请的不符")
            if refund.status in ("refunded", "failed"):
                return "duplicate"
            now = utcnow()
            if refund_id and refund.refund_id is None:
                refund.refund_id = refund_id
            if resource.get("user_received_account"):
                refund.user_received_account = str(resource["user_received_account"])[:64]
            refund.updated_at = now
            if state == "PROCESSING":
                if refund.status == "refunding":
                    return "duplicate"
                refund.status = "refunding"
                outcome = "sent"
            elif state == "SUCCESS":
                refund.status, refund.refunded_at, refund.failure = "refunded", now, None
                session.flush()
                _post_ledger(session, balances, refund, request, request.order, actor=WECHATPAY_ACTOR,
                             actor_type="wechatpay", at=now)
                outcome = "recorded"
            else:
                refund.status, refund.failure = "failed", FAILURE_TEXT[state]
                outcome = "failed"
            sync_return(session, request)
    except IntegrityError:
        # refund_id is unique: the same WeChat refund recorded for another of our rows.
        db.session.rollback()
        raise PaymentRejected("DUPLICATE_REFUND_ID", "该微信退款单号已记录在另一笔退款上") from None
    return outcome


def _superseded(out_refund_no):
    """Whether `out_refund_no` is an earlier attempt of one of our refunds (see `_out_refund_no`)."""
    match = OUT_REFUND_NO_RE.match(out_refund_no)
    if match is None:
        return False
    return_no, refund_id, attempt = match.group(1), int(match.group(2)), int(match.group(3))
    from app.returns.models import ReturnRequest

    row = db.session.execute(
        select(Refund.attempts).join(ReturnRequest, ReturnRequest.id == Refund.return_id)
        .where(Refund.id == refund_id, ReturnRequest.return_no == return_no)
    ).first()
    db.session.rollback()
    return row is not None and attempt < row.attempts


def _lock_refund(session, refund_id):
    return session.execute(
        select(Refund).where(Refund.id == refund_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def _fail(out_refund_no, why):
    from app.returns.models import ReturnRequest

    known = db.session.execute(
        select(Refund.id, Refund.dealer_id, Refund.return_id).where(Refund.out_refund_no == out_refund_no)
    ).first()
    db.session.rollback()
    with write_transaction() as session:
        ledger.lock_balances(session, known.dealer_id)
        request = session.execute(select(ReturnRequest).where(ReturnRequest.id == known.return_id).with_for_update()
                                  .execution_options(populate_existing=True)).scalar_one()
        refund = _lock_refund(session, known.id)
        if refund.status != "pending" or refund.out_refund_no != out_refund_no:
            return
        refund.status, refund.failure, refund.updated_at = "failed", why[:200], utcnow()
        sync_return(session, request)


def reconcile_wechat_refunds(now=None):
    """Periodic job (with the payments' reconcile): ask WeChat Pay about our refunds that are
    processing, or pending for over a minute (the call or its answer was lost). A refund
    WeChat Pay never received is sent (again, same out_refund_no). Each is handled on its own;
    failures are logged and retried next run. Returns {out_refund_no: what happened}."""
    gateway = _gateway()
    if gateway is None:
        return {}
    now = now or utcnow()
    due = db.session.execute(
        select(Refund.id, Refund.out_refund_no, Refund.status)
        .where(Refund.method == "wechat", (Refund.status == "refunding")
               | ((Refund.status == "pending") & (Refund.updated_at <= now - PENDING_GRACE)))
        .order_by(Refund.id).limit(500)
    ).all()
    db.session.rollback()
    outcomes = {}
    for refund_id, out_refund_no, status in due:
        key = out_refund_no or f"refund-{refund_id}"
        try:
            if out_refund_no is None:
                outcomes[key] = submit_wechat_refund(refund_id)
                continue
            try:
                answer = gateway.query_refund(out_refund_no)
            except WeChatPayError as exc:
                if exc.http_status == 404 and status == "pending":
                    outcomes[key] = submit_wechat_refund(refund_id)
                    continue
                raise
            outcomes[key] = record_wechat_refund(answer, expected_out_refund_no=out_refund_no)
        except (WeChatPayError, PaymentRejected) as exc:
            log.warning("reconciling WeChat refund %s failed: %s", key, exc)
            outcomes[key] = "error"
    return outcomes


def reconcile_wechatpay():
    """The periodic WeChat Pay reconcile job: open prepay orders, then refunds in flight."""
    from app.funds.payments import reconcile_wechat_payments

    return {"payments": reconcile_wechat_payments(), "refunds": reconcile_wechat_refunds()}


# --- finance ------------------------------------------------------------------------------------

def retry_refund(*, staff, refund_id, return_id=None):
    """Try a failed refund again (finance, admin): a WeChat refund is sent again under a new
    out_refund_no (after this commit); a ledger refund (receivable / prepaid) is posted now.
    404 for an unknown refund, 409 unless it failed. Audited."""
    from app.returns.models import ReturnRequest

    require(staff, "refunds.retry", "你没有重试退款的权限")
    known = db.session.execute(select(Refund.dealer_id, Refund.return_id).where(Refund.id == refund_id)).first()
    if known is None or (return_id is not None and known.return_id != return_id):
        raise NotFound("退款记录不存在", "refund_not_found")
    with write_transaction() as session:
        balances = ledger.lock_balances(session, known.dealer_id)
        request = session.execute(select(ReturnRequest).where(ReturnRequest.id == known.return_id).with_for_update()
                                  .execution_options(populate_existing=True)).scalar_one()
        refund = _lock_refund(session, refund_id)
        if refund.status != "failed":
            raise DomainError(
                "refund_state_conflict",
                f"这笔退款当前状态为「{REFUND_STATUS_LABELS[refund.status]}」，只有退款失败的才能重试", 409,
                {"status": refund.status},
            )
        before = {"refund_status": refund.status, "out_refund_no": refund.out_refund_no, "failure": refund.failure}
        now = utcnow()
        refund.failure, refund.updated_at = None, now
        if refund.method == "wechat":
            refund.status = "pending"
            refund.attempts += 1
            refund.refund_id = None
            refund.out_refund_no = _out_refund_no(request, refund) if refund.out_trade_no else None
        else:
            refund.status, refund.refunded_at = "refunded", now
            session.flush()
            _post_ledger(session, balances, refund, request, request.order, actor=staff, actor_type="staff", at=now)
        sync_return(session, request)
        audit.record(
            session, actor=staff, action="refund.retry", entity_type="return", entity_id=request.return_no,
            label=f"{request.return_no} 退款 {format_yuan(refund.amount_fen)}", before=before,
            after={"refund_status": refund.status, "out_refund_no": refund.out_refund_no, "refund_fen": refund.amount_fen},
            reason="财务重试退款",
        )
    submit_after_commit([refund])
    return refund


def list_failed_refunds(limit=200):
    """Failed refunds, oldest first (console)."""
    return db.session.execute(
        select(Refund).where(Refund.status == "failed").order_by(Refund.id).limit(limit)
    ).scalars().all()

