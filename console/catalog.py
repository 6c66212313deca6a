"""Console: the catalogue — categories, SKUs, visibility rules (admin edits; sales, marketing
and warehouse read; warehouse sees no prices)."""
from flask import flash, g, redirect, render_template, request, url_for

from app.catalog import service as catalog
from app.catalog.models import (
    SKU_STATUS_LABELS,
    VISIBILITY_EFFECT_LABELS,
    VISIBILITY_SCOPE_LABELS,
)
from console.auth import bp, id_arg, login_required, page_arg, pager
from app.kernel import inputs
from app.kernel.errors import DomainError
from app.kernel.money import fen_to_yuan_text
from app.kernel.permissions import can

SKU_FORM_FIELDS = ("code", "name", "spec", "unit", "pack_size", "moq", "step", "list_price", "category_id", "status",
                   "image_url", "low_stock_qty")


def _shows_prices():
    return can(g.staff, "catalog.prices")  # a warehouse clerk handles goods, not prices


@bp.get("/products")
@login_required("catalog.view")
def products():
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in SKU_STATUS_LABELS:
        raise DomainError("invalid_filter", "状态参数有误", 400)
    filters = {"q": args.get("q", "").strip()[:64] or None, "category_id": id_arg(args.get("category_id"), "分类"),
               "status": status}
    page = page_arg(args)
    rows, total = catalog.list_skus(staff=g.staff, page=page, **filters)
    return render_template(
        "console/products.html", rows=rows, total=total, filters=filters, categories=catalog.list_categories(),
        status_labels=SKU_STATUS_LABELS, can_edit=can(g.staff, "catalog.edit"), shows_prices=_shows_prices(),
        **pager("console.products", args, page, total, catalog.SKU_PAGE_SIZE),
    )


@bp.post("/products/categories")
@login_required("catalog.edit")
def create_category():
    form = request.form
    try:
        category = catalog.create_category(staff=g.staff, name=form.get("name"), parent_id=form.get("parent_id") or None)
    except DomainError as exc:
        if exc.status == 403:
            raise
        flash(exc.message, "error")
    else:
        flash(f"已新建分类“{category.name}”")
    return redirect(url_for("console.products"))


@bp.post("/products/categories/<int:category_id>/rename")
@login_required("catalog.edit")
def rename_category(category_id):
    try:
        category = catalog.rename_category(staff=g.staff, category_id=category_id, name=request.form.get("name"))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash(f"分类已改名为“{category.name}”")
    return redirect(url_for("console.products"))


def _sku_values(form):
    """Keyword arguments for the SKU services from the form; the price is typed in yuan."""
    values = {name: form.get(name, "") for name in SKU_FORM_FIELDS if name in form}
    if "list_price" in values:
        values["list_price_fen"] = inputs.yuan(values.pop("list_price"), field="list_price_fen", label="目录价")
    if values.get("image_url") == "":
        values["image_url"] = None
    return values


def _sku_form(sku=None, values=None, error=None, status=200):
    if values is None and sku is not None:
        values = {name: getattr(sku, name) for name in SKU_FORM_FIELDS if name != "list_price"}
        values["list_price"] = fen_to_yuan_text(sku.list_price_fen)
        values["image_url"] = sku.image_url or ""
    rules = catalog.visibility_rules(sku.id) if sku is not None else []
    return render_template(
        "console/product_form.html", sku=sku, values=values or {"status": "active", "pack_size": 1, "moq": 1,
                                                                 "step": 1, "low_stock_qty": 20},
        error=error, error_field=error.details.get("field") if error else None, categories=catalog.list_categories(), status_labels=SKU_STATUS_LABELS, rules=rules,
        scope_labels=VISIBILITY_SCOPE_LABELS, effect_labels=VISIBILITY_EFFECT_LABELS,
        can_edit=can(g.staff, "catalog.edit"), shows_prices=_shows_prices(), image_url_of=catalog.image_url_of,
    ), status


@bp.route("/products/new", methods=["GET", "POST"])
@login_required("catalog.edit")
def new_product():
    if request.method == "GET":
        return _sku_form()
    try:
        values = _sku_values(request.form)
        sku = catalog.create_sku(staff=g.staff, **values)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return _sku_form(values=request.form, error=exc, status=exc.status)
    flash(f"已新建商品 {sku.code}")
    return redirect(url_for("console.product", sku_id=sku.id))


@bp.get("/products/<int:sku_id>")
@login_required("catalog.view")
def product(sku_id):
    return _sku_form(catalog.get_sku(staff=g.staff, sku_id=sku_id))


@bp.post("/products/<int:sku_id>")
@login_required("catalog.edit")
def update_product(sku_id):
    sku = catalog.get_sku(staff=g.staff, sku_id=sku_id)
    try:
        values = _sku_values(request.form)
        values.pop("code", None)  # the code identifies the SKU in orders and imports; it stays
        catalog.update_sku(staff=g.staff, sku_id=sku.id, **values)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _sku_form(sku, values={**request.form, "code": sku.code}, error=exc, status=exc.status)
    flash(f"商品 {sku.code} 已保存")
    return redirect(url_for("console.product", sku_id=sku.id))


@bp.post("/products/<int:sku_id>/image")
@login_required("catalog.edit")
def upload_product_image(sku_id):
    sku = catalog.get_sku(staff=g.staff, sku_id=sku_id)
    file = request.files.get("image")
    try:
        if request.form.get("remove"):
            catalog.remove_sku_image(staff=g.staff, sku_id=sku.id)
            flash("已删除上传的图片")
        else:
            catalog.set_sku_image(staff=g.staff, sku_id=sku.id, data=file.read() if file else b"")
            flash("图片已上传")
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _sku_form(sku, error=exc, status=exc.status)
    return redirect(url_for("console.product", sku_id=sku.id))


@bp.post("/products/<int:sku_id>/visibility")
@login_required("catalog.edit")
def save_visibility(sku_id):
    form = request.form
    scopes, targets, effects = form.getlist("scope"), form.getlist("target"), form.getlist("effect")
    if not len(scopes) == len(targets) == len(effects):
        raise DomainError("invalid_form", "可见性规则表单不完整，请刷新页面后重试", 400)
    rules = [{"scope": s, "target": t, "effect": e} for s, t, e in zip(scopes, targets, effects) if t.strip()]
    try:
        catalog.save_visibility_rules(staff=g.staff, sku_id=sku_id, rules=rules)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash("可见范围已保存" if rules else "已清除可见性规则：所有经销商可见")
    return redirect(url_for("console.product", sku_id=sku_id) + "#visibility")
