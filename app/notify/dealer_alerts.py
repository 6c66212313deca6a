"""Dealer-facing notifications: subscribe messages to consenting users and the message list.

Every dealer-facing event writes a `DealerMessage` (the mini-program's message list) and,
for each active user of the dealer who has a one-time consent left for the event's
template, uses one consent and writes an `mp_subscribe` outbox row — all in the caller's
transaction. WeChat offers no API to ask how many consents remain, so we count them:
`record_consents` adds one per template the user accepted in `wx.requestSubscribeMessage`.

Events: `order_approved`, `order_rejected` and staff `order_cancelled` come from order
transitions (`order_changed`); `order_shipped` and `payment_due` come from shipments and
receivables (`shipment_sent`, `payment_due`); `payment_confirmed` and `payment_rejected`
from finance's decision on an offline transfer (`offline_payment_decided`); `rebate_approved` from a rebate
document's approval (`app.rebates.service`); `statement_issued` and `statement_resolved` from statements
(`statement_issued`, `statement_dispute_resolved`). A dealer's own submit or cancel notifies
nobody on the dealer's side: they did it themselves.

Template ids and which of our values fills which template field come from configuration
(`WECHAT_SUBSCRIBE_TEMPLATES`, `WECHAT_SUBSCRIBE_FIELDS`); values are trimmed to the
rules WeChat's subscribeMessage.send document sets for each field kind (`field_value`).
"""
import hashlib
import re
from datetime import date, datetime
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import func, select, update

from app.config import SUBSCRIBE_EVENTS
from app.database import dialect_insert, write_transaction
from app.dealers.models import Dealer, DealerUser
from app.extensions import db
from app.kernel.clock import china_text, utcnow
from app.kernel.errors import DomainError
from app.kernel.money import fen_to_yuan_text, format_yuan
from app.notify import service as outbox
from app.notify.models import DealerMessage, SubscribeConsent

# The titles the templates carry in WeChat's template library, shown in the mini-program.
TITLES = {
    "order_approved": "订单审核通过通知",
    "order_rejected": "订单审核驳回通知",
    "order_shipped": "订单发货通知",
    "payment_due": "付款到期提醒",
    "order_cancelled": "订单取消通知",
    "return_approved": "退货申请审核通知",
    "return_rejected": "退货申请审核通知",
    "return_received": "退货入库通知",
    "payment_confirmed": "付款到账通知",
    "payment_rejected": "付款审核结果通知",
    "return_closed": "退货入库通知",
    "rebate_approved": "返利到账通知",
    "statement_issued": "对账单通知",
    "statement_resolved": "对账单异议处理通知",
    "policy_published": "政策发布通知",
    "policy_reminder": "政策阅读提醒",
}
# Short status words for `phrase` fields (at most 5 Chinese characters).
STATUS_WORDS = {
    "order_approved": "审核通过",
    "order_rejected": "审核驳回",
    "order_shipped": "已发货",
    "payment_due": "待付款",
    "order_cancelled": "已取消",
    "return_approved": "同意退货",
    "return_rejected": "拒绝退货",
    "return_received": "退货已入库",
    "payment_confirmed": "已确认到账",
    "payment_rejected": "已驳回",
    "return_closed": "退货已结束",
    "rebate_approved": "返利到账",
    "statement_issued": "待确认",
    "statement_resolved": "异议已处理",
}
TIPS = {
    "order_approved": "我们将尽快为您安排发货",
    "order_rejected": "请按原因修改后重新下单",
    "order_shipped": "请留意查收货物",
    "payment_due": "请在到期日前完成付款",
    "order_cancelled": "如有疑问请联系业务员",
    "return_approved": "请按业务员的安排退回货物",
    "return_rejected": "如有疑问请联系业务员",
    "payment_confirmed": "款项已入账，可在资金账户查看",
    "payment_rejected": "请核对后重新提交付款凭证",
    "return_received": "退款将按原付款方式退回",
    "return_closed": "按实收货物退款",
    "rebate_approved": "返利可在下单时抵扣货款",
    "statement_issued": "请核对后在小程序中确认",
    "statement_resolved": "请查看处理说明后确认对账单",
}
ORDER_PAGE = "pages/order/detail?order_no={order_no}"
RETURN_PAGE = "pages/return/detail?id={return_id}"
OFFLINE_PAYMENT_PAGE = "pages/payment/offline?id={payment_id}"
REBATE_PAGE = "pages/rebate/detail?id={document_id}"
STATEMENT_PAGE = "pages/statement/detail?id={statement_id}"

CONSENTS = SubscribeConsent.__table__
MESSAGES = DealerMessage.__table__
USERS = DealerUser.__table__


# --- configuration -----------------------------------------------------------------------

def subscribe_templates():
    """The configured templates: [{event, template_id, title}] in a fixed event order."""
    configured = current_app.config["WECHAT_SUBSCRIBE_TEMPLATES"]
    return [
        {"event": event, "template_id": configured[event], "title": TITLES[event]}
        for event in SUBSCRIBE_EVENTS if configured.get(event)
    ]


# --- consents ----------------------------------------------------------------------------

def consent_counts(user_id, session=None):
    """How many subscribe messages this user may still receive, per configured template."""
    session = session or db.session
    remaining = dict(session.execute(
        select(CONSENTS.c.template_id, CONSENTS.c.remaining).where(CONSENTS.c.user_id == user_id)
    ).all())
    return [{**t, "remaining": remaining.get(t["template_id"], 0)} for t in subscribe_templates()]


def record_consents(*, user, template_ids):
    """Add one consent per template id the user accepted in `wx.requestSubscribeMessage`.

    An id listed twice in one request counts once (one request can accept a template only
    once). Viewers may subscribe too: they receive messages though they cannot order.
    Returns the counts afterwards. Raises 422 `unknown_template` (listing the ids) when
    any id is not one the brand configured, recording nothing.
    """
    accepted = list(dict.fromkeys(template_ids))
    configured = {t["template_id"] for t in subscribe_templates()}
    unknown = [tid for tid in accepted if tid not in configured]
    if unknown:
        raise DomainError(
            "unknown_template",
            "以下订阅消息模板未在本系统配置，无法记录：" + "、".join(unknown),
            422,
            {"template_ids": unknown},
        )
    with write_transaction() as session:
        active = session.execute(select(USERS.c.active).where(USERS.c.id == user.id)).scalar_one_or_none()
        if not active:
            raise DomainError("unauthorized", "账号已停用，请重新登录", 401)
        now = utcnow()
        for template_id in accepted:
            stmt = dialect_insert(session, CONSENTS).values(
                user_id=user.id, template_id=template_id, remaining=1, updated_at=now
            )
            session.execute(stmt.on_conflict_do_update(
                index_elements=[CONSENTS.c.user_id, CONSENTS.c.template_id],
                set_={"remaining": CONSENTS.c.remaining + 1, "updated_at": now},
            ))
        counts = consent_counts(user.id, session)
    return counts


# --- the message list ----------------------------------------------------------------------

def list_messages(*, dealer_id, page=1, page_size=20):
    """One page of the dealer's messages, newest first: (rows, total)."""
    where = MESSAGES.c.dealer_id == dealer_id
    total = db.session.execute(select(func.count()).select_from(MESSAGES).where(where)).scalar_one()
    rows = db.session.execute(
        select(MESSAGES.c.id, MESSAGES.c.event, MESSAGES.c.title, MESSAGES.c.body, MESSAGES.c.page,
               MESSAGES.c.created_at)
        .where(where).order_by(MESSAGES.c.id.desc()).limit(page_size).offset((page - 1) * page_size)
    ).mappings().all()
    return [dict(row) for row in rows], total


# --- events --------------------------------------------------------------------------------

def order_changed(session, order, *, from_status, to_status, reason=None, actor=None, card_tap=None):
    """Write the dealer's notifications for an order transition (outbox rows + message list):
    the `order.transitioned` subscriber (`card_tap` concerns the rep only).

    Approved and rejected notify the dealer; a cancellation does only when someone other
    than the dealer's own user cancelled (staff or the system). Submitting needs nothing
    (the dealer did it); shipping is announced per shipment by `shipment_sent`.
    """
    no, amount = order.order_no, format_yuan(order.total_fen)
    if to_status == "approved":
        body = f"您的订单 {no}（{amount}）已审核通过，我们将尽快为您安排发货。"
        _notify(session, order, "order_approved", "订单已审核通过", body, "approved", reason=reason)
    elif to_status == "rejected":
        body = f"您的订单 {no}（{amount}）未通过审核，原因：{reason or '未说明'}。占用的库存与信用额度已释放，请修改后重新下单。"
        _notify(session, order, "order_rejected", "订单被驳回", body, "rejected", reason=reason)
    elif to_status == "cancelled" and actor is not None and getattr(actor, "dealer_id", None) != order.dealer_id:
        body = f"您的订单 {no}（{amount}）已被取消，原因：{reason or '未说明'}。如有疑问请联系业务员。"
        _notify(session, order, "order_cancelled", "订单已取消", body, "cancelled", reason=reason)


def shipment_sent(session, order, carrier, tracking_no):
    """Tell the dealer a shipment of this order left, with its carrier and tracking number.

    The `shipment.sent` subscriber: once per shipment, in the shipment's transaction. Calling again for the same
    carrier and tracking number adds another list entry but sends no second subscribe message.
    """
    body = f"您的订单 {order.order_no} 已发货：{carrier}，运单号 {tracking_no}。请留意查收。"
    shipment = hashlib.sha256(f"{carrier}\n{tracking_no}".encode()).hexdigest()[:16]
    _notify(session, order, "order_shipped", "订单已发货", body, f"shipped:{shipment}",
            carrier=carrier, tracking_no=tracking_no)


def payment_due(session, order, due_date, amount_fen):
    """Remind the dealer that `amount_fen` of this order is due on `due_date` (a date).

    One reminder per order and due date sends at most one subscribe message per user.
    """
    body = f"订单 {order.order_no} 应付 {format_yuan(amount_fen)}，请于 {due_date:%Y-%m-%d} 前完成付款。"
    _notify(session, order, "payment_due", "付款到期提醒", body, f"payment_due:{due_date:%Y%m%d}",
            amount_fen=amount_fen, due_date=due_date)


def return_changed(session, request, order, *, to_status, reason=None, amount_fen=None):
    """Tell the dealer a staff member decided on its return request, received all of its
    goods or closed it (`amount_fen`: what the received goods are worth, to be refunded).

    Call in the transition's transaction (`app.returns.service`). Filing or withdrawing a
    request tells the dealer nothing: they did it themselves.
    """
    no = request.return_no
    amount_fen = request.refund_fen if amount_fen is None else amount_fen
    amount = format_yuan(amount_fen)
    if to_status == "approved":
        event, title = "return_approved", "退货申请已同意"
        body = f"您的退货申请 {no}（订单 {order.order_no}，{amount}）已同意，请按业务员的安排退回货物。"
    elif to_status == "rejected":
        event, title = "return_rejected", "退货申请未通过"
        body = f"您的退货申请 {no}（订单 {order.order_no}）未获同意，原因：{reason or '未说明'}。如有疑问请联系业务员。"
    elif to_status == "received":
        event, title = "return_received", "退货已入库"
        body = f"您退回的货物（退货单 {no}，订单 {order.order_no}）已全部入库，{amount} 将按原付款方式退回。"
    elif to_status == "closed":
        event, title = "return_closed", "退货已结束"
        body = (f"退货单 {no}（订单 {order.order_no}）已结束：{reason or '未说明'}。"
                f"按实际收到的货物退款 {amount}。")
    else:
        return
    goods = [line.name for line in request.lines]
    _notify(session, order, event, title, body, to_status, page=RETURN_PAGE.format(return_id=request.id),
            ref_type="return", ref_id=request.id, reason=reason, amount_fen=amount_fen,
            goods=goods[0] if len(goods) == 1 else f"{goods[0]}等{len(goods)}种商品" if goods else "")


def offline_payment_decided(session, record, order, *, to_status, reason=None):
    """Tell the dealer finance confirmed (the money is in its account) or rejected its offline
    transfer. `order` is the order it paid, or None for a deposit. Call in the decision's transaction."""
    when = f"{record.transfer_date:%Y-%m-%d} 的转账"
    what = f"订单 {order.order_no} 的付款" if order is not None else "回款"
    if to_status == "confirmed":
        event, title, amount = "payment_confirmed", "线下付款已到账", record.received_fen
        body = f"您 {when}（{what}）已确认到账 {format_yuan(amount)}，可在资金账户中查看。"
        if amount != record.amount_fen:
            body += f"（您提交的金额为 {format_yuan(record.amount_fen)}，以实际到账为准。）"
    elif to_status == "rejected":
        event, title, amount = "payment_rejected", "线下付款未通过审核", record.amount_fen
        body = f"您 {when}（{what}，{format_yuan(amount)}）未通过财务审核，原因：{reason or '未说明'}。请核对后重新提交。"
    else:
        return
    _notify(session, order, event, title, body, to_status, page=OFFLINE_PAYMENT_PAGE.format(payment_id=record.id),
            ref_type="offline_payment", ref_id=record.id, dealer_id=record.dealer_id, reason=reason,
            amount_fen=amount)


def rebate_approved(session, document, *, period_label):
    """Tell the dealer an approved rebate document was credited to its rebate account.

    Call in the approval's transaction (`app.rebates.service`). The message is about the
    document, not an order: it stands in as the subject, numbered FL + its id."""
    number = f"FL{document.id:06d}"
    body = (f"您的返利单 {number}（{document.rule_name}，{period_label}）已审核通过，"
            f"{format_yuan(document.rebate_fen)} 已计入返利账户，可在下单时抵扣货款。")
    subject = SimpleNamespace(dealer_id=document.dealer_id, order_no=number, id=document.id,
                              total_fen=document.rebate_fen, lines=[])
    _notify(session, subject, "rebate_approved", "返利已到账", body, "approved",
            page=REBATE_PAGE.format(document_id=document.id), ref_type="rebate", ref_id=document.id,
            amount_fen=document.rebate_fen, goods=document.rule_name)


class Fen(int):
    """An amount in fen, so field formatting knows to show it as yuan."""


def statement_issued(session, statement):
    """Tell the dealer its monthly statement is ready to check (in the issuing transaction)."""
    body = (f"您 {statement.month} 的对账单 {statement.statement_no} 已出具：应收账款期末 "
            f"{format_yuan(statement.closing_receivable_fen)}，预付款期末 {format_yuan(statement.closing_prepaid_fen)}，"
            f"返利期末 {format_yuan(statement.closing_rebate_fen)}。请核对后确认，如有出入请提出异议。")
    _send_statement(session, statement, "statement_issued", "对账单已出具", body, "issued")


def statement_dispute_resolved(session, statement):
    """Tell the dealer finance handled its dispute, with finance's note (in that transaction)."""
    body = f"您对 {statement.month} 对账单 {statement.statement_no} 提出的异议已处理：{statement.resolution_note}。请核对后确认。"
    _send_statement(session, statement, "statement_resolved", "对账单异议已处理", body,
                    f"resolved:{statement.resolved_at:%Y%m%d%H%M%S%f}")


def _send_statement(session, statement, event, title, body, dedupe):
    values = {
        "order_no": lambda: statement.statement_no,
        "status": lambda: STATUS_WORDS[event],
        "amount": lambda: Fen(statement.closing_receivable_fen),
        "reason": lambda: statement.resolution_note or "",
        "time": lambda: utcnow(),
        "carrier": lambda: "",
        "tracking_no": lambda: "",
        "dealer_name": lambda: statement.dealer_name,
        "goods": lambda: f"{statement.month} 对账单",
        "due_date": lambda: "",
        "tip": lambda: TIPS[event],
    }
    _deliver(session, statement.dealer_id, event, title, body, dedupe, page=STATEMENT_PAGE.format(statement_id=statement.id),
             ref_type="statement", ref_id=statement.id, values=values)


def _notify(session, order, event, title, body, dedupe, *, page=None, ref_type="order", ref_id=None, dealer_id=None,
            **facts):
    """The message-list entry always; a subscribe message to each user with consent left.
    Events about something else than the order itself (a return, a payment) name it by
    `ref_type`/`ref_id`, open their own mini-program `page`, and may have no order (`dealer_id`)."""
    dealer_id = dealer_id or order.dealer_id
    _deliver(session, dealer_id, event, title, body, dedupe,
             page=page or ORDER_PAGE.format(order_no=order.order_no), ref_type=ref_type,
             ref_id=ref_id or order.id, values=lambda: _values(session, order, dealer_id, event, facts))


def _deliver(session, dealer_id, event, title, body, dedupe, *, page, ref_type, ref_id, values):
    """Write the message-list entry and the subscribe messages; `values` (or a function making
    them, called only when a message is sent) fill the template's fields."""
    session.execute(MESSAGES.insert().values(
        dealer_id=dealer_id, event=event, title=title, body=body, page=page,
        ref_type=ref_type, ref_id=ref_id, created_at=utcnow(),
    ))
    _subscribe(session, [dealer_id], event, page, values, dedupe_key=f"{ref_type}:{ref_id}:{dedupe}",
               ref_type=ref_type, ref_id=ref_id, queue="high")


def notify_dealers(session, *, dealer_ids, event, title, body, page, ref_type, ref_id, dedupe, values, queue="default"):
    """`_notify` for an announcement to many dealers at once (a policy): a message-list entry
    per dealer and a subscribe message to each of their active users with consent left.

    `values` maps the names a template field may show (config.SUBSCRIBE_VALUES) to values;
    `dedupe` names the announcement, so calling again for the same one sends nothing twice.
    """
    dealer_ids = sorted(set(dealer_ids))
    if not dealer_ids:
        return
    now = utcnow()
    session.execute(MESSAGES.insert(), [
        {"dealer_id": d, "event": event, "title": title, "body": body, "page": page, "ref_type": ref_type,
         "ref_id": ref_id, "created_at": now}
        for d in dealer_ids
    ])
    lazy = {name: (lambda v=value: v) for name, value in values.items()}
    _subscribe(session, dealer_ids, event, page, lazy, dedupe_key=f"{ref_type}:{ref_id}:{dedupe}",
               ref_type=ref_type, ref_id=ref_id, queue=queue)


_CHUNK = 500  # ids per IN (...) list


def _subscribe(session, dealer_ids, event, page, values, *, dedupe_key, ref_type, ref_id, queue):
    """A subscribe message (outbox row) to every active user of the dealers who has a consent
    left for the event's template, using one consent each. `values` maps field sources to
    callables, each called only when a configured field asks for it (or is a function making
    that map, called only when a message is sent)."""
    config = current_app.config
    template_id = config["WECHAT_SUBSCRIBE_TEMPLATES"].get(event)
    if not template_id:
        return
    recipients = {}
    for start in range(0, len(dealer_ids), _CHUNK):
        recipients.update(session.execute(
            select(USERS.c.id, USERS.c.openid).where(
                USERS.c.dealer_id.in_(dealer_ids[start:start + _CHUNK]), USERS.c.active.is_(True),
                USERS.c.openid.is_not(None),
            )
        ).all())
    if not recipients:
        return
    # Decrement only where one is left: under concurrency the row lock makes the second
    # transition re-check `remaining > 0`, so the last consent is used exactly once.
    user_ids = sorted(recipients)
    used = []
    for start in range(0, len(user_ids), _CHUNK):
        used += session.execute(
            update(CONSENTS)
            .where(CONSENTS.c.user_id.in_(user_ids[start:start + _CHUNK]), CONSENTS.c.template_id == template_id,
                   CONSENTS.c.remaining > 0)
            .values(remaining=CONSENTS.c.remaining - 1, updated_at=utcnow())
            .returning(CONSENTS.c.user_id)
        ).scalars().all()
    if not used:
        return
    values = values() if callable(values) else values
    data = {
        key: {"value": field_value(field_kind(key), values.get(source, lambda: "")())}
        for key, source in config["WECHAT_SUBSCRIBE_FIELDS"][event].items()
    }
    payload = {
        "template_id": template_id, "page": page, "data": data,
        "miniprogram_state": config["WECHAT_MINIPROGRAM_STATE"], "lang": "zh_CN",
    }
    for user_id in sorted(used):
        added = outbox.add(
            session, channel="mp_subscribe", event=event, recipient=recipients[user_id], payload=payload,
            dedupe_key=f"{dedupe_key}:mp:{user_id}", queue=queue, ref_type=ref_type, ref_id=ref_id,
        )
        if added is None:
            # Already sent for this very event (a replay): the consent was not used after all.
            session.execute(
                update(CONSENTS).where(CONSENTS.c.user_id == user_id, CONSENTS.c.template_id == template_id)
                .values(remaining=CONSENTS.c.remaining + 1)
            )


def _values(session, order, dealer_id, event, facts):
    """What a template field can show, each computed only if a field asks for it (`order` may
    be None for an event about no order: its fields are then empty)."""
    reason = facts.get("reason")
    return {
        "order_no": lambda: order.order_no if order is not None else "",
        "status": lambda: STATUS_WORDS[event],
        "amount": lambda: Fen(facts["amount_fen"] if "amount_fen" in facts else order.total_fen),
        "reason": lambda: reason or ("审批通过" if event == "order_approved" else "未说明"),
        "time": lambda: utcnow(),
        "carrier": lambda: facts.get("carrier") or "",
        "tracking_no": lambda: facts.get("tracking_no") or "",
        "dealer_name": lambda: session.execute(select(Dealer.name).where(Dealer.id == dealer_id)).scalar_one(),
        "goods": lambda: facts.get("goods") or (_goods(order) if order is not None else ""),
        "due_date": lambda: facts.get("due_date") or "",
        "tip": lambda: TIPS[event],
    }


def _goods(order):
    names = [line.name for line in order.lines]
    if not names:
        return ""
    return names[0] if len(names) == 1 else f"{names[0]}等{len(names)}种商品"


# --- WeChat's field rules --------------------------------------------------------------------
# subscribeMessage.send: thing ≤ 20 characters; number ≤ 32 digits (decimals allowed);
# letter ≤ 32 letters; symbol ≤ 5 symbols; character_string ≤ 32 digits, letters or
# symbols; time/date 24-hour time with optional date; amount a currency symbol and ≤ 10
# digits, decimals allowed, optionally ending in 元; phone_number ≤ 17 digits and symbols;
# car_number ≤ 8; name ≤ 10 Chinese characters (or ≤ 20 letters); phrase ≤ 5 Chinese
# characters. A value WeChat refuses anyway fails the delivery with 47003, which is recorded.

_KIND = re.compile(r"([a-z_]+?)[0-9]+")
_SPACE = re.compile(r"\s+")
_ASCII_VISIBLE = re.compile(r"[!-~]")
_ASCII_SYMBOL = re.compile(r"[!-/:-@\[-`{-~]")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def field_kind(key):
    """`thing3` -> `thing`, `character_string12` -> `character_string`."""
    match = _KIND.fullmatch(key)
    return match.group(1) if match else "thing"


def _text(raw, kind):
    if isinstance(raw, Fen):
        number = fen_to_yuan_text(raw)
        return number if kind == "number" else f"{number}元"
    if isinstance(raw, datetime):
        return china_text(raw)
    if isinstance(raw, date):
        return raw.strftime("%Y-%m-%d")
    return _SPACE.sub(" ", str(raw)).strip()


def _cut(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_value(kind, raw):
    """`raw` (text, Fen, datetime or date) as WeChat accepts it in a field of this kind."""
    text = _text(raw, kind)
    if kind == "character_string":
        text = "".join(_ASCII_VISIBLE.findall(text))[:32]
    elif kind == "number":
        found = _NUMBER.search(text)
        text = found.group(0)[:32] if found else ""
    elif kind == "letter":
        text = "".join(c for c in text if c.isascii() and c.isalpha())[:32]
    elif kind == "symbol":
        text = "".join(_ASCII_SYMBOL.findall(text))[:5]
    elif kind == "amount":
        found = _NUMBER.search(text)
        text = f"{found.group(0)}元" if found else ""
    elif kind == "phone_number":
        text = "".join(c for c in text if c.isdigit() or c in "+-")[:17]
    elif kind == "car_number":
        text = text.replace(" ", "")[:8]
    elif kind == "phrase":
        text = "".join(_CJK.findall(text))[:5]
    elif kind == "name":
        text = text[:20] if text.isascii() else text[:10]
    elif kind in ("time", "date"):
        pass
    else:  # thing, and any kind WeChat adds later
        text = _cut(text, 20)
    return text or {"phrase": "无", "name": "无", "number": "0", "amount": "0元", "letter": "N"}.get(kind, "-")
