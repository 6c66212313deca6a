"""Paying orders by WeChat Pay (mini-program JSAPI) and recording payments exactly once.

Paying (`start_wechat_payment`): a JSAPI prepay order at WeChat Pay for what is left to
pay of an order paid "wechat". Our `out_trade_no` (order number + "P" + attempt) is
written before WeChat Pay is called (and nothing talks to WeChat inside a transaction),
so a notification can always be matched to its order. A prepay order that is still open
for the same amount is reused, so tapping 付款 twice does not make two.

Recording (`record_wechat_transaction`, from a notification or a query): in one
transaction, the dealer's account row locked first (as orders lock it), then:
- the `payments` row; `transaction_id` and `out_trade_no` are unique, and a payment seen
  before (a duplicate or concurrent duplicate notification) is answered as done and
  changes nothing;
- the payment applied to the order by the order service's `apply_payment` (shared with
  offline transfers): ledger receivable +applied (the order's charge) and −applied (the
  payment), so the receivable nets to zero for an order paid up front; anything beyond
  what the order still had due (it was cancelled or rejected meanwhile, or two prepay
  orders were both paid) goes to prepaid (+excess), never lost; the order's `paid_fen`;
- the prepay order's status.
A notification whose amount, mchid or appid disagrees with what we asked for is refused
and nothing is recorded.
"""
import logging
from datetime import timedelta, timezone
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from app.database import write_transaction
from app.dealers.access import check_may_act
from app.extensions import db
from app.funds import ledger
from app.funds.models import Payment, WechatPayOrder
from app.integrations.wechatpay import (
    WeChatPayError,
    WeChatPayNotConfigured,
    wechatpay_gateway,
)
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.orders.models import Order
from app.orders.payments import apply_payment
from app.orders.queries import lock_dealer_order

log = logging.getLogger(__name__)

UNPAYABLE_STATUSES = ("cancelled", "rejected")
WECHATPAY_ACTOR = SimpleNamespace(id=None, name="微信支付")
CHINA = timezone(timedelta(hours=8))
# A prepay order is reused while it stays open at least this much longer.
REUSE_MARGIN = timedelta(minutes=2)


class PaymentRejected(Exception):
    """A WeChat Pay transaction we will not record (`status` for the notify answer)."""

    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _gateway():
    try:
        return wechatpay_gateway(current_app)
    except WeChatPayNotConfigured as exc:
        log.error("WeChat Pay is not configured: missing %s", ", ".join(exc.missing))
        raise DomainError("wechatpay_not_configured", "微信支付暂未开通，请选择其他付款方式或联系品牌方", 503) from None


def _unavailable(exc):
    log.warning("WeChat Pay call failed: %s %s", exc.code, exc.message)
    return DomainError("wechatpay_unavailable", "微信支付暂时不可用，请稍后重试", 503, {"wechatpay_code": exc.code})


# --- paying ----------------------------------------------------------------------------

def start_wechat_payment(*, user, order_no):
    """The signed `wx.requestPayment` parameters for paying what is left of the user's own order.

    404 for another dealer's order; 409 `not_wechat_order`, `order_not_payable` (cancelled
    or rejected), `order_already_paid`; 503 when WeChat Pay is not configured or unavailable.
    """
    gateway = _gateway()
    now = utcnow()
    stale = None
    with write_transaction() as session:
        check_may_act(session, user)
        order = lock_dealer_order(session, dealer_id=user.dealer_id, order_no=order_no)
        remaining = _require_payable(order)
        if not user.openid:
            raise DomainError("openid_required", "请在微信小程序中登录后再付款", 409)
        attempts = session.execute(
            select(WechatPayOrder).where(WechatPayOrder.order_id == order.id).order_by(WechatPayOrder.id)
        ).scalars().all()
        attempt = next((a for a in attempts if a.status == "open"), None)
        if attempt is not None and (
            attempt.amount_fen != remaining or attempt.payer_openid != user.openid
            or attempt.expires_at <= now + REUSE_MARGIN
        ):
            attempt.status, attempt.updated_at, stale = "closed", now, attempt.out_trade_no
            attempt = None
        if attempt is None:
            expire_minutes = current_app.config["WECHATPAY_EXPIRE_MINUTES"]
            attempt = WechatPayOrder(
                out_trade_no=f"{order.order_no}P{len(attempts) + 1:02d}", order_id=order.id,
                dealer_id=order.dealer_id, amount_fen=remaining, payer_openid=user.openid, status="open",
                expires_at=now + timedelta(minutes=expire_minutes), created_at=now, updated_at=now,
            )
            session.add(attempt)
        out_trade_no, prepay_id, amount, expires_at = (
            attempt.out_trade_no, attempt.prepay_id, attempt.amount_fen, attempt.expires_at)
    if stale:
        _close_quietly(gateway, stale)
    if prepay_id is None:
        try:
            prepay_id = gateway.create_jsapi(
                out_trade_no=out_trade_no, amount_fen=amount, openid=user.openid,
                description=f"{current_app.config['BRAND_NAME']}-订单{order_no}",
                time_expire=expires_at.astimezone(CHINA).replace(microsecond=0).isoformat(),
            )
        except WeChatPayError as exc:
            if exc.code == "ORDERPAID":
                raise DomainError("order_already_paid", "该订单已支付，付款结果稍后更新", 409) from None
            raise _unavailable(exc) from None
        with write_transaction() as session:
            session.execute(
                WechatPayOrder.__table__.update()
                .where(WechatPayOrder.out_trade_no == out_trade_no)
                .values(prepay_id=prepay_id, prepaid_at=utcnow(), updated_at=utcnow())
            )
    return {"out_trade_no": out_trade_no, "amount_fen": amount, "params": gateway.request_payment_params(prepay_id)}


def _require_payable(order):
    """What is left to pay of an order that may be paid by WeChat Pay now."""
    if order.payment_method != "wechat":
        raise DomainError("not_wechat_order", "该订单不是微信支付订单，无需在线付款", 409)
    if order.status in UNPAYABLE_STATUSES:
        raise DomainError("order_not_payable", "订单已取消或已驳回，不能付款", 409, {"status": order.status})
    remaining = order.due_fen
    if remaining <= 0:
        raise DomainError("order_already_paid", "订单已付清", 409)
    return remaining


def _close_quietly(gateway, out_trade_no):
    try:
        gateway.close(out_trade_no)
    except WeChatPayError as exc:
        # A payment of it that still arrives is recorded anyway (its money goes to prepaid).
        log.warning("could not close WeChat Pay order %s: %s %s", out_trade_no, exc.code, exc.message)


# --- recording -------------------------------------------------------------------------

def record_wechat_notification(notification):
    """Record the payment a verified, decrypted notification reports: "recorded",
    "duplicate" (seen before: nothing changes) or "ignored" (not a payment success).
    Raises PaymentRejected when it does not match what we asked WeChat Pay for."""
    if notification.get("event_type") != "TRANSACTION.SUCCESS":
        log.info("WeChat Pay notification %s of type %s ignored", notification.get("id"), notification.get("event_type"))
        return "ignored"
    return record_wechat_transaction(notification["resource"])


def record_wechat_transaction(transaction):
    """Record a WeChat Pay transaction (a notification's resource, or a query's answer)
    whose trade_state is SUCCESS, exactly once. See the module docstring."""
    if transaction.get("trade_state") != "SUCCESS":
        return "ignored"
    config = current_app.config
    out_trade_no, transaction_id = transaction.get("out_trade_no"), transaction.get("transaction_id")
    total = (transaction.get("amount") or {}).get("total") if isinstance(transaction.get("amount"), dict) else None
    if not isinstance(out_trade_no, str) or not isinstance(transaction_id, str) or not transaction_id \
            or type(total) is not int or len(transaction_id) > 64:
        raise PaymentRejected("PARAM_ERROR", "通知缺少 out_trade_no、transaction_id 或 amount.total")
    if transaction.get("mchid") != config["WECHATPAY_MCHID"] or transaction.get("appid") != config["WECHATPAY_APPID"]:
        log.error("WeChat Pay transaction %s names mchid %r / appid %r, not ours", transaction_id,
                  transaction.get("mchid"), transaction.get("appid"))
        raise PaymentRejected("PARAM_ERROR", "商户号或 AppID 与本系统不符")
    try:
        with write_transaction() as session:
            attempt = session.execute(
                select(WechatPayOrder).where(WechatPayOrder.out_trade_no == out_trade_no)
            ).scalar_one_or_none()
            if attempt is None:
                log.error("WeChat Pay transaction %s pays unknown out_trade_no %s", transaction_id, out_trade_no)
                raise PaymentRejected("ORDER_NOT_EXIST", "商户订单号不存在", 404)
            if total != attempt.amount_fen:
                log.error("WeChat Pay transaction %s of %s pays %s fen, we asked %s", transaction_id, out_trade_no,
                          total, attempt.amount_fen)
                raise PaymentRejected("AMOUNT_MISMATCH", "支付金额与订单金额不符")
            balances = ledger.lock_balances(session, attempt.dealer_id)
            seen = session.execute(
                select(Payment.transaction_id).where(or_(
                    Payment.transaction_id == transaction_id, Payment.out_trade_no == out_trade_no))
            ).scalar_one_or_none()
            if seen is not None:
                if seen != transaction_id:
                    log.error("out_trade_no %s paid by %s and again by %s", out_trade_no, seen, transaction_id)
                    raise PaymentRejected("DUPLICATE_OUT_TRADE_NO", "该商户订单号已记录另一笔支付")
                return "duplicate"
            _record(session, balances, attempt, transaction, transaction_id, total)
    except IntegrityError:
        # A twin committed first (the unique constraint backs the locked check above).
        db.session.rollback()
        if db.session.execute(select(Payment.id).where(Payment.transaction_id == transaction_id)).first():
            return "duplicate"
        raise
    return "recorded"


def _record(session, balances, attempt, transaction, transaction_id, total):
    order = session.execute(select(Order).where(Order.id == attempt.order_id).with_for_update()).scalar_one()
    now = utcnow()
    apply_payment(
        session, balances, order, amount_fen=total, method="wechat", reference=f"微信支付 {transaction_id}",
        actor=WECHATPAY_ACTOR, actor_type="wechatpay", at=now,
        transaction_id=transaction_id, out_trade_no=attempt.out_trade_no,
        payer_openid=(transaction.get("payer") or {}).get("openid"), paid_at=_parse_time(transaction.get("success_time")),
    )
    attempt.status, attempt.updated_at = "paid", now


def _parse_time(text):
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).astimezone(timezone.utc) if isinstance(text, str) else None
    except ValueError:
        return None


# --- query and close (CLI) -----------------------------------------------------------------

def _attempt(out_trade_no):
    attempt = db.session.execute(
        select(WechatPayOrder).where(WechatPayOrder.out_trade_no == out_trade_no)
    ).scalar_one_or_none()
    if attempt is None:
        raise NotFound("没有这个微信支付商户订单号", "wechatpay_order_not_found")
    return attempt


def query_wechat_payment(*, out_trade_no):
    """Ask WeChat Pay about one of our prepay orders; a SUCCESS not yet recorded (a lost
    notification) is recorded now. Returns (trade_state, what happened)."""
    _attempt(out_trade_no)
    db.session.rollback()
    try:
        transaction = _gateway().query(out_trade_no)
    except WeChatPayError as exc:
        raise _unavailable(exc) if exc.unavailable else DomainError(
            "wechatpay_refused", f"微信支付拒绝了查询：{exc.code} {exc.message}", 409) from None
    state = transaction.get("trade_state")
    outcome = record_wechat_transaction(transaction) if state == "SUCCESS" else "unpaid"
    return state, outcome


def close_wechat_payment(*, out_trade_no):
    """Close an unpaid prepay order at WeChat Pay (it can no longer be paid) and mark it closed.
    409 `order_already_paid` when WeChat Pay says it was paid (query it to record that)."""
    attempt = _attempt(out_trade_no)
    if attempt.status == "paid":
        raise DomainError("order_already_paid", "该笔微信支付已付款，不能关闭", 409)
    db.session.rollback()
    try:
        _gateway().close(out_trade_no)
    except WeChatPayError as exc:
        if exc.code == "ORDERPAID":
            raise DomainError("order_already_paid", "微信支付显示已付款：请先查询以记录这笔付款", 409) from None
        raise _unavailable(exc) if exc.unavailable else DomainError(
            "wechatpay_refused", f"微信支付拒绝关闭：{exc.code} {exc.message}", 409) from None
    with write_transaction() as session:
        session.execute(
            WechatPayOrder.__table__.update()
            .where(WechatPayOrder.out_trade_no == out_trade_no, WechatPayOrder.status == "open")
            .values(status="closed", updated_at=utcnow())
        )


def reconcile_wechat_payments():
    """Periodic job: ask WeChat Pay about our prepay orders still open after 5 minutes.
    A payment whose notification never arrived is recorded; one that expired unpaid is
    closed (at WeChat Pay and here). Each order is handled on its own; failures are
    logged and retried on the next run. Returns {out_trade_no: what happened}."""
    try:
        gateway = wechatpay_gateway(current_app)
    except WeChatPayNotConfigured:
        return {}
    now = utcnow()
    due = db.session.execute(
        select(WechatPayOrder.out_trade_no, WechatPayOrder.expires_at)
        .where(WechatPayOrder.status == "open", WechatPayOrder.created_at <= now - timedelta(minutes=5))
        .order_by(WechatPayOrder.id).limit(500)
    ).all()
    db.session.rollback()
    outcomes = {}
    for out_trade_no, expires_at in due:
        try:
            transaction = gateway.query(out_trade_no)
            state = transaction.get("trade_state")
            if state == "SUCCESS":
                outcomes[out_trade_no] = record_wechat_transaction(transaction)
            elif state == "NOTPAY" and expires_at > now:
                outcomes[out_trade_no] = "unpaid"
            else:
                if state == "NOTPAY":
                    gateway.close(out_trade_no)
                with write_transaction() as session:
                    session.execute(
                        WechatPayOrder.__table__.update()
                        .where(WechatPayOrder.out_trade_no == out_trade_no, WechatPayOrder.status == "open")
                        .values(status="closed", updated_at=utcnow())
                    )
                outcomes[out_trade_no] = "closed"
        except (WeChatPayError, PaymentRejected) as exc:
            log.warning("reconciling WeChat Pay order %s failed: %s", out_trade_no, exc)
            outcomes[out_trade_no] = "failed"
    return outcomes


def list_open_wechat_payments():
    """Our prepay orders still open, oldest first (for the CLI)."""
    return db.session.execute(
        select(WechatPayOrder).where(WechatPayOrder.status == "open").order_by(WechatPayOrder.id)
    ).scalars().all()


