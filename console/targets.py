"""Console: monthly sales targets (销售目标) — the list of a month, the form that sets or removes
one dealer's target, and (through `console.imports`) the Excel import. Staff with
`reports.targets`; the rules are `app.reports.targets`."""
from flask import flash, g, redirect, render_template, request, url_for

from console.auth import bp, login_required
from app.kernel import inputs
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.reports import months, targets


def _page(month, status=200, form=None, error=None):
    return render_template(
        "console/targets.html", month=months.month_text(month), this_month=months.month_text(months.parse_month(None)),
        rows=targets.list_targets(staff=g.staff, month=month), form=form or {}, error=error,
        attainment_rule=targets.ATTAINMENT_RULE,
    ), status


@bp.get("/targets")
@login_required("reports.targets")
def sales_targets():
    return _page(_month_arg(request.args.get("month")))


def _month_arg(value):
    """The page's month: any month (targets are set ahead); 400 when malformed."""
    if not value:
        return months.parse_month(None)
    try:
        return inputs.month(value, field="month", label="月份")
    except DomainError as exc:
        raise DomainError("invalid_month", exc.message, 400, {"month": [exc.message]}) from None


@bp.post("/targets")
@login_required("reports.targets")
def set_sales_target():
    form = request.form
    fields = {"dealer_code": form.get("dealer_code", "").strip()[:32], "month": form.get("month", "").strip()[:16],
              "amount": form.get("amount", "").strip()[:32]}
    shown_month = _month_arg(None)
    try:
        month = inputs.month(fields["month"], field="month", label="月份")
        shown_month = month
        dealer_code = inputs.text(fields["dealer_code"], field="dealer_code", label="经销商编码", max_len=32)
        amount_fen = inputs.yuan(fields["amount"], field="amount", label="目标金额")
        targets.set_sales_target(staff=g.staff, dealer_code=dealer_code, month=month, amount_fen=amount_fen)
    except DomainError as exc:
        if exc.status not in (404, 422):
            raise
        return _page(shown_month, 422 if exc.status == 422 else 404, form=fields, error=exc.message)
    flash(f"已设置 {dealer_code} 在 {months.month_text(month)} 的销售目标：{format_yuan(amount_fen)}")
    return redirect(url_for("console.sales_targets", month=months.month_text(month)))


@bp.post("/targets/remove")
@login_required("reports.targets")
def remove_sales_target():
    month = _month_arg(request.form.get("month", "").strip()[:16])
    dealer_code = request.form.get("dealer_code", "").strip()[:32]
    targets.remove_sales_target(staff=g.staff, dealer_code=dealer_code, month=month)
    flash(f"已删除 {dealer_code} 在 {months.month_text(month)} 的销售目标")
    return redirect(url_for("console.sales_targets", month=months.month_text(month)))

