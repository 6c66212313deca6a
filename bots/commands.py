"""Commands a rep types to the WeCom app (订单助手).

    订单 SO202611260001      order status, dealer, lines, totals, latest events
    待审批                    my orders waiting for approval (newest first, at most 10)
    通过 SO202611260001      approve (through the order service)
    驳回 SO202611260001 原因  reject with a reason (the dealer sees the reason)
    客户 鑫达 / 客户 DA01      credit and the last 5 orders of one of my dealers
    帮助                      the list above; also the answer to anything unrecognised

Forgiving by design: full-width letters, digits and spaces are folded, order numbers
match in any case and with or without spaces around them, the earliest command word in
the message wins, and extra words are ignored. A rep sees and acts only on dealers
assigned to them; admins on every dealer; other roles get a polite refusal.
"""
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select

from app.dealers.models import Dealer
from app.dealers.access import scope_to_staff
from app.extensions import db
from app.funds.service import credit_summary
from app.kernel.clock import china_text
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.kernel.permissions import can
from app.orders import approval as orders
from app.orders import states
from app.orders.models import STATUS_LABELS, Order, OrderEvent
from bots.replies import NOT_STAFF_REPLY, reply, staff_for

PENDING_LIMIT = 10
LAST_ORDERS = 5
LATEST_EVENTS = 3
DEALER_CHOICES = 10

HELP = (
    "订单助手可用命令：\n"
    "1. 订单 SO202611260001 —— 查看订单状态、商品和金额\n"
    "2. 待审批 —— 我负责的经销商待审批订单\n"
    "3. 通过 SO202611260001 —— 审批通过\n"
    "4. 驳回 SO202611260001 原因 —— 驳回并告知经销商原因\n"
    "5. 客户 鑫达（或经销商编码）—— 信用额度和最近订单\n"
    "6. 帮助 —— 显示本说明"
)

# Command words; the one that appears first in the message decides (so a reject reason
# containing "通过" is still a reject).
KEYWORDS = (
    ("pending", ("待审批", "待审核", "待办")),
    ("reject", ("驳回", "拒绝")),
    ("approve", ("通过", "同意", "批准")),
    ("customer", ("客户", "经销商")),
    ("order", ("订单", "查单", "查询")),
    ("help", ("帮助", "help", "菜单", "?", "？")),
)
ORDER_NO_RE = re.compile(r"(?<![a-z0-9])so\s*(\d{12,16})(?!\d)", re.IGNORECASE)
SEPARATORS = " \t\r\n,，、。.:：;；!！?？\"'“”‘’()（）[]【】<>《》-—~～"


@dataclass
class Parsed:
    command: str
    order_no: str | None
    rest: str  # the text left after the command word and the order number


def normalize(text):
    """Fold full-width letters, digits and spaces to half-width and collapse whitespace.

    Chinese punctuation is kept as typed: a reject reason reaches the dealer unchanged.
    """
    text = "".join(
        unicodedata.normalize("NFKC", ch) if ch.isalnum() and "\uff01" <= ch <= "\uff5e" else ch
        for ch in text or ""
    )
    return " ".join(text.split())


def parse(content):
    text = normalize(content)
    lowered = text.lower()
    found = None
    for command, words in KEYWORDS:
        for word in words:
            at = lowered.find(word)
            if at >= 0 and (found is None or at < found[1]):
                found = (command, at, word)
    match = ORDER_NO_RE.search(text)
    order_no = f"SO{match.group(1)}" if match else None
    rest = text
    if match:
        rest = rest[: match.start()] + " " + rest[match.end():]
    if found:
        command, at, word = found
        if command in DECISIONS and _not_plainly_meant(lowered, at, word, command):
            # "不通过 SO…", "SO… 通过了吗": never decide on a guess.
            command = "unclear_decision"
        at = rest.lower().find(word)
        if at >= 0:
            rest = rest[:at] + " " + rest[at + len(word):]
    else:
        # A bare order number is a lookup.
        command = "order" if order_no else "unknown"
    return Parsed(command, order_no, " ".join(rest.split()).strip(SEPARATORS))


DECISIONS = ("approve", "reject")


def _not_plainly_meant(lowered, at, word, command):
    """A decision counts only when its word starts the message (no 不/没/别/SO… before it)
    and, for an approval, the message is not a question."""
    if lowered[:at].strip(SEPARATORS):
        return True
    return command == "approve" and ("吗" in lowered or lowered.rstrip().endswith(("?", "？")))


def unclear_decision_reply(order_no=None):
    order_no = order_no or "SO202611260001"
    return f"这条消息没有执行审批，以免误操作。\n审批通过请发送：通过 {order_no}\n驳回请发送：驳回 {order_no} 原因"


def handle_text(message):
    staff = staff_for(message)
    if staff is None:
        reply(message, NOT_STAFF_REPLY)
        return
    parsed = parse(message.get("Content", ""))
    handler = {
        "pending": cmd_pending, "reject": cmd_reject, "approve": cmd_approve,
        "customer": cmd_customer, "order": cmd_order, "help": cmd_help,
    }.get(parsed.command)
    if parsed.command == "unclear_decision":
        reply(message, unclear_decision_reply(parsed.order_no))
        return
    if handler is None:
        reply(message, "没有看懂这条消息。\n" + HELP)
        return
    reply(message, handler(staff, parsed))


# --- access ------------------------------------------------------------------

def may_use(staff):
    return can(staff, "bot.orders")


ROLE_REFUSAL = "订单助手目前只对业务员和管理员开放。"


def _not_found(order_no):
    return f"没有找到订单 {order_no}，或它不是你负责的经销商的订单。"


def _cst(dt):
    return china_text(dt, "%m-%d %H:%M")


def _find_order(staff, order_no):
    query = select(Order, Dealer).join(Dealer, Dealer.id == Order.dealer_id).where(Order.order_no == order_no)
    return db.session.execute(scope_to_staff(query, staff)).first()


# --- commands -------------------------------------------------------------------

def cmd_help(staff, parsed):
    return HELP


def cmd_order(staff, parsed):
    if not may_use(staff):
        return ROLE_REFUSAL
    if not parsed.order_no:
        return "请带上订单号，例如：订单 SO202611260001"
    row = _find_order(staff, parsed.order_no)
    if row is None:
        return _not_found(parsed.order_no)
    order, dealer = row
    lines = [
        f"订单 {order.order_no}【{STATUS_LABELS.get(order.status, order.status)}】",
        f"经销商：{dealer.name}（{dealer.code}）",
        f"下单时间：{_cst(order.created_at)}",
        "商品：",
    ]
    for line in order.lines:
        lines.append(f"· {line.name} {line.spec} × {line.qty}{line.unit} = {format_yuan(line.amount_fen)}")
    lines.append(f"商品金额 {format_yuan(order.subtotal_fen)}，优惠 {format_yuan(order.discount_fen)}，"
                 f"运费 {format_yuan(order.shipping_fen)}，应付 {format_yuan(order.total_fen)}")
    events = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id.desc()).limit(LATEST_EVENTS)
    ).scalars().all()
    if events:
        lines.append("最近动态：")
        for event in events:
            who = event.actor_name or "系统"
            why = f"（{event.reason}）" if event.reason else ""
            lines.append(f"· {_cst(event.created_at)} {who} → {STATUS_LABELS.get(event.to_status, event.to_status)}{why}")
    if states.allows("approve", order.status):
        lines.append(f"回复「通过 {order.order_no}」或「驳回 {order.order_no} 原因」处理。")
    return "\n".join(lines)


def cmd_pending(staff, parsed):
    if not may_use(staff):
        return ROLE_REFUSAL
    base = select(Order, Dealer).join(Dealer, Dealer.id == Order.dealer_id).where(Order.status == "pending_approval")
    base = scope_to_staff(base, staff)
    count, total = db.session.execute(
        scope_to_staff(
            select(func.count(Order.id), func.coalesce(func.sum(Order.total_fen), 0))
            .join(Dealer, Dealer.id == Order.dealer_id).where(Order.status == "pending_approval"),
            staff,
        )
    ).one()
    if not count:
        return "目前没有待审批的订单。"
    rows = db.session.execute(base.order_by(Order.id.desc()).limit(PENDING_LIMIT)).all()
    lines = [f"待审批订单 {count} 笔，合计 {format_yuan(total)}" + ("（显示最新 10 笔）" if count > PENDING_LIMIT else "") + "："]
    for order, dealer in rows:
        waiting = "【待财务复核】" if order.awaiting_finance else ""
        lines.append(f"· {order.order_no} {dealer.name} {format_yuan(order.total_fen)}（{_cst(order.created_at)}）{waiting}")
    lines.append("回复「通过 订单号」或「驳回 订单号 原因」处理。")
    return "\n".join(lines)


def _decide(staff, order_no, action):
    """Run the order service; turn its refusals into words for the rep."""
    try:
        return action(), None
    except DomainError as exc:
        if exc.status == 404:
            return None, _not_found(order_no)
        return None, exc.message


def cmd_approve(staff, parsed):
    if not parsed.order_no:
        return "请带上订单号，例如：通过 SO202611260001"
    order, problem = _decide(
        staff, parsed.order_no, lambda: orders.approve_order(staff=staff, order_no=parsed.order_no)
    )
    if problem:
        return problem
    if order.awaiting_finance:
        return (f"已记录你对订单 {order.order_no}（{format_yuan(order.total_fen)}）的审批。"
                "该经销商已超出信用额度，订单需财务复核后才生效。")
    return f"已审批通过订单 {order.order_no}（{format_yuan(order.total_fen)}），经销商会收到通知。"


def cmd_reject(staff, parsed):
    if not parsed.order_no:
        return "请带上订单号和原因，例如：驳回 SO202611260001 价格有误请重新下单"
    reason = parsed.rest[:200]
    if not reason:
        return f"驳回需要写明原因（经销商会看到），例如：驳回 {parsed.order_no} 库存不足请改期"
    order, problem = _decide(
        staff, parsed.order_no, lambda: orders.reject_order(staff=staff, order_no=parsed.order_no, reason=reason)
    )
    if problem:
        return problem
    return f"已驳回订单 {order.order_no}，原因：{reason}。库存和信用额度已释放，经销商会收到通知。"


def _subsequence(needle, haystack):
    it = iter(haystack)
    return all(ch in it for ch in needle)


def find_dealers(staff, query):
    """My dealers matching `query`: exact code, else name containing it, else fuzzy
    (the query's characters appear in order in the name, e.g. 鑫达公司 → 广州鑫达商贸有限公司)."""
    q = query.strip()
    code_match = db.session.execute(
        scope_to_staff(select(Dealer).where(func.upper(Dealer.code) == q.upper()), staff)
    ).scalars().all()
    if code_match:
        return code_match
    mine = db.session.execute(scope_to_staff(select(Dealer).order_by(Dealer.id), staff)).scalars().all()
    needle = q.lower()
    contains = [d for d in mine if needle in d.name.lower()]
    if contains:
        return contains
    compact = needle.replace(" ", "")
    return [d for d in mine if _subsequence(compact, d.name.lower().replace(" ", ""))]


def cmd_customer(staff, parsed):
    if not may_use(staff):
        return ROLE_REFUSAL
    query = parsed.rest
    if not query:
        return "请带上经销商名称或编码，例如：客户 鑫达"
    dealers = find_dealers(staff, query)
    if not dealers:
        # Extra words ("客户 鑫达 的额度"): try each word, longest first.
        for word in sorted(query.split(), key=len, reverse=True):
            dealers = find_dealers(staff, word)
            if dealers:
                break
    if not dealers:
        return f"在你负责的经销商中没有找到「{query}」。"
    if len(dealers) > 1:
        lines = [f"找到 {len(dealers)} 个经销商，请用更完整的名称或编码再查一次："]
        lines += [f"· {d.code} {d.name}" for d in dealers[:DEALER_CHOICES]]
        if len(dealers) > DEALER_CHOICES:
            lines.append(f"……还有 {len(dealers) - DEALER_CHOICES} 个")
        return "\n".join(lines)
    dealer = dealers[0]
    credit = credit_summary(dealer.id)
    status = "正常" if dealer.status == "active" else "已停用"
    lines = [
        f"{dealer.name}（{dealer.code}，{dealer.tier.name}，{status}）",
        f"信用额度 {format_yuan(credit['limit_fen'])}，已用 {format_yuan(credit['used_fen'])}，"
        f"可用 {format_yuan(credit['available_fen'])}",
    ]
    recent = db.session.execute(
        select(Order).where(Order.dealer_id == dealer.id).order_by(Order.id.desc()).limit(LAST_ORDERS)
    ).scalars().all()
    if recent:
        lines.append(f"最近 {len(recent)} 笔订单：")
        for order in recent:
            lines.append(
                f"· {order.order_no} {STATUS_LABELS.get(order.status, order.status)} "
                f"{format_yuan(order.total_fen)}（{_cst(order.created_at)}）"
            )
    else:
        lines.append("还没有订单。")
    return "\n".join(lines)
