"""Console: stock per warehouse, manual adjustments with a reason, low-stock thresholds
(warehouse and admin change; sales read)."""
from flask import flash, g, redirect, render_template, request, url_for

from app.catalog.service import get_sku, set_low_stock_threshold, stock_figures
from console.auth import bp, id_arg, login_required, page_arg, pager
from app.inventory import service as inventory
from app.inventory.models import MOVEMENT_LABELS
from app.kernel.errors import DomainError
from app.kernel.permissions import can

LEVEL_LABELS = {"in_stock": "有货", "low": "库存紧张", "out": "缺货"}


def level_label(sku_available, low_stock_qty):
    """What dealers are shown for a SKU with these units available across warehouses."""
    return LEVEL_LABELS[stock_figures(sku_available or 0, low_stock_qty)[1]]


@bp.get("/stock")
@login_required("stock.view")
def stock():
    args = request.args
    filters = {"q": args.get("q", "").strip()[:64] or None, "warehouse_id": id_arg(args.get("warehouse"), "仓库"),
               "low_only": args.get("low") == "1"}
    page = page_arg(args)
    rows, total = inventory.list_stock(staff=g.staff, page=page, **filters)
    return render_template(
        "console/stock.html", rows=rows, total=total, filters=filters, warehouses=inventory.list_warehouses(),
        can_edit=can(g.staff, "stock.edit"), level_label=level_label, **pager("console.stock", args, page, total, inventory.STOCK_PAGE_SIZE),
    )


def _sku_stock_page(sku, *, error=None, values=None, status=200):
    rows, _ = inventory.list_stock(staff=g.staff, q=None, sku_id=sku.id, page_size=1000)
    moves, total = inventory.list_movements(staff=g.staff, sku_id=sku.id, page_size=20)
    return render_template(
        "console/stock_sku.html", sku=sku, rows=rows, moves=moves, moves_total=total, error=error, values=values or {},
        warehouses=inventory.list_warehouses(active_only=True), movement_labels=MOVEMENT_LABELS, level_label=level_label,
        can_edit=can(g.staff, "stock.edit"),
    ), status


@bp.get("/stock/<int:sku_id>")
@login_required("stock.view")
def stock_sku(sku_id):
    return _sku_stock_page(get_sku(staff=g.staff, sku_id=sku_id))


@bp.post("/stock/<int:sku_id>/adjust")
@login_required("stock.edit")
def adjust_stock(sku_id):
    form = request.form
    sku = get_sku(staff=g.staff, sku_id=sku_id)
    warehouse_id = id_arg(form.get("warehouse_id", ""), "仓库")
    try:
        move = inventory.adjust_stock(
            staff=g.staff, sku_id=sku.id, warehouse_id=warehouse_id or 0, reason=form.get("reason"),
            delta=form.get("delta", "").strip() or None, on_hand=form.get("on_hand", "").strip() or None,
        )
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _sku_stock_page(sku, error=exc, values=form, status=exc.status)
    flash(f"{sku.code} 在手数量 {move.on_hand_before} → {move.on_hand_after}（{'+' if move.delta > 0 else ''}{move.delta}）")
    return redirect(url_for("console.stock_sku", sku_id=sku.id))


@bp.post("/stock/<int:sku_id>/threshold")
@login_required("stock.edit")
def stock_threshold(sku_id):
    sku = get_sku(staff=g.staff, sku_id=sku_id)
    try:
        set_low_stock_threshold(staff=g.staff, sku_id=sku.id, low_stock_qty=request.form.get("low_stock_qty", ""))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _sku_stock_page(sku, error=exc, values=request.form, status=exc.status)
    flash(f"{sku.code} 的低库存阈值已改为 {sku.low_stock_qty}")
    return redirect(url_for("console.stock_sku", sku_id=sku.id))


@bp.get("/stock/movements")
@login_required("stock.view")
def stock_movements():
    args = request.args
    page = page_arg(args)
    warehouse_id = id_arg(args.get("warehouse"), "仓库")
    rows, total = inventory.list_movements(staff=g.staff, warehouse_id=warehouse_id, page=page)
    return render_template(
        "console/stock_movements.html", rows=rows, total=total, warehouse_id=warehouse_id,
        warehouses=inventory.list_warehouses(), movement_labels=MOVEMENT_LABELS,
        **pager("console.stock_movements", args, page, total, inventory.STOCK_PAGE_SIZE),
    )
