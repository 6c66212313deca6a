"""Console: orders — the list, one order's page, approval (rep, finance co-approval) and
shipments, all through the order services."""

import re

from flask import flash, g, redirect, render_template, request, url_for

from console.auth import bp, day_arg, id_arg, login_required, page_arg
from app.funds import checkout
from app.kernel.errors import DomainError
from app.kernel.money import fen_to_yuan_text, parse_yuan
from app.orders import approval_rules, staff_views
from app.orders import approval as orders
from app.orders.models import ORDER_STATUSES, PAYMENT_METHOD_LABELS, STATUS_LABELS
from app.orders.shipments import COMMON_CARRIERS, ship_order
from app.pricing.explain import line_basis
from app.tracking import reading as tracking

STATUS_FILTERS = {**{s: STATUS_LABELS[s] for s in ORDER_STATUSES}, staff_views.AWAITING_FINANCE: "待财务复核"}


# --- the list and one order ------------------------------------------------------------

@bp.get("/orders")
@login_required("orders.view")
def order_list():
    args = request.args
    page = page_arg(args)
    filters = {
        "status": args.get("status") or None,
        "q": args.get("q", "").strip()[:64] or None,
        "order_no": args.get("order_no", "").strip()[:20] or None,
        "day_from": day_arg(args.get("from"), "开始日期"),
        "day_to": day_arg(args.get("to"), "结束日期"),
    }
    listed = staff_views.list_orders_for_staff(
        staff=g.staff, page=page, before=id_arg(args.get("before"), "翻页"), after=id_arg(args.get("after"), "翻页"),
        **filters)
    return render_template(
        "console/orders.html", rows=listed.rows, listed=listed, args=args,
        status_filters=STATUS_FILTERS, status_labels=STATUS_LABELS, **_keyset_pager(args, page, listed),
    )


def _keyset_pager(args, page, listed):
    """Previous/next links that carry the neighbouring order id (keyset), and page x of y —
    "y" only while the count is exact."""
    kept = {k: v for k, v in args.items() if k not in ("page", "before", "after") and v}
    size = staff_views.ORDER_LIST_PAGE_SIZE
    pages = None if listed.total_capped else max(1, -(-listed.total // size))
    return {
        "page": page, "pages": pages,
        "prev_url": (url_for("console.order_list", **kept, page=page - 1, after=listed.first_id)
                     if page > 2 and listed.rows else url_for("console.order_list", **kept) if page > 1 else None),
        "next_url": url_for("console.order_list", **kept, page=page + 1, before=listed.last_id) if listed.more else None,
    }


@bp.get("/orders/<order_no:order_no>")
@login_required("orders.view")
def order_detail(order_no):
    detail = staff_views.get_order_for_staff(staff=g.staff, order_no=order_no)
    trails = tracking.trails([s.id for s in detail.shipments])
    return render_template("console/order.html", d=detail, o=detail.order, status_labels=STATUS_LABELS,
                           method_labels=PAYMENT_METHOD_LABELS, carriers=COMMON_CARRIERS, line_basis=line_basis,
                           trails=trails)


# --- approvals -----------------------------------------------------------------------

@bp.get("/orders/pending")
@login_required("orders.approve", "orders.review_credit")
def pending_orders():
    rows = orders.list_pending_for_staff(staff=g.staff)
    return render_template("console/pending.html", rows=rows)


@bp.post("/orders/<order_no:order_no>/approve")
@login_required("orders.approve", "orders.review_credit")
def approve(order_no):
    def run():
        order = orders.approve_order(staff=g.staff, order_no=order_no)
        if order.awaiting_finance:
            return f"已记录你对订单 {order_no} 的审批；该经销商已超出信用额度，订单需财务复核后才生效"
        return f"订单 {order_no} 已审批通过"
    return _decide(order_no, run)


@bp.post("/orders/<order_no:order_no>/reject")
@login_required("orders.approve", "orders.review_credit")
def reject(order_no):
    reason = request.form.get("reason", "").strip()[:200]

    def run():
        orders.reject_order(staff=g.staff, order_no=order_no, reason=reason)
        return f"订单 {order_no} 已驳回，库存和信用额度已释放"
    return _decide(order_no, run)


def _back(order_no):
    """Back to the page the form was on: the order's page or the pending list."""
    if request.form.get("back") == "detail":
        return redirect(url_for("console.order_detail", order_no=order_no))
    return redirect(url_for("console.pending_orders"))


def _refused(order_no, exc, *, page=None):
    """A refused form answers with its 4xx status and the page it came from, the reason flashed
    on it; 403 and 404 go to the error handler like everywhere else."""
    if exc.status in (403, 404):
        raise exc
    flash(exc.message, "error")
    if page == "detail" or request.form.get("back") == "detail":
        return order_detail(order_no), exc.status
    return pending_orders(), exc.status


def _decide(order_no, action):
    try:
        done_message = action()
    except DomainError as exc:
        return _refused(order_no, exc)
    flash(done_message)
    return _back(order_no)


# --- shipments -------------------------------------------------------------------------

@bp.post("/orders/<order_no:order_no>/ship")
@login_required("orders.ship")
def ship(order_no):
    form = request.form
    try:
        quantities = {}
        for key, value in form.items():
            if key.startswith("qty_"):
                line_id, value = key[4:], value.strip() or "0"
                if not (line_id.isascii() and line_id.isdigit() and len(line_id) <= 15
                        and value.isascii() and value.isdigit() and len(value) <= 7):
                    raise DomainError("shipment_invalid", "发货数量应为非负整数", 400)
                quantities[int(line_id)] = int(value)
        warehouse = form.get("warehouse_id", "")
        if warehouse and not (warehouse.isascii() and warehouse.isdigit() and len(warehouse) <= 15):
            raise DomainError("validation_error", "发货仓库参数有误", 400)
        shipment = ship_order(
            staff=g.staff, order_no=order_no, quantities=quantities, carrier=form.get("carrier", ""),
            tracking_no=form.get("tracking_no", ""), warehouse_id=int(warehouse) if warehouse else None,
        )
    except DomainError as exc:
        return _refused(order_no, exc, page="detail")
    flash(f"订单 {order_no} 第 {shipment.seq} 次发货已登记：{shipment.carrier} {shipment.tracking_no}")
    return redirect(url_for("console.order_detail", order_no=order_no))


# --- auto-approval rules (admin) ----------------------------------------------------------

def _fen_from_yuan(text):
    """'5000' / '5,000.50' (yuan, as people type it) -> fen; '' -> None (no limit)."""
    if not text.strip():
        return None
    try:
        return parse_yuan(text)
    except ValueError as exc:
        raise DomainError("invalid_setting", f"单笔上限：{exc}", 422, {"field": "max_total_yuan"}) from None


@bp.route("/settings/auto-approval", methods=["GET", "POST"])
@login_required("settings.edit")
def auto_approval_settings():
    if request.method == "POST":
        try:
            approval_rules.set_auto_approval(
                enabled=request.form.get("enabled") == "on",
                max_total_fen=_fen_from_yuan(request.form.get("max_total_yuan", "")), actor=g.staff,
            )
        except DomainError as exc:
            if exc.status == 403:
                raise
            flash(exc.message, "error")
            return _auto_approval_page(typed=request.form.get("max_total_yuan", "")), exc.status
        flash("已保存。" + approval_rules.get_auto_approval().describe())
        return redirect(url_for("console.auto_approval_settings"))
    return _auto_approval_page()


def _auto_approval_page(typed=None):
    setting = approval_rules.get_auto_approval()
    limit = setting.max_total_fen
    return render_template(
        "console/settings_auto_approval.html", setting=setting,
        limit_yuan=typed if typed is not None else ("" if limit is None else fen_to_yuan_text(limit)),
    )


# --- rebate usage at checkout (admin) ---------------------------------------------------

PERCENT = re.compile(r"^([0-9]{1,3})(?:\.([0-9]{1,2}))?$")


def _bp_from_percent(text):
    """'30' / '12.5' (percent, as people type it) -> basis points; 422 for anything else."""
    match = PERCENT.match((text or "").strip().rstrip("%").strip())
    if not match:
        raise DomainError("invalid_setting", "返利抵扣比例应为 0～100 之间的数字，最多两位小数，如 30 或 12.5", 422,
                          {"field": "max_rate_percent"})
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


@bp.route("/settings/rebate-usage", methods=["GET", "POST"])
@login_required("settings.edit")
def rebate_usage_settings():
    if request.method == "POST":
        typed = request.form.get("max_rate_percent", "")
        try:
            checkout.set_rebate_rate(max_rate_bp=_bp_from_percent(typed), actor=g.staff)
        except DomainError as exc:
            if exc.status == 403:
                raise
            flash(exc.message, "error")
            return _rebate_usage_page(typed=typed), exc.status
        flash(f"已保存：返利最多抵扣订单商品金额的 {checkout.describe_rate(checkout.get_rebate_rate())}")
        return redirect(url_for("console.rebate_usage_settings"))
    return _rebate_usage_page()


def _rebate_usage_page(typed=None):
    rate = checkout.get_rebate_rate()
    return render_template(
        "console/settings_rebate_usage.html", rate_bp=rate, rate_text=checkout.describe_rate(rate),
        percent=typed if typed is not None else f"{rate // 100}" + (f".{rate % 100:02d}" if rate % 100 else ""),
    )
