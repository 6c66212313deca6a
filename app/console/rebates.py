"""Console: rebates (返利) — rules, period closes and finance's approval of rebate documents.
Admin and finance only; every rule lives in `app.rebates.service`, these views read forms."""
from flask import flash, g, redirect, render_template, request, url_for

from app.catalog.models import Category
from app.console.auth import bp, login_required, page_arg, pager
from app.dealers.models import Tier
from app.extensions import db
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.rebates import service as rebates
from app.rebates.models import (
    APPLIES_LABELS,
    BASIS_LABELS,
    DOCUMENT_STATUS_LABELS,
    DOCUMENT_STATUSES,
    LINE_SOURCE_LABELS,
    PERIOD_LABELS,
    SCOPE_LABELS,
)


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
            period = rebates.parse_period(period).key
        except DomainError as exc:
            raise DomainError("invalid_filter", exc.message, 400) from None
    q = args.get("q", "").strip()[:64] or None
    page = page_arg(args)
    rows, total = rebates.list_documents(staff=g.staff, status=None if status == "all" else status, period=period,
                                         q=q, page=page)
    return render_template(
        "console/rebates.html", rows=rows, total=total, status=status, period=period or "", q=q or "",
        status_labels=DOCUMENT_STATUS_LABELS, basis_labels=BASIS_LABELS,
        **pager("console.rebates_list", {**args, "status": status}, page, total, rebates.STAFF_PAGE_SIZE),
    )


@bp.post("/rebates/close")
@login_required("rebates.manage")
def rebates_close():
    period = request.form.get("period", "")
    try:
        result = rebates.close_period(period=period, staff=g.staff)
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
    doc = rebates.get_document_for_staff(staff=g.staff, document_id=document_id)
    return render_template(
        "console/rebate.html", doc=doc, period_label=rebates.parse_period(doc.period).label,
        status_labels=DOCUMENT_STATUS_LABELS, basis_labels=BASIS_LABELS, source_labels=LINE_SOURCE_LABELS,
        entry=rebates.credit_entry(doc.id) if doc.status == "approved" else None,
    )


@bp.post("/rebates/<id:document_id>/approve")
@login_required("rebates.manage")
def rebate_approve(document_id):
    return _decide(document_id, lambda: rebates.approve_document(
        staff=g.staff, document_id=document_id, reason=request.form.get("reason")),
        lambda doc: f"返利单 #{doc.id} 已审核通过，{format_yuan(doc.rebate_fen)} 已计入经销商返利账户并通知经销商")


@bp.post("/rebates/<id:document_id>/reject")
@login_required("rebates.manage")
def rebate_reject(document_id):
    return _decide(document_id, lambda: rebates.reject_document(
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
    return render_template("console/rebate_rules.html", rules=rebates.list_rules(), describe=rebates.describe_rule,
                           scope_labels=SCOPE_LABELS, applies_labels=APPLIES_LABELS)


def _rule_form(*, rule=None, values=None, error_field=None, status=200):
    return render_template(
        "console/rebate_rule_form.html", rule=rule, values=values or {}, error_field=error_field,
        period_labels=PERIOD_LABELS, basis_labels=BASIS_LABELS, scope_labels=SCOPE_LABELS,
        applies_labels=APPLIES_LABELS, max_tiers=rebates.MAX_TIERS,
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
        saved = save(**rebates.rule_args_from_form(request.form))
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
    return _save(lambda **args: rebates.create_rule(staff=g.staff, **args))


@bp.route("/rebates/rules/<id:rule_id>/edit", methods=["GET", "POST"])
@login_required("rebates.manage")
def rebate_rule_edit(rule_id):
    rule = rebates.get_rule(rule_id)
    if request.method == "GET":
        return _rule_form(rule=rule, values=rebates.rule_form_values(rule))
    return _save(lambda **args: rebates.update_rule(staff=g.staff, rule_id=rule_id, **args), rule=rule)
