"""Console: finance (admin, finance) — offline transfers to confirm or reject, every payment,
and one dealer's accounts with its ledger and manual adjustments. The rules live in
`app.funds.offline` and `app.funds.accounts`; these views read the form and call them."""
from flask import flash, g, redirect, render_template, request, url_for

from console.auth import bp, day_arg, id_arg, login_required, page_arg, pager
from app.funds import accounts, offline
from app.funds.models import (
    ACCOUNT_LABELS,
    OFFLINE_STATUS_LABELS,
    OFFLINE_STATUSES,
    PAYMENT_METHOD_LABELS,
)
from app.kernel.errors import DomainError
from app.kernel.money import parse_yuan
from app.storage.service import url_for as upload_url


def _filters(args):
    """The list pages' shared filters: dealer id, text, China-date range."""
    day_from, day_to = day_arg(args.get("from"), "开始日期"), day_arg(args.get("to"), "结束日期")
    return {
        "dealer_id": id_arg(args.get("dealer", ""), "经销商"), "q": args.get("q", "").strip()[:64] or None,
        "day_from": day_from, "day_to": day_to,
    }


# --- offline transfers ------------------------------------------------------------------------

@bp.get("/finance/offline")
@login_required("payments.manage")
def finance_offline():
    args = request.args
    # Pending first: that is the work. "all" lists every status.
    status = args.get("status") or "pending"
    if status != "all" and status not in OFFLINE_STATUSES:
        raise DomainError("invalid_filter", "状态参数有误", 400)
    page = page_arg(args)
    filters = _filters(args)
    rows, total = offline.list_offline_for_staff(
        staff=g.staff, status=None if status == "all" else status, page=page, **filters)
    return render_template(
        "console/finance_offline.html", rows=rows, total=total, status=status, filters=filters, args=args,
        status_labels=OFFLINE_STATUS_LABELS,
        **pager("console.finance_offline", args, page, total, offline.STAFF_PAGE_SIZE),
    )


def _offline_page(payment_id, status=200, typed=None):
    record = offline.get_offline_for_staff(staff=g.staff, payment_id=payment_id)
    order = record.order
    return render_template(
        "console/finance_offline_detail.html", r=record, order=order, voucher_url=upload_url(record.voucher),
        payment=offline.payment_of(record), status_labels=OFFLINE_STATUS_LABELS, typed=typed or {},
        owed_fen=(order.total_fen - order.paid_fen) if order is not None else None,
    ), status


@bp.get("/finance/offline/<id:payment_id>")
@login_required("payments.manage")
def finance_offline_detail(payment_id):
    return _offline_page(payment_id)


@bp.post("/finance/offline/<id:payment_id>/confirm")
@login_required("payments.manage")
def finance_offline_confirm(payment_id):
    form = request.form
    try:
        received = form.get("received", "").strip()
        try:
            received_fen = parse_yuan(received) if received else None
        except ValueError as exc:
            raise DomainError("invalid_field", f"实收金额：{exc}", 422, {"field": "received"}) from None
        record, payment = offline.confirm_offline_payment(
            staff=g.staff, payment_id=payment_id, received_fen=received_fen, note=form.get("note", ""),
        )
    except DomainError as exc:
        return _refused(payment_id, exc)
    target = f"订单 {record.order.order_no}" if record.order_id else "预付款"
    flash(f"已确认到账（{target}），付款记录 #{payment.id} 已入账，已通知经销商")
    return redirect(url_for("console.finance_offline_detail", payment_id=payment_id))


@bp.post("/finance/offline/<id:payment_id>/reject")
@login_required("payments.manage")
def finance_offline_reject(payment_id):
    try:
        offline.reject_offline_payment(staff=g.staff, payment_id=payment_id, reason=request.form.get("reason", ""))
    except DomainError as exc:
        return _refused(payment_id, exc)
    flash("已驳回，已通知经销商（未入账）")
    return redirect(url_for("console.finance_offline_detail", payment_id=payment_id))


def _refused(payment_id, exc):
    """A refused decision answers its 4xx with the page and the reason; 403/404 go to the error handler."""
    if exc.status in (403, 404):
        raise exc
    flash(exc.message, "error")
    return _offline_page(payment_id, exc.status, typed=dict(request.form))


# --- all payments ------------------------------------------------------------------------------

@bp.get("/finance/payments")
@login_required("payments.manage")
def finance_payments():
    args = request.args
    method = args.get("method") or None
    page = page_arg(args)
    filters = _filters(args)
    rows, total, sums = accounts.list_payments_for_staff(staff=g.staff, method=method, page=page, **filters)
    return render_template(
        "console/finance_payments.html", rows=rows, total=total, sums=sums, method=method, filters=filters,
        args=args, method_labels=PAYMENT_METHOD_LABELS,
        **pager("console.finance_payments", args, page, total, offline.STAFF_PAGE_SIZE),
    )


# --- one dealer's accounts ---------------------------------------------------------------------

def _account_page(dealer_id, status=200, typed=None):
    args = request.args
    account = args.get("account") or None
    page = page_arg(args)
    data = accounts.dealer_account(staff=g.staff, dealer_id=dealer_id, account=account, page=page)
    return render_template(
        "console/finance_account.html", **data, account=account, account_labels=ACCOUNT_LABELS, typed=typed or {},
        **pager("console.finance_account", args, page, data["total"], accounts.LEDGER_PAGE_SIZE, dealer_id=dealer_id),
    ), status


@bp.get("/finance/accounts/<id:dealer_id>")
@login_required("payments.manage")
def finance_account(dealer_id):
    return _account_page(dealer_id)


@bp.post("/finance/accounts/<id:dealer_id>/adjust")
@login_required("payments.manage")
def finance_adjust(dealer_id):
    form = request.form
    try:
        try:
            amount_fen = parse_yuan(form.get("amount", ""), allow_negative=True)
        except ValueError as exc:
            raise DomainError("invalid_field", f"调整金额：{exc}", 422, {"field": "amount"}) from None
        entry = accounts.adjust_balance(
            staff=g.staff, dealer_id=dealer_id, account=form.get("account", ""), amount_fen=amount_fen,
            reason=form.get("reason", ""),
        )
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
        return _account_page(dealer_id, exc.status, typed=dict(form))
    from app.kernel.money import format_yuan

    flash(f"已调整{ACCOUNT_LABELS[entry['account']]} {format_yuan(entry['amount_fen'])}，"
          f"调整后余额 {format_yuan(entry['balance_after_fen'])}")
    return redirect(url_for("console.finance_account", dealer_id=dealer_id))
