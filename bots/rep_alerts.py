"""Rep-facing notifications in WeCom (subscribers to the order, shipment and return events): approval cards, credit, shipment and inactivity alerts.

Every function writes outbox rows (`app.notify.service.add`) in the caller's open
transaction; delivery to WeCom happens after commit. Payloads are the documented
`/cgi-bin/message/send` body without `touser`/`agentid` (channel `wecom_app`) or the
`/cgi-bin/message/update_template_card` body without `userids`/`agentid` (`wecom_card`).

A dealer without a rep, or a rep without a WeCom user id (or no longer active), gets no
row; a log line says so.

Updating an approval card needs a `response_code`: WeCom returns one when the card is sent
and one with every button tap, each usable once within 72 h. Only the tap's code reaches
us: the card's handler (bots/cards.py) passes it into the approval as a `CardTap`, which
the `order.transitioned` event carries here, so a decision taken on the card updates the
card itself; a decision taken elsewhere (bot, console, the dealer cancelling) is announced
to the rep as a text message, and a later tap on the stale card answers with the order's
status and updates that card with the tap's own code (bots/cards.py).
"""
import functools
import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select

from app.funds.models import exposure_fen
from app.integrations.wecom_messages import DUPLICATE_CHECK_INTERVAL, clip, text_message
from app.kernel.money import format_yuan
from app.notify import service as outbox

log = logging.getLogger(__name__)

CREDIT_ALERT_BP = 9000  # alert when exposure reaches 90 % of the limit
INACTIVE_DAYS = 30
DECIDED = ("approved", "rejected", "cancelled")
DECISION_LABELS = {"approved": "已通过", "rejected": "已驳回", "cancelled": "已取消"}
MAX_KEY = 160


# --- card payloads ---------------------------------------------------------------

def card_task_id(order_no):
    """Unique per card; WeCom allows ≤ 128 bytes of [0-9a-zA-Z_-@] (order numbers fit)."""
    return f"order-{order_no}"


def approval_card(*, order_no, dealer_name, total_fen, line_count, placed_by, brand):
    """The button_interaction template card a rep approves from."""
    return {
        "msgtype": "template_card",
        "template_card": {
            "card_type": "button_interaction",
            "source": {"desc": clip(f"{brand}订货", 20), "desc_color": 0},
            "main_title": {"title": "新订单待审批", "desc": f"订单号 {order_no}"},
            "horizontal_content_list": [
                {"keyname": "经销商", "value": clip(dealer_name, 30)},
                {"keyname": "金额", "value": format_yuan(total_fen)},
                {"keyname": "商品行数", "value": f"{line_count} 行"},
                {"keyname": "下单人", "value": clip(placed_by or "—", 30)},
            ],
            "task_id": card_task_id(order_no),
            "button_list": [
                {"text": "通过", "style": 1, "key": f"approve:{order_no}"},
                {"text": "驳回", "style": 2, "key": f"reject:{order_no}"},
            ],
        },
        "enable_duplicate_check": 1,
        "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL,
    }


def card_button_update(response_code, replace_name):
    """An update_template_card body that greys out the card's buttons with a new label."""
    return {"response_code": response_code, "button": {"replace_name": clip(replace_name, 10)}}


def card_update_key(response_code):
    """One update per ResponseCode: WeCom accepts each code once, so a second row for the
    same code (a replayed job) must not be written."""
    return "wecom_card:" + hashlib.sha1(response_code.encode()).hexdigest()


def decision_label(status, actor_name=None):
    from app.orders.models import STATUS_LABELS

    label = DECISION_LABELS.get(status) or STATUS_LABELS.get(status, "已处理")
    return f"{label} · {clip(actor_name, 4)}" if actor_name else label


def _key(*parts):
    key = ":".join(str(p) for p in parts)
    if len(key) > MAX_KEY:
        key = key[:100] + ":" + hashlib.sha1(key.encode()).hexdigest()
    return key


# --- who gets it -------------------------------------------------------------------

@dataclass(frozen=True)
class DealerRep:
    """What an alert needs of a dealer and its rep (one query)."""

    dealer_id: int
    code: str
    name: str
    rep_id: int | None
    rep_userid: str | None
    rep_active: bool | None


@functools.cache
def _rep_statement():
    """The dealer, its rep and its credit account (for the 90 % alert), in one prebuilt query."""
    from app.dealers.models import Dealer
    from app.funds.models import CreditAccount
    from app.staff.models import Staff

    return (
        select(Dealer.id, Dealer.code, Dealer.name, Staff.id, Staff.wecom_userid, Staff.active,
               CreditAccount.credit_limit_fen, CreditAccount.receivable_fen, CreditAccount.held_fen)
        .outerjoin(Staff, Staff.id == Dealer.rep_id)
        .outerjoin(CreditAccount, CreditAccount.dealer_id == Dealer.id)
        .where(Dealer.id == bindparam("dealer_id"))
    )


def rep_of(session, dealer_id, *, with_credit=False):
    """(dealer, rep userid), the userid None when there is nobody to tell (logged).
    With `with_credit`, also the account row (limit, receivable, held) or None."""
    row = session.connection().execute(_rep_statement(), {"dealer_id": dealer_id}).first()
    if row is None:
        return (None, None, None) if with_credit else (None, None)
    dealer, userid = _rep_from_row(row)
    if with_credit:
        credit = None if row.credit_limit_fen is None else (row.credit_limit_fen, row.receivable_fen, row.held_fen)
        return dealer, userid, credit
    return dealer, userid


def _rep_from_row(row):
    dealer = DealerRep(*row[:6])
    if dealer.rep_id is None:
        log.info("dealer %s has no rep: no WeCom alert written", dealer.code)
        return dealer, None
    if not dealer.rep_userid or not dealer.rep_active:
        log.info("rep %s of dealer %s has no WeCom user id or is inactive: no WeCom alert written",
                 dealer.rep_id, dealer.code)
        return dealer, None
    return dealer, dealer.rep_userid


# --- card taps: the decision that came from the card updates the card -----------------

@dataclass(frozen=True)
class CardTap:
    """A tap on an order's approval card: a decision on `order_no` taken with it updates
    that card (its ResponseCode) in the decision's own transaction instead of sending the
    rep a text. bots/cards.py passes it to `approve_order(card_tap=...)`."""

    order_no: str
    response_code: str
    userid: str

    def answers(self, order):
        return self.order_no == order.order_no


# --- the subscribers -------------------------------------------------------------------

def order_placed(session, order, *, actor):
    """`order.placed`: the rep's approval card (and the 90 % credit alert)."""
    _new_order(session, order, actor)


def order_changed(session, order, *, from_status, to_status, actor=None, reason=None, card_tap=None):
    """`order.transitioned`: write the rep's WeCom notifications (outbox rows). `card_tap`:
    the card tap the change answers, if it came from one."""
    tap = card_tap if card_tap is not None and card_tap.answers(order) else None
    if to_status == "pending_approval" and from_status == "pending_approval":
        _awaiting_finance(session, order, actor, tap)
    elif to_status in DECIDED:
        _decided(session, order, to_status, actor, reason, tap)


def _new_order(session, order, placed_by):
    from flask import current_app

    facts = getattr(order, "placed_for", None)  # read by submit_order with the account lock
    if facts is not None:
        row = (facts.dealer_id, facts.code, facts.name, facts.rep_id, facts.rep_userid, facts.rep_active)
        (dealer, userid), credit = _rep_from_row(row), facts.credit
    else:
        dealer, userid, credit = rep_of(session, order.dealer_id, with_credit=True)
    if userid is None:
        return
    card = approval_card(
        order_no=order.order_no, dealer_name=dealer.name, total_fen=order.total_fen,
        line_count=len(order.lines), placed_by=getattr(placed_by, "name", None),
        brand=current_app.config.get("BRAND_NAME", ""),
    )
    outbox.add(
        session, channel="wecom_app", event="order_pending_approval", recipient=userid, payload=card,
        dedupe_key=_key("order", order.id, "pending_approval", "wecom_app", dealer.rep_id),
        queue="high", ref_type="order", ref_id=order.id,
    )
    _credit_check(session, order, dealer, userid, credit)


def _credit_check(session, order, dealer, userid, credit):
    """`credit` is (limit, receivable, held) as read after this order's hold, or None."""
    if credit is None or credit[0] <= 0:
        return
    limit_fen, receivable_fen, held_fen = credit
    used = exposure_fen(receivable_fen, held_fen)
    if used * 10_000 < limit_fen * CREDIT_ALERT_BP:
        return
    percent = used * 100 // limit_fen
    content = (
        f"【信用额度预警】经销商 {dealer.name}（{dealer.code}）下单 {order.order_no} 后，"
        f"已用额度 {format_yuan(used)}，占额度 {format_yuan(limit_fen)} 的 {percent}%，"
        f"剩余可用 {format_yuan(max(limit_fen - used, 0))}。请关注回款。"
    )
    outbox.add(
        session, channel="wecom_app", event="credit_near_limit", recipient=userid,
        payload=text_message(content), dedupe_key=_key("order", order.id, "credit90", "wecom_app", dealer.rep_id),
        queue="high", ref_type="order", ref_id=order.id,
    )


def _decided(session, order, to_status, actor, reason, tap):
    from app.staff.models import Staff

    actor_name = getattr(actor, "name", None)
    if tap is not None:
        outbox.add(
            session, channel="wecom_card", event=f"order_{to_status}", recipient=tap.userid,
            payload=card_button_update(tap.response_code, decision_label(to_status, actor_name)),
            dedupe_key=card_update_key(tap.response_code),
            queue="high", ref_type="order", ref_id=order.id,
        )
        return
    dealer, userid = rep_of(session, order.dealer_id)
    if userid is None:
        return
    if isinstance(actor, Staff) and actor.id == dealer.rep_id:
        # The rep decided through the bot, which answers them itself.
        return
    if _withdraw_unsent_card(session, order, dealer):
        # Decided in the transaction that placed it (auto-approval): the rep never sees
        # buttons for an order that needs nothing from them.
        content = (
            f"新订单 {order.order_no}（{dealer.name}，{format_yuan(order.total_fen)}）"
            f"已{'自动审批通过' if to_status == 'approved' else decision_label(to_status, actor_name)}，无需处理。"
        )
    elif to_status == "cancelled":
        content = f"经销商 {dealer.name} 已取消订单 {order.order_no}（{format_yuan(order.total_fen)}）。"
        if reason and reason != DEALER_CANCEL_DEFAULT_REASON:
            content += f"原因：{reason}"
    elif to_status == "approved":
        content = f"订单 {order.order_no}（{dealer.name}，{format_yuan(order.total_fen)}）已由 {actor_name or '系统'} 审批通过。"
    else:
        content = f"订单 {order.order_no}（{dealer.name}，{format_yuan(order.total_fen)}）已被 {actor_name or '系统'} 驳回。原因：{reason or '—'}"
    outbox.add(
        session, channel="wecom_app", event=f"order_{to_status}", recipient=userid,
        payload=text_message(content), dedupe_key=_key("order", order.id, to_status, "wecom_app", dealer.rep_id),
        queue="high", ref_type="order", ref_id=order.id,
    )


def _awaiting_finance(session, order, actor, tap):
    """A rep approved an order over the credit limit: it now waits for finance. The tapped
    card (if the approval came from one) greys out saying so; the bot and the console tell
    the rep themselves; every active finance clerk with a WeCom account is messaged."""
    if tap is not None:
        outbox.add(
            session, channel="wecom_card", event="order_awaiting_finance", recipient=tap.userid,
            payload=card_button_update(tap.response_code, "待财务复核"),
            dedupe_key=card_update_key(tap.response_code), queue="high", ref_type="order", ref_id=order.id,
        )
    _tell_finance(session, order, actor)


def _tell_finance(session, order, actor):
    from app.dealers.models import Dealer
    from app.funds.models import CreditAccount
    from app.staff.models import Staff

    clerks = session.execute(
        select(Staff.id, Staff.wecom_userid).where(
            Staff.role == "finance", Staff.active.is_(True), Staff.wecom_userid.is_not(None)
        ).order_by(Staff.id)
    ).all()
    if not clerks:
        return
    dealer = session.get(Dealer, order.dealer_id)
    account = session.get(CreditAccount, order.dealer_id)
    used = account.used_fen if account else 0
    limit_fen = account.credit_limit_fen if account else 0
    content = (
        f"【待财务复核】订单 {order.order_no}（{dealer.name}，{format_yuan(order.total_fen)}）"
        f"已由业务员 {getattr(actor, 'name', None) or '—'} 审批，但超出信用额度："
        f"已用 {format_yuan(used)}，额度 {format_yuan(limit_fen)}。"
        f"请在订货管理后台「订单」中复核：通过或驳回。"
    )
    for staff_id, userid in clerks:
        outbox.add(
            session, channel="wecom_app", event="order_awaiting_finance", recipient=userid,
            payload=text_message(content), dedupe_key=_key("order", order.id, "awaiting_finance", "wecom_app", staff_id),
            queue="high", ref_type="order", ref_id=order.id,
        )


# What app.orders.closing.cancel_order records when a dealer cancels without typing a reason.
DEALER_CANCEL_DEFAULT_REASON = "经销商取消订单"


def _withdraw_unsent_card(session, order, dealer):
    """Drop the order's approval card if this very transaction wrote it (not yet sent)."""
    from app.notify.models import Outbox

    written = session.info.get("outbox_ids") or []
    key = _key("order", order.id, "pending_approval", "wecom_app", dealer.rep_id)
    card_id = session.execute(select(Outbox.id).where(Outbox.dedupe_key == key)).scalar_one_or_none()
    if card_id is None or card_id not in {oid for _, oid in written}:
        return False
    session.execute(delete(Outbox).where(Outbox.id == card_id))
    session.info["outbox_ids"] = [(queue, oid) for queue, oid in written if oid != card_id]
    return True


# --- shipment (`shipment.sent`, in the shipment's transaction) ---------------------------

def shipment_sent(session, order, carrier, tracking_no):
    """Tell the dealer's rep that (part of) an order shipped; one message per tracking number."""
    dealer, userid = rep_of(session, order.dealer_id)
    if userid is None:
        return None
    content = (
        f"订单 {order.order_no}（{dealer.name}）已发货：{carrier or '承运商未填'}，"
        f"运单号 {tracking_no or '—'}。"
    )
    return outbox.add(
        session, channel="wecom_app", event="order_shipped", recipient=userid, payload=text_message(content),
        dedupe_key=_key("order", order.id, "shipped", tracking_no or "-", "wecom_app", dealer.rep_id),
        queue="high", ref_type="order", ref_id=order.id,
    )


# --- returns (called by the returns service in its transaction) -----------------------------

def return_requested(session, request, order):
    """Tell the dealer's rep that the dealer asked to return goods; decided in the console."""
    dealer, userid = rep_of(session, order.dealer_id)
    if userid is None:
        return None
    goods = "、".join(f"{line.name}×{line.qty}{line.unit}" for line in request.lines[:3])
    more = f"等 {len(request.lines)} 种" if len(request.lines) > 3 else ""
    content = (
        f"{dealer.name} 申请退货 {request.return_no}（订单 {order.order_no}）：{goods}{more}，"
        f"应退 {format_yuan(request.refund_fen)}。原因：{clip(request.reason, 60)}。请在管理后台“退货”中审核。"
    )
    return outbox.add(
        session, channel="wecom_app", event="return_requested", recipient=userid, payload=text_message(content),
        dedupe_key=_key("return", request.id, "requested", "wecom_app", dealer.rep_id),
        queue="default", ref_type="return", ref_id=request.id,
    )


# --- dealers gone quiet (a scheduler job) ------------------------------------------------

def remind_inactive_dealers(today=None):
    """Alert reps about their active dealers with no order in the last 30 days.

    Silence is counted from the dealer's last order (or from when the dealer was created,
    if it never ordered); each full 30 days of silence alerts once (dedupe key per dealer
    per window), so running the job daily, twice, or on several workers sends one reminder
    at 30, 60, 90 … days. Returns how many rows were written.
    """
    from app.database import write_transaction
    from app.dealers.models import Dealer
    from app.kernel.clock import BUSINESS_TZ, business_day_start, business_today
    from app.orders.queries import last_order_at

    today = today or business_today()
    day_start = business_day_start(today)
    cutoff = day_start - timedelta(days=INACTIVE_DAYS)
    written = 0
    with write_transaction() as session:
        rows = session.execute(
            select(Dealer, last_order_at(Dealer.id))
            .where(Dealer.status == "active", Dealer.rep_id.is_not(None))
            .order_by(Dealer.id)
        ).all()
        for dealer, last_at in rows:
            since = _as_utc(last_at) if last_at is not None else _as_utc(dealer.created_at)
            if since is None or since >= cutoff:
                continue
            since_day = since.astimezone(BUSINESS_TZ).date()
            days = (today - since_day).days
            if days < INACTIVE_DAYS:
                continue
            rep, userid = rep_of(session, dealer.id)
            if userid is None:
                continue
            window = days // INACTIVE_DAYS
            if last_at is not None:
                content = f"经销商 {dealer.name}（{dealer.code}）已 {days} 天没有下单（最近一次下单：{since_day:%Y-%m-%d}），请及时跟进。"
            else:
                content = f"经销商 {dealer.name}（{dealer.code}）开户 {days} 天以来还没有下过单，请及时跟进。"
            if outbox.add(
                session, channel="wecom_app", event="dealer_inactive", recipient=userid,
                payload=text_message(content),
                dedupe_key=_key("dealer", dealer.id, "inactive", f"{since_day:%Y%m%d}", window, "wecom_app", rep.rep_id),
                queue="default", ref_type="dealer", ref_id=dealer.id,
            ) is not None:
                written += 1
    return written


def _as_utc(value):
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite aggregates come back as naive UTC
        from datetime import timezone

        return value.replace(tzinfo=timezone.utc)
    return value

