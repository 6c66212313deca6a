"""Console: price lists and their items (admin and finance edit, sales read), and "what does
dealer X pay for SKU Y today, and why" through the mini-program's pricing service."""
from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from app.catalog.models import Sku
from console.auth import bp, login_required
from app.extensions import db
from app.kernel import inputs
from app.kernel.errors import DomainError, NotFound
from app.kernel.money import fen_to_yuan_text
from app.kernel.permissions import can
from app.pricing import price_lists as pricing
from app.pricing import explain
from app.pricing.service import Buyer


def _tiers_and_dealers():
    from app.dealers.models import Dealer, Tier
    from app.dealers.access import scope_to_staff

    tiers = db.session.execute(select(Tier).order_by(Tier.rank)).scalars().all()
    dealers = db.session.execute(scope_to_staff(select(Dealer).order_by(Dealer.code), g.staff)).scalars().all()
    return tiers, dealers


@bp.get("/prices")
@login_required("prices.view")
def prices():
    kind = request.args.get("kind") or None
    if kind is not None and kind not in pricing.KIND_LABELS:
        raise DomainError("invalid_filter", "价目表类型参数有误", 400)
    tiers, dealers = _tiers_and_dealers()
    return render_template(
        "console/prices.html", rows=pricing.list_price_lists(staff=g.staff, kind=kind), kind=kind,
        kind_labels=pricing.KIND_LABELS, can_edit=can(g.staff, "prices.edit"), tiers=tiers, dealers=dealers,
        status_of=pricing.validity_status, values={}, error=None,
    )


@bp.post("/prices")
@login_required("prices.edit")
def create_price_list():
    form = request.form
    try:
        price_list = pricing.save_price_list(
            staff=g.staff, name=form.get("name"), kind=form.get("kind"), tier_code=form.get("tier_code"),
            dealer_code=form.get("dealer_code"), valid_from=form.get("valid_from"), valid_to=form.get("valid_to") or None,
        )
    except DomainError as exc:
        if exc.status == 403:
            raise
        tiers, dealers = _tiers_and_dealers()
        return render_template(
            "console/prices.html", rows=pricing.list_price_lists(staff=g.staff), kind=None,
            kind_labels=pricing.KIND_LABELS, can_edit=True, tiers=tiers, dealers=dealers,
            status_of=pricing.validity_status, values=form, error=exc,
        ), exc.status
    flash(f"已新建价目表“{price_list.name}”，现在可以添加商品价格")
    return redirect(url_for("console.price_list", price_list_id=price_list.id))


def _price_list_page(price_list, *, error=None, values=None, status=200):
    from app.dealers.models import Dealer, Tier

    target = (db.session.get(Tier, price_list.tier_id).name if price_list.kind == "tier"
              else "{0.code} {0.name}".format(db.session.get(Dealer, price_list.dealer_id)))
    return render_template(
        "console/price_list.html", pl=price_list, target=target, items=pricing.price_list_items(price_list.id),
        kind_labels=pricing.KIND_LABELS, status=pricing.validity_status(price_list),
        can_edit=can(g.staff, "prices.edit"), error=error, values=values or {},
        yuan_text=fen_to_yuan_text,
    ), status


@bp.get("/prices/<int:price_list_id>")
@login_required("prices.view")
def price_list(price_list_id):
    return _price_list_page(pricing.get_price_list(staff=g.staff, price_list_id=price_list_id))


@bp.post("/prices/<int:price_list_id>")
@login_required("prices.edit")
def save_price_list(price_list_id):
    form = request.form
    price_list = pricing.get_price_list(staff=g.staff, price_list_id=price_list_id)
    try:
        pricing.save_price_list(staff=g.staff, price_list_id=price_list.id, name=form.get("name"),
                                valid_from=form.get("valid_from"), valid_to=form.get("valid_to") or None)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        db.session.expire_all()
        return _price_list_page(price_list, error=exc, values=form, status=exc.status)
    flash("价目表已保存")
    return redirect(url_for("console.price_list", price_list_id=price_list.id))


@bp.post("/prices/<int:price_list_id>/items")
@login_required("prices.edit")
def set_price(price_list_id):
    form = request.form
    price_list = pricing.get_price_list(staff=g.staff, price_list_id=price_list_id)
    try:
        price_fen = inputs.yuan(form.get("price", ""), field="price_fen", label="价格")
        pricing.set_price(staff=g.staff, price_list_id=price_list.id, sku_code=form.get("sku_code"), price_fen=price_fen)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _price_list_page(price_list, error=exc, values=form, status=exc.status)
    flash(f"已设置 {form.get('sku_code', '').strip()} 的价格")
    return redirect(url_for("console.price_list", price_list_id=price_list.id))


@bp.post("/prices/<int:price_list_id>/items/<int:sku_id>/delete")
@login_required("prices.edit")
def delete_price(price_list_id, sku_id):
    price_list = pricing.get_price_list(staff=g.staff, price_list_id=price_list_id)
    pricing.delete_price(staff=g.staff, price_list_id=price_list.id, sku_id=sku_id)
    flash("已从价目表中删除该商品，经销商将按下一个适用的价格购买")
    return redirect(url_for("console.price_list", price_list_id=price_list.id))


@bp.get("/prices/explain")
@login_required("prices.view")
def explain_price():
    """?dealer=<code>&sku=<code or id>[&date=YYYY-MM-DD]: the price and every reason behind it.
    With &order=<order no> (the order page's link), first what that order's line recorded when
    it was placed — the list, its name and version then — and only then today's account."""
    from app.dealers.models import Dealer
    from app.dealers.access import scope_to_staff

    args = request.args
    dealer_code, sku_ref = args.get("dealer", "").strip()[:32], args.get("sku", "").strip()[:32]
    on, order_no = args.get("date", "").strip(), args.get("order", "").strip()[:20]
    result = dealer = sku = None
    placed = _placed_line(order_no, sku_ref) if order_no and sku_ref else None
    if placed is not None:
        dealer_code = placed["dealer"].code
    if dealer_code and sku_ref:
        try:
            day = inputs.day(on, field="date", label="日期", required=False)
        except DomainError as exc:
            raise DomainError("invalid_filter", exc.message, 400) from None
        # A rep asks only about their own dealers; anyone else's is as unknown as a missing one.
        dealer = db.session.execute(
            scope_to_staff(select(Dealer).where(func.upper(Dealer.code) == dealer_code.upper()), g.staff)
        ).scalar_one_or_none()
        if dealer is None:
            raise NotFound(f"经销商 {dealer_code} 不存在", "dealer_not_found")
        by_id = sku_ref.isascii() and sku_ref.isdigit() and len(sku_ref) <= 15
        sku = db.session.execute(select(Sku).where(
            Sku.id == int(sku_ref) if by_id else func.upper(Sku.code) == sku_ref.upper())).scalar_one_or_none()
        if sku is None:
            raise NotFound(f"商品 {sku_ref} 不存在", "sku_not_found")
        result = explain.explain_price(db.session, Buyer.of(dealer), sku.id, day)
    return render_template("console/price_explain.html", dealer_code=dealer_code, sku_ref=sku_ref, date=on,
                           dealer=dealer, sku=sku, result=result, kind_labels=pricing.KIND_LABELS, placed=placed)


def _placed_line(order_no, sku_ref):
    """{order, dealer, line, basis, now} for the line of `sku_ref` (code or id) in an order the
    staff member may see (another rep's order is as unknown as a missing one: 404)."""
    from app.orders.staff_views import get_order_for_staff

    detail = get_order_for_staff(staff=g.staff, order_no=order_no.upper())
    ref = sku_ref.upper()
    line = next((line for line in detail.order.lines if line.sku_code.upper() == ref or str(line.sku_id) == ref), None)
    if line is None:
        raise NotFound(f"订单 {detail.order.order_no} 中没有商品 {sku_ref}", "order_line_not_found")
    basis = explain.line_basis(line)
    return {"order": detail.order, "dealer": detail.dealer, "line": line, "basis": basis,
            "now": explain.list_now(db.session, basis)}
