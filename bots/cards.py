"""Taps on the approval card (WeCom `template_card_event`, card_type button_interaction).

The card (built by `bots.rep_alerts.approval_card`) carries buttons with keys
`approve:{order_no}` and `reject:{order_no}`. A tap arrives with EventKey, TaskId,
CardType and a ResponseCode that may update the card once (within 72 h).

- 通过: approve through the order service; the same transaction writes the card update
  ("已通过 · 王业务") with this tap's ResponseCode: the tap (`rep_alerts.CardTap`) is passed
  to `approve_order(card_tap=...)` and travels in the `order.transitioned` event to the
  rep's notifier. That update is the whole answer (no text on top).
- 驳回: a card cannot ask for a reason, and the reason is what the dealer reads; a
  canned one would leave them guessing, so the tap does not reject: it asks the rep to
  send `驳回 SO… 原因`. The card keeps its buttons (the rep may still approve from it).
- A tap on an order already decided (by the card, the bot, the console, or the dealer
  cancelling) answers with the current status and greys the card out with that status.
- Unknown or inactive WeCom users, roles that cannot approve and another rep's dealer
  get a polite reply; nothing changes.
"""
import logging

from sqlalchemy import select

from app.database import write_transaction
from app.extensions import db
from app.kernel.errors import DomainError
from bots import rep_alerts
from app.notify import service as outbox
from app.orders import approval
from app.orders.models import STATUS_LABELS, Order
from bots.replies import NOT_STAFF_REPLY, reply, staff_for

log = logging.getLogger(__name__)

NOT_YOURS = "不是你负责的经销商的订单，不能在这里处理。"


def parse_key(event_key):
    """('approve'|'reject', order_no) or (None, None)."""
    action, sep, order_no = (event_key or "").partition(":")
    if not sep or action not in ("approve", "reject") or not order_no.isalnum():
        return None, None
    return action, order_no.upper()


def handle_card_event(message):
    action, order_no = parse_key(message.get("EventKey"))
    if action is None:
        log.info("template_card_event with unknown key %r ignored", message.get("EventKey"))
        return
    staff = staff_for(message)
    if staff is None:
        reply(message, NOT_STAFF_REPLY)
        return
    if action == "approve":
        _approve(message, staff, order_no)
    else:
        _ask_reason(message, staff, order_no)


def _approve(message, staff, order_no):
    response_code = message.get("ResponseCode")
    try:
        if response_code:
            tap = rep_alerts.CardTap(order_no=order_no, response_code=response_code, userid=message["FromUserName"])
            approval.approve_order(staff=staff, order_no=order_no, card_tap=tap)
            # The greyed-out "已通过 · 姓名" button is the confirmation; no extra message
            # (WeCom allows a member only 30 app messages a minute).
            return
        order = approval.approve_order(staff=staff, order_no=order_no)
    except DomainError as exc:
        _refused(message, staff, order_no, exc)
        return
    if order.awaiting_finance:
        reply(message, f"已记录你对订单 {order.order_no} 的审批；该经销商已超出信用额度，需财务复核后才生效。")
        return
    reply(message, f"已审批通过订单 {order.order_no}，经销商会收到通知。")


def _ask_reason(message, staff, order_no):
    try:
        status = _visible_status(staff, order_no)
    except DomainError as exc:
        _refused(message, staff, order_no, exc)
        return
    if status != "pending_approval":
        _already_decided(message, order_no, status)
        return
    reply(
        message,
        f"驳回需要写明原因（经销商会看到）。请直接回复：\n驳回 {order_no} 原因\n例如：驳回 {order_no} 库存不足请改期",
    )


def _visible_status(staff, order_no):
    """The order's status if `staff` may decide on it; raises the service's 403/404."""
    query = approval.staff_order_query(staff, order_no)
    order = db.session.execute(query).scalar_one_or_none()
    if order is None:
        raise DomainError("order_not_found", NOT_YOURS, 404)
    return order.status


def _refused(message, staff, order_no, exc):
    if exc.status == 404:
        reply(message, NOT_YOURS)
    elif exc.code == "order_not_pending":
        _already_decided(message, order_no, exc.details.get("status"))
    else:
        reply(message, exc.message)


def _already_decided(message, order_no, status):
    """Answer a tap on a decided order and grey the card out with its status."""
    label = STATUS_LABELS.get(status, status or "已处理")
    reply(message, f"订单 {order_no} 当前状态为「{label}」，无需再处理。")
    response_code = message.get("ResponseCode")
    if not response_code:
        return
    decided_by = _decided_by(order_no, status)
    with write_transaction() as session:
        outbox.add(
            session, channel="wecom_card", event="card_refresh", recipient=message["FromUserName"],
            payload=rep_alerts.card_button_update(response_code, rep_alerts.decision_label(status, decided_by)),
            dedupe_key=rep_alerts.card_update_key(response_code), queue="high",
        )


def _decided_by(order_no, status):
    from app.orders.models import OrderEvent

    return db.session.execute(
        select(OrderEvent.actor_name).join(Order, Order.id == OrderEvent.order_id)
        .where(Order.order_no == order_no, OrderEvent.to_status == status)
        .order_by(OrderEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
