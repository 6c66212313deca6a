"""Console: returns (after-sales). Everyone who handles them sees the list and the detail
with photos, receipts and refunds; admin and sales (own dealers) approve or reject;
warehouse and admin receive the goods back (all or part of them, into a chosen warehouse);
admin, warehouse and sales close a return whose remaining goods will not come; finance and
admin retry a failed refund."""
from flask import flash, g, redirect, render_template, request, url_for

from console.auth import bp, login_required, page_arg, pager
from app.funds import refunds as refunding
from app.funds.models import REFUND_METHOD_LABELS, REFUND_STATUS_LABELS
from app.kernel.errors import DomainError
from app.kernel.permissions import can
from app.orders.models import PAYMENT_METHOD_LABELS
from app.returns import service as returns
from app.returns.models import (
    REFUND_LABELS,
    REFUND_STATUSES,
    RETURN_STATUSES,
    STATUS_LABELS,
)
from app.storage.service import url_for as upload_url


@bp.get("/returns")
@login_required("returns.view")
def returns_list():
    args = request.args
    status = args.get("status") or None
    if status and status not in RETURN_STATUSES:
        raise DomainError("invalid_filter", "状态参数有误", 400)
    refund_status = args.get("refund_status") or None
    if refund_status and refund_status not in REFUND_STATUSES:
        raise DomainError("invalid_filter", "退款状态参数有误", 400)
    page = page_arg(args)
    q = args.get("q", "").strip()[:64] or None
    rows, total = returns.list_returns_for_staff(staff=g.staff, status=status, refund_status=refund_status, q=q,
                                                 page=page)
    return render_template(
        "console/returns.html", rows=rows, total=total, status=status, refund_status=refund_status, q=q or "",
        status_labels=STATUS_LABELS, refund_labels=REFUND_LABELS,
        failed_count=returns.count_failed_refunds(staff=g.staff),
        **pager("console.returns_list", args, page, total, returns.STAFF_PAGE_SIZE),
    )


@bp.get("/returns/<id:return_id>")
@login_required("returns.view")
def return_detail(return_id):
    ret = returns.get_return_for_staff(staff=g.staff, return_id=return_id)
    photos = [(p.upload, upload_url(p.upload)) for p in ret.photos]
    may_receive = ret.status in ("approved", "receiving") and can(g.staff, "returns.receive")
    return render_template(
        "console/return.html", ret=ret, photos=photos, status_labels=STATUS_LABELS, refund_labels=REFUND_LABELS,
        refund_method_labels=REFUND_METHOD_LABELS, refund_status_labels=REFUND_STATUS_LABELS,
        shipped={line.id: line.shipped_qty for line in ret.order.lines},
        lines_by_id={line.id: line for line in ret.lines}, payment_method_labels=PAYMENT_METHOD_LABELS,
        received_fen=sum(receipt.amount_fen for receipt in ret.receipts),
        warehouses=returns.list_warehouses() if may_receive else [],
        shipped_from=returns.shipped_from(ret) if may_receive else None,
        may_decide=can(g.staff, "returns.decide"), may_receive=can(g.staff, "returns.receive"),
        may_close=can(g.staff, "returns.close"), may_retry=can(g.staff, "refunds.retry"),
    )


@bp.post("/returns/<id:return_id>/approve")
@login_required("returns.decide")
def return_approve(return_id):
    return _act(return_id, lambda: returns.approve_return(
        staff=g.staff, return_id=return_id, reason=request.form.get("reason", "")), "已同意退货，已通知经销商")


@bp.post("/returns/<id:return_id>/reject")
@login_required("returns.decide")
def return_reject(return_id):
    return _act(return_id, lambda: returns.reject_return(
        staff=g.staff, return_id=return_id, reason=request.form.get("reason", "")), "已拒绝退货，已通知经销商")


@bp.post("/returns/<id:return_id>/receive")
@login_required("returns.receive")
def return_receive(return_id):
    form = request.form
    warehouse_id = _small_int(form.get("warehouse_id", "")) or 0
    # qty_<return line id> per line (blank: none of it); no such fields: everything outstanding.
    quantities = None
    fields = [(key, value) for key, value in form.items() if key.startswith("qty_")]
    if fields:
        quantities = {}
        for key, value in fields:
            line_id = _small_int(key[4:])
            if line_id is not None:
                quantities[line_id] = 0 if not value.strip() else _small_int(value.strip(), invalid=-1)

    def receive():
        ret, receipt, _made = returns.receive_return(staff=g.staff, return_id=return_id, warehouse_id=warehouse_id,
                                                     quantities=quantities)
        return ret

    return _act(return_id, receive, "退货已入库，库存已增加；按实收数量退款")


@bp.post("/returns/<id:return_id>/close")
@login_required("returns.close")
def return_close(return_id):
    return _act(return_id, lambda: returns.close_return(
        staff=g.staff, return_id=return_id, reason=request.form.get("reason", "")), "已结束，按实收货物退款")


@bp.post("/returns/<id:return_id>/refunds/<id:refund_id>/retry")
@login_required("refunds.retry")
def refund_retry(return_id, refund_id):
    def retry():
        refunding.retry_refund(staff=g.staff, refund_id=refund_id, return_id=return_id)
        return returns.get_return_for_staff(staff=g.staff, return_id=return_id)

    return _act(return_id, retry, "已重新发起退款")


def _small_int(text, invalid=None):
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else invalid


def _act(return_id, action, done_message):
    try:
        ret = action()
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        problems = [p["message"] for p in (exc.details or {}).get("problems", []) if p.get("message")]
        flash("；".join([exc.message, *problems]), "error")
    else:
        flash(f"退货单 {ret.return_no}：{done_message}")
    return redirect(url_for("console.return_detail", return_id=return_id))
