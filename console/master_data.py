"""Console: the brand's master data under 设置 — dealer tiers (经销商等级), regions (地区) and
warehouses (仓库). Views parse the form and render; the rules, permission checks and audit
are the domains' (`app.dealers.tiers`, `app.dealers.regions`, `app.inventory.warehouses`).
A refused change (409/422) shows the page again with the message and what was typed."""
from flask import flash, g, redirect, render_template, request, url_for

from console.auth import bp, form_text, login_required, shown_on_form
from app.dealers import regions, tiers
from app.dealers.addresses import region_texts
from app.inventory import warehouses
from app.kernel.errors import DomainError


# --- tiers ------------------------------------------------------------------------------

def _tiers_page(status=200, error=None, form=None, editing=None):
    return render_template("console/tiers.html", rows=tiers.list_tiers(), error=error, form=form or {},
                           editing=editing), status


@bp.get("/tiers")
@login_required("tiers.manage")
def tier_list():
    return _tiers_page()


@bp.post("/tiers")
@login_required("tiers.manage")
def tier_create():
    form = form_text("code", "name", "rank")
    try:
        tier = tiers.create_tier(staff=g.staff, code=form["code"], name=form["name"], rank=form["rank"] or "0")
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _tiers_page(exc.status, exc.message, form)
    flash(f"已新建等级 {tier.code} {tier.name}")
    return redirect(url_for("console.tier_list"))


@bp.post("/tiers/<int:tier_id>")
@login_required("tiers.manage")
def tier_update(tier_id):
    form = form_text("name", "rank")
    try:
        tier = tiers.update_tier(staff=g.staff, tier_id=tier_id, name=form["name"], rank=form["rank"])
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _tiers_page(exc.status, exc.message, {**form, "id": tier_id}, editing=tier_id)
    flash(f"已保存等级 {tier.code} {tier.name}")
    return redirect(url_for("console.tier_list"))


@bp.post("/tiers/<int:tier_id>/delete")
@login_required("tiers.manage")
def tier_delete(tier_id):
    try:
        tier = tiers.delete_tier(staff=g.staff, tier_id=tier_id)
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _tiers_page(exc.status, exc.message)
    flash(f"已删除等级 {tier.code} {tier.name}")
    return redirect(url_for("console.tier_list"))


# --- regions ----------------------------------------------------------------------------

def _regions_page(status=200, error=None, form=None):
    q = request.args.get("q", "").strip()[:32]
    roots, shown = regions.region_tree(q=q or None)
    return render_template("console/regions.html", roots=roots, shown=shown, q=q, error=error, form=form or {},
                           level_labels=regions.LEVEL_LABELS), status


@bp.get("/regions")
@login_required("regions.manage")
def region_list():
    return _regions_page()


@bp.post("/regions")
@login_required("regions.manage")
def region_create():
    form = form_text("code", "name")
    try:
        region = regions.create_region(staff=g.staff, code=form["code"], name=form["name"])
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _regions_page(exc.status, exc.message, {**form, "action": "create"})
    flash(f"已添加地区 {region.code} {region.name}")
    return redirect(url_for("console.region_list", q=region.code))


@bp.post("/regions/rename")
@login_required("regions.manage")
def region_rename():
    form = form_text("code", "name")
    try:
        region = regions.rename_region(staff=g.staff, code=form["code"], name=form["name"])
    except DomainError as exc:
        if not shown_on_form(exc) and exc.status != 404:
            raise
        return _regions_page(exc.status, exc.message, {**form, "action": "rename"})
    flash(f"地区 {region.code} 的名称现为“{region.name}”")
    return redirect(url_for("console.region_list", q=region.code))


# --- warehouses -------------------------------------------------------------------------

WAREHOUSE_FIELDS = ("code", "name", "region_code", "priority")


def _warehouses_page(status=200, error=None, form=None):
    rows = warehouses.list_warehouses_with_stock()
    names = region_texts([r["warehouse"].region_code for r in rows])
    return render_template("console/warehouses.html", rows=rows, region_names=names, error=error,
                           form=form or {"priority": "100"}), status


@bp.get("/warehouses")
@login_required("warehouses.manage")
def warehouse_list():
    return _warehouses_page()


@bp.post("/warehouses")
@login_required("warehouses.manage")
def warehouse_create():
    form = form_text(*WAREHOUSE_FIELDS)
    try:
        house = warehouses.create_warehouse(staff=g.staff, **form)
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _warehouses_page(exc.status, exc.message, form)
    flash(f"已新建仓库 {house.code} {house.name}")
    return redirect(url_for("console.warehouse_list"))


def _warehouse_page(house, status=200, error=None, form=None):
    values = form or {name: getattr(house, name) for name in WAREHOUSE_FIELDS}
    return render_template("console/warehouse.html", house=house, form=values, error=error,
                           region_name=region_texts([house.region_code]).get(house.region_code, "")), status


@bp.get("/warehouses/<int:warehouse_id>")
@login_required("warehouses.manage")
def warehouse_edit(warehouse_id):
    return _warehouse_page(warehouses.get_warehouse(staff=g.staff, warehouse_id=warehouse_id))


@bp.post("/warehouses/<int:warehouse_id>")
@login_required("warehouses.manage")
def warehouse_update(warehouse_id):
    house = warehouses.get_warehouse(staff=g.staff, warehouse_id=warehouse_id)
    form = form_text(*WAREHOUSE_FIELDS)
    try:
        house = warehouses.update_warehouse(staff=g.staff, warehouse_id=house.id, **form)
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _warehouse_page(house, exc.status, exc.message, form)
    flash(f"已保存仓库 {house.code} {house.name}")
    return redirect(url_for("console.warehouse_list"))


@bp.post("/warehouses/<int:warehouse_id>/<any(deactivate, reactivate):action>")
@login_required("warehouses.manage")
def warehouse_set_active(warehouse_id, action):
    try:
        house = warehouses.set_active(staff=g.staff, warehouse_id=warehouse_id, active=action == "reactivate")
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _warehouses_page(exc.status, exc.message)
    flash(f"仓库 {house.code} {house.name} 已{'启用' if house.active else '停用'}")
    return redirect(url_for("console.warehouse_list"))
