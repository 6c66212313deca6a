"""Console: rebates (返利) — rules, period closes and finance's approval of rebate documents.
Admin and finance only; every rule lives in `app.rebates` (`closing`, `documents`, `rules`); these
views read the forms (a rule's form: `rule_args_from_form`) and call it."""
import re
import unicodedata

from flask import flash, g, redirect, render_template, request, url_for

from app.catalog.models import Category, Sku
from console.auth import bp, login_required, page_arg, pager
from app.dealers.models import Dealer, Tier
from app.extensions import db
from app.kernel import inputs
from app.kernel.errors import DomainError
from app.kernel.money import fen_to_yuan_text, format_yuan, percent_text
from app.rebates import closing, documents, rules
from app.rebates.models import (
    APPLIES_LABELS,
    BASIS_LABELS,
    DOCUMENT_STATUS_LABELS,
    DOCUMENT_STATUSES,
    LINE_SOURCE_LABELS,
    PERIOD_LABELS,
    SCOPE_LABELS,
)
from app.rebates.periods import parse_period


@bp.get("/rebates")
@login_required("rebates.manage")
def rebates_list():
    args = request.args
    # Drafts by default (what finance has to do); "all" lists every status.
    status = args.get("status") or "draft"
    if status != "all" and status not in DOCUMENT_STATUSES:
        raise DomainError("invalid_filter", "状态参数有误", 400)
    period = args.get("period", "").strip()[:12] or None
    if period:
        try:
            period = parse_period(period).key
        except DomainError as exc:
            raise DomainError("invalid_filter", exc.message, 400) from None
    q = args.get("q", "").strip()[:64] or None
    page = page_arg(args)
    rows, total = documents.list_documents(staff=g.staff, status=None if status == "all" else status, period=period,
                                         q=q, page=page)
    return render_template(
        "console/rebates.html", rows=rows, total=total, status=status, period=period or "", q=q or "",
        status_labels=DOCUMENT_STATUS_LABELS, basis_labels=BASIS_LABELS,
        **pager("console.rebates_list", {**args, "status": status}, page, total, documents.STAFF_PAGE_SIZE),
    )


@bp.post("/rebates/close")
@login_required("rebates.manage")
def rebates_close():
    period = request.form.get("period", "")
    try:
        result = closing.close_period(period=period, staff=g.staff)
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise
        flash(exc.message, "error")
        return redirect(url_for("console.rebates_list"))
    if not result["rules"]:
        flash(f"{result['label']}：没有适用于该期间的启用返利规则", "error")
    for rule in result["rules"]:
        flash(f"{result['label']} · {rule['name']}：新生成 {rule['created']} 张，重新计算 {rule['recomputed']} 张，"
              f"删除 {rule['removed']} 张，已审核未变 {rule['final']} 张")
    return redirect(url_for("console.rebates_list", period=result["period"], status="draft"))


@bp.get("/rebates/<id:document_id>")
@login_required("rebates.manage")
def rebate_detail(document_id):
    doc = documents.get_document_for_staff(staff=g.staff, document_id=document_id)
    return render_template(
        "console/rebate.html", doc=doc, period_label=parse_period(doc.period).label,
        status_labels=DOCUMENT_STATUS_LABELS, basis_labels=BASIS_LABELS, source_labels=LINE_SOURCE_LABELS,
        entry=documents.credit_entry(doc.id) if doc.status == "approved" else None,
    )


@bp.post("/rebates/<id:document_id>/approve")
@login_required("rebates.manage")
def rebate_approve(document_id):
    return _decide(document_id, lambda: documents.approve_document(
        staff=g.staff, document_id=document_id, reason=request.form.get("reason")),
        lambda doc: f"返利单 #{doc.id} 已审核通过，{format_yuan(doc.rebate_fen)} 已计入经销商返利账户并通知经销商")


@bp.post("/rebates/<id:document_id>/reject")
@login_required("rebates.manage")
def rebate_reject(document_id):
    return _decide(document_id, lambda: documents.reject_document(
        staff=g.staff, document_id=document_id, reason=request.form.get("reason")),
        lambda doc: f"返利单 #{doc.id} 已驳回")


def _decide(document_id, action, done):
    try:
        doc = action()
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise
        flash(exc.message, "error")
    else:
        flash(done(doc))
    return redirect(url_for("console.rebate_detail", document_id=document_id))


# --- rules -----------------------------------------------------------------------------------

@bp.get("/rebates/rules")
@login_required("rebates.manage")
def rebate_rules():
    return render_template("console/rebate_rules.html", rules=rules.list_rules(), describe=rules.describe_rule,
                           scope_labels=SCOPE_LABELS, applies_labels=APPLIES_LABELS)


def _rule_form(*, rule=None, values=None, error_field=None, status=200):
    return render_template(
        "console/rebate_rule_form.html", rule=rule, values=values or {}, error_field=error_field,
        period_labels=PERIOD_LABELS, basis_labels=BASIS_LABELS, scope_labels=SCOPE_LABELS,
        applies_labels=APPLIES_LABELS, max_tiers=rules.MAX_TIERS,
        categories=db.session.execute(db.select(Category).order_by(Category.sort, Category.id)).scalars().all(),
        tiers=db.session.execute(db.select(Tier).order_by(Tier.rank)).scalars().all(),
    ), status


def _form_values():
    values = {key: request.form.get(key, "") for key in request.form}
    values["category_ids"] = request.form.getlist("category_ids")
    values["tier_ids"] = request.form.getlist("tier_ids")
    values["active"] = request.form.get("active") == "1"
    return values


def _save(save, rule=None):
    try:
        saved = save(**rule_args_from_form(request.form))
    except DomainError as exc:
        if exc.status != 422:
            raise
        flash(exc.message, "error")
        return _rule_form(rule=rule, values=_form_values(), error_field=exc.details.get("field"), status=422)
    flash(f"已保存返利规则「{saved.name}」")
    return redirect(url_for("console.rebate_rules"))


@bp.route("/rebates/rules/new", methods=["GET", "POST"])
@login_required("rebates.manage")
def rebate_rule_new():
    if request.method == "GET":
        return _rule_form(values={"active": True, "period_kind": "quarter", "basis": "shipped", "scope": "all",
                                  "applies_to": "all"})
    return _save(lambda **args: rules.create_rule(staff=g.staff, **args))


@bp.route("/rebates/rules/<id:rule_id>/edit", methods=["GET", "POST"])
@login_required("rebates.manage")
def rebate_rule_edit(rule_id):
    rule = rules.get_rule(rule_id)
    if request.method == "GET":
        return _rule_form(rule=rule, values=rule_form_values(rule))
    return _save(lambda **args: rules.update_rule(staff=g.staff, rule_id=rule_id, **args), rule=rule)


# --- a rule's form: what a clerk types (amounts in yuan, rates in %) ---------------------------

def _codes(value):
    return [c for c in re.split(r"[\s,，、;；]+", unicodedata.normalize("NFKC", value or "")) if c]


def rule_args_from_form(form):
    """A console form's text (amounts in yuan, rates in %) → `create_rule`/`update_rule`
    keyword arguments. 422 `invalid_field` naming the field for anything malformed."""
    tiers = []
    for n in range(1, rules.MAX_TIERS + 1):
        threshold, rate = (form.get(f"tier_threshold_{n}") or "").strip(), (form.get(f"tier_rate_{n}") or "").strip()
        if not threshold and not rate:
            continue
        if not threshold or not rate:
            raise inputs.invalid(f"tier_{n}", f"第 {n} 档请同时填写门槛金额和返利比例")
        tiers.append((inputs.yuan(threshold, field=f"tier_{n}", label=f"第 {n} 档门槛"),
                      inputs.percent_bp(rate, field=f"tier_{n}", label=f"第 {n} 档返利比例")))
    growth = None
    if any((form.get(k) or "").strip() for k in ("growth_threshold", "growth_rate", "growth_min_last_year")):
        if not all((form.get(k) or "").strip() for k in ("growth_threshold", "growth_rate", "growth_min_last_year")):
            raise inputs.invalid("growth", "增长返利请同时填写增长率门槛、额外返利比例和去年同期最低金额（或全部留空）")
        growth = (inputs.percent_bp(form["growth_threshold"], field="growth", label="增长率门槛", allow_zero=True),
                  inputs.percent_bp(form["growth_rate"], field="growth", label="额外返利比例"),
                  inputs.yuan(form["growth_min_last_year"], field="growth", label="去年同期最低金额"))

    def ids(name):
        values = form.getlist(name) if hasattr(form, "getlist") else form.get(name) or []
        return [inputs.integer(v, field=name, label="选项", minimum=1, maximum=10**15)
                for v in values if str(v).strip()]

    return {
        "name": form.get("name"), "period_kind": form.get("period_kind"), "basis": form.get("basis"),
        "scope": form.get("scope") or "all", "category_ids": ids("category_ids"),
        "sku_codes": _codes(form.get("sku_codes")), "applies_to": form.get("applies_to") or "all",
        "tier_ids": ids("tier_ids"), "dealer_codes": _codes(form.get("dealer_codes")),
        "valid_from": form.get("valid_from"), "valid_to": form.get("valid_to") or None,
        "tiers": tiers, "growth": growth, "active": form.get("active") in ("1", "on", "true", True),
    }


def rule_form_values(rule):
    """A rule as its console form shows it (amounts in yuan, rates in %)."""
    def yuan(fen):
        return fen_to_yuan_text(fen, trim=True)

    pct = percent_text

    values = {
        "name": rule.name, "period_kind": rule.period_kind, "basis": rule.basis, "scope": rule.scope,
        "applies_to": rule.applies_to, "valid_from": rule.valid_from.isoformat(),
        "valid_to": rule.valid_to.isoformat() if rule.valid_to else "", "active": rule.active,
        "category_ids": [str(i) for i in rule.target_ids("category")],
        "tier_ids": [str(i) for i in rule.target_ids("tier")],
        "sku_codes": " ".join(db.session.execute(
            db.select(Sku.code).where(Sku.id.in_(rule.target_ids("sku"))).order_by(Sku.code)).scalars()),
        "dealer_codes": " ".join(db.session.execute(
            db.select(Dealer.code).where(Dealer.id.in_(rule.target_ids("dealer"))).order_by(Dealer.code)).scalars()),
    }
    for n, tier in enumerate(sorted(rule.tiers, key=lambda t: t.threshold_fen), start=1):
        values[f"tier_threshold_{n}"], values[f"tier_rate_{n}"] = yuan(tier.threshold_fen), pct(tier.rate_bp)
    if rule.growth_rate_bp is not None:
        values.update(growth_threshold=pct(rule.growth_threshold_bp or 0), growth_rate=pct(rule.growth_rate_bp),
                      growth_min_last_year=yuan(rule.growth_min_last_year_fen or 0))
    return values
