"""The demo brand's past, for `devtools.demo`: the three China months before this one, replayed
through the services with the kernel clock set to each moment (`app.kernel.clock.using`), so
every row carries the time it happened at and nothing is dated by hand. Then, at the real
present, what finance does once a month: last month's statements (对账单) are issued and the
finished rebate periods closed (as the hourly and daily jobs would), one rebate document
approved. The console's 对账单 and 返利 pages, and the mini-program's GET /statements and
GET /rebates, have something to show on the first day of the demo, whatever day that is.

Each month: the warehouse books the month's goods in (a stock adjustment, so today's stock is
the brand's table); D001 and D004 (gold) order seasonings paid by offline transfer, which
finance confirms — the monthly paid-basis rebate counts them; D002 (gold, 60-day terms) orders
on credit and pays the month before's goods by transfer in the month after (last month's stays
owed, so its statement closes with a receivable).
"""
from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import select

from app.catalog.models import Sku
from app.dealers.models import Dealer
from app.extensions import db
from app.inventory.models import Warehouse
from app.kernel import clock
from app.kernel.clock import business_today, china_time
from app.staff.models import Staff


class PastOrder(NamedTuple):
    dealer: str
    day: int  # of the month; every step of the order happens within the next week
    lines: tuple  # ((SKU code, qty), ...)
    payment_method: str  # "offline": paid by transfer on day+4; "credit": repaid next month


HISTORY_MONTHS = 3
PAST_ORDERS = (  # the same every month
    PastOrder("D001", 3, (("DH-JY-009", 100), ("DH-CU-002", 100), ("DH-JY-003", 80)), "offline"),
    PastOrder("D004", 10, (("DH-JY-008", 120), ("DH-CU-007", 120)), "offline"),
    PastOrder("D002", 17, (("DH-YL-001", 100), ("DH-LY-002", 20)), "credit"),
)
REPAY_DAY = 24  # D002 repays the previous month's credit order by transfer
STOCK_IN_REASON = "工厂到货入库（演示历史）"
CARRIER = ("顺丰速运", "SF15{:08d}")
VOUCHER_COLOURS = ((245, 245, 245), (200, 30, 40))


def history_months(today):
    """The first days of the HISTORY_MONTHS China months before the one `today` is in, oldest first."""
    firsts, first = [], today.replace(day=1)
    for _ in range(HISTORY_MONTHS):
        first = (first - timedelta(days=1)).replace(day=1)
        firsts.append(first)
    return firsts[::-1]


def history_start(today):
    """The moment the demo's past begins (the brand is set up then): 09:00 on its first day."""
    first = history_months(today)[0]
    return china_time(first.year, first.month, first.day, 9, 0)


def _at(first, day, hour, minute=0):
    return clock.FakeClock(china_time(first.year, first.month, day, hour, minute))


def seed_history(today):
    """Replay the months before `today` (see the module docstring). Returns summary lines."""
    from devtools.demo_activity import _outbox_dropped

    staff = {s.username: s for s in db.session.execute(select(Staff)).scalars()}
    dealers = {d.code: d for d in db.session.execute(select(Dealer)).scalars()}
    skus = {s.code: s for s in db.session.execute(select(Sku)).scalars()}
    months = history_months(today)
    placed = []
    with _outbox_dropped():
        owed = None  # D002's credit order of the month before, repaid this month
        for m, first in enumerate(months):
            with clock.using(_at(first, 1, 9)):
                _stock_in(staff["cangku"], skus)
            for n, spec in enumerate(PAST_ORDERS):
                order_no = _past_order(first, spec, m * len(PAST_ORDERS) + n + 1, staff, dealers, skus)
                placed.append(order_no)
                if spec.payment_method == "credit":
                    if owed is not None:
                        _pay(first, REPAY_DAY, dealers[spec.dealer], staff["caiwu"], owed, order_no=None)
                    owed = _total(order_no)
        statements = _issue_statements(months[-1])
        closed = _close_rebates(staff["caiwu"], today)
    last = f"{months[-1]:%Y-%m}"
    return ["", f"历史业务（{months[0]:%Y-%m} 至 {last}，按当时的时间经各服务写入，不发通知）：",
            f"  订单 {len(placed)} 笔（下单、审批、发货、确认收货、线下转账付款或账期回款），",
            f"  {last} 对账单 {statements} 张（管理后台“对账单”，小程序 GET /api/mp/v1/statements），",
            f"  已结算返利期间：{closed}（管理后台“返利”→ 返利单）。"]


def _stock_in(warehouse_staff, skus):
    """The month's goods arrive at 华南仓 (priority 1, where the orders reserve them)."""
    from app.database import write_transaction
    from app.inventory.service import adjust_stock

    needed = {}
    for spec in PAST_ORDERS:
        for code, qty in spec.lines:
            needed[code] = needed.get(code, 0) + qty
    with write_transaction() as session:
        south = session.execute(select(Warehouse).order_by(Warehouse.priority, Warehouse.id)).scalars().first()
        for code, qty in needed.items():
            adjust_stock(staff=warehouse_staff, sku_id=skus[code].id, warehouse_id=south.id, delta=qty,
                         reason=STOCK_IN_REASON, session=session)


def _past_order(first, spec, n, staff, dealers, skus):
    """One order of the past, from submission to its payment, each step at its own moment."""
    from app.dealers.identity import user_for_openid
    from app.orders import approval, closing, queries, submission
    from app.orders.shipments import ship_order
    from devtools.demo_activity import _demo_buyer

    dealer, day = dealers[spec.dealer], spec.day
    with clock.using(_at(first, day, 10)):
        buyer = _demo_buyer(dealer)
        order, _ = submission.submit_order(
            user=user_for_openid(buyer.openid), idempotency_key=f"demo-history-order-{n}",
            lines=[{"sku_id": skus[code].id, "qty": qty} for code, qty in spec.lines],
            payment_method=spec.payment_method,
        )
    with clock.using(_at(first, day, 11, 30)):
        approval.approve_order(staff=dealer.rep, order_no=order.order_no)
    with clock.using(_at(first, day + 1, 15)):
        lines = queries.get_order(dealer_id=dealer.id, order_no=order.order_no).lines
        carrier, number = CARRIER
        ship_order(staff=staff["cangku"], order_no=order.order_no, quantities={line.id: line.qty for line in lines},
                   carrier=carrier, tracking_no=number.format(n))
    with clock.using(_at(first, day + 3, 16)):
        closing.confirm_receipt(user=user_for_openid(buyer.openid), order_no=order.order_no)
    if spec.payment_method == "offline":
        _pay(first, day + 4, dealer, staff["caiwu"], _total(order.order_no), order_no=order.order_no)
    return order.order_no


def _total(order_no):
    from app.orders.models import Order

    return db.session.execute(select(Order.total_fen).where(Order.order_no == order_no)).scalar_one()


def _pay(first, day, dealer, finance, amount_fen, *, order_no):
    """The dealer's buyer uploads the bank slip and submits the transfer at 10:00; finance
    confirms it at 15:00. `order_no` None: a repayment of what is owed on credit."""
    from app.dealers.identity import user_for_openid
    from app.funds.offline import confirm_offline_payment, submit_offline_payment
    from app.storage.service import save_upload
    from devtools.demo_activity import _demo_buyer, _demo_picture

    with clock.using(_at(first, day, 10)):
        user = user_for_openid(_demo_buyer(dealer).openid)
        voucher = save_upload(user=user, data=_demo_picture((120, 80), VOUCHER_COLOURS))
        record = submit_offline_payment(
            user=user, amount_fen=amount_fen, transfer_date=business_today(), voucher_id=voucher.id,
            order_no=order_no, bank_reference=f"DEMO{first:%Y%m}{day:02d}{dealer.code}",
        )
    with clock.using(_at(first, day, 15)):
        confirm_offline_payment(staff=finance, payment_id=record.id)


def _issue_statements(month):
    """Last month's statements, at the present (the hourly job issues them early on the 1st)."""
    from app.statements.service import issue_statements

    result = issue_statements(month=month)
    return len(result["created"]) + result["existing"]


def _close_rebates(finance, today):
    """Every rule's last finished period closed, as the daily job does; finance approves the
    first document of the monthly rule (the rest stay drafts, for the tour's 审核)."""
    from app.rebates.closing import close_due_periods
    from app.rebates.documents import approve_document
    from app.rebates.models import RebateDocument

    done = close_due_periods(today=today)
    drafts = db.session.execute(
        select(RebateDocument).where(RebateDocument.status == "draft").order_by(RebateDocument.id)
    ).scalars().all()
    monthly = [doc for doc in drafts if "-" in doc.period]
    if monthly:
        approve_document(staff=finance, document_id=monthly[0].id, reason="演示：财务已核对")
    db.session.rollback()
    return "、".join(result["label"] for result in done) or "无"
