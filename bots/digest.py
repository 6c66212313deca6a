"""The daily sales digest posted to the internal WeCom group robot.

`send_daily_digest(day)` (a scheduler job; queue "low") summarises one business day
(China time): valid orders placed (count and amount; cancelled/rejected counted apart),
the approvals waiting now, the top dealers, and a line per rep. The markdown stays within
the robot's 4096-byte limit: whole lines are dropped from the end and a note says so.
It writes one outbox row (channel wecom_robot, recipient "default", dedupe key per day),
so running the job twice posts once; the robot's 20-a-minute window is the sender's job.
"""
from datetime import timedelta

from sqlalchemy import case, func, select

from app.database import write_transaction
from app.dealers.models import Dealer
from app.extensions import db
from app.kernel.clock import business_day_start, business_today
from app.kernel.money import format_yuan
from app.notify import service as outbox
from app.orders.models import Order
from app.staff.models import Staff

JOB_QUEUE = "low"
JOB_TIMEOUT = 120
ROBOT = "default"
MAX_BYTES = 4096  # WeCom group robot: markdown.content ≤ 4096 bytes, UTF-8
TOP_DEALERS = 5
CLOSED_WITHOUT_SALE = ("cancelled", "rejected")
TRUNCATED = "\n> ……内容过长，其余已省略"


def _day_bounds(day):
    """[start, end) of a China business day, in UTC (how timestamps are stored and compared)."""
    start = business_day_start(day)
    return start, start + timedelta(days=1)


def compose_digest(day):
    """The digest's markdown for business day `day` (≤ MAX_BYTES bytes)."""
    from flask import current_app

    start, end = _day_bounds(day)
    in_day = (Order.created_at >= start, Order.created_at < end)
    valid = Order.status.not_in(CLOSED_WITHOUT_SALE)
    count, amount, closed = db.session.execute(
        select(
            func.count(case((valid, Order.id))),
            func.coalesce(func.sum(case((valid, Order.total_fen), else_=0)), 0),
            func.count(case((Order.status.in_(CLOSED_WITHOUT_SALE), Order.id))),
        ).where(*in_day)
    ).one()
    pending_count, pending_amount = db.session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.total_fen), 0)).where(Order.status == "pending_approval")
    ).one()
    top = db.session.execute(
        select(Dealer.name, func.count(Order.id), func.sum(Order.total_fen).label("amount"))
        .join(Dealer, Dealer.id == Order.dealer_id).where(*in_day, valid)
        .group_by(Dealer.id, Dealer.name).order_by(func.sum(Order.total_fen).desc(), Dealer.name).limit(TOP_DEALERS)
    ).all()
    day_by_rep = {
        rep_id: (n, fen)
        for rep_id, n, fen in db.session.execute(
            select(Dealer.rep_id, func.count(Order.id), func.sum(Order.total_fen))
            .join(Dealer, Dealer.id == Order.dealer_id).where(*in_day, valid).group_by(Dealer.rep_id)
        ).all()
    }
    pending_by_rep = dict(
        db.session.execute(
            select(Dealer.rep_id, func.count(Order.id))
            .join(Dealer, Dealer.id == Order.dealer_id).where(Order.status == "pending_approval")
            .group_by(Dealer.rep_id)
        ).all()
    )
    rep_ids = {r for r in day_by_rep if r is not None} | {r for r in pending_by_rep if r is not None}
    reps = db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(rep_ids))).all() if rep_ids else []
    names = {rep.id: rep.name for rep in reps}

    brand = current_app.config.get("BRAND_NAME", "")
    head = [
        f"## {brand}销售日报 {day:%Y-%m-%d}",
        f"> 有效订单：<font color=\"info\">{count}</font> 笔，金额 <font color=\"info\">{format_yuan(amount)}</font>",
    ]
    if closed:
        head.append(f"> 已取消/驳回：{closed} 笔")
    head.append(f"> 当前待审批：<font color=\"warning\">{pending_count}</font> 笔，{format_yuan(pending_amount)}")
    body = []
    if top:
        body.append("**经销商排行**")
        body += [f"{i}. {name}：{n} 笔 {format_yuan(fen)}" for i, (name, n, fen) in enumerate(top, 1)]
    rows = []
    for rep_id in sorted(rep_ids, key=lambda r: (-(day_by_rep.get(r, (0, 0))[1] or 0), names.get(r, ""))):
        n, fen = day_by_rep.get(rep_id, (0, 0))
        rows.append(f"- {names.get(rep_id, '—')}：{n} 笔 {format_yuan(fen or 0)}，待审批 {pending_by_rep.get(rep_id, 0)} 笔")
    if None in day_by_rep or None in pending_by_rep:
        n, fen = day_by_rep.get(None, (0, 0))
        rows.append(f"- 未分配业务员：{n} 笔 {format_yuan(fen or 0)}，待审批 {pending_by_rep.get(None, 0)} 笔")
    if rows:
        body.append("**业务员**")
        body += rows
    return fit_lines(head + body, MAX_BYTES)


def fit_lines(lines, limit):
    """Join lines, dropping whole lines from the end (with a note) to stay ≤ `limit` bytes."""
    text = "\n".join(lines)
    if len(text.encode("utf-8")) <= limit:
        return text
    room = limit - len(TRUNCATED.encode("utf-8"))
    kept, used = [], 0
    for line in lines:
        size = len(line.encode("utf-8")) + (1 if kept else 0)
        if used + size > room:
            break
        kept.append(line)
        used += size
    if not kept:  # one enormous first line: cut it at a character boundary
        kept = [lines[0].encode("utf-8")[:room].decode("utf-8", errors="ignore")]
    return "\n".join(kept) + TRUNCATED


def send_daily_digest(day=None):
    """Post the digest for `day` (default: yesterday, China time). Returns the outbox id,
    or None when that day's digest was already written."""
    day = day or business_today() - timedelta(days=1)
    content = compose_digest(day)
    with write_transaction() as session:
        return outbox.add(
            session, channel="wecom_robot", event="daily_digest", recipient=ROBOT,
            payload={"msgtype": "markdown", "markdown": {"content": content}},
            dedupe_key=f"digest:{day:%Y-%m-%d}:wecom_robot:{ROBOT}", queue=JOB_QUEUE,
        )
