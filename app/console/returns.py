"""Console: returns (after-sales). Everyone who handles them sees the list and the detail
with photos; admin and sales (own dealers) approve or reject; warehouse and admin receive
the goods back into a chosen warehouse."""
from flask import flash, g, redirect, render_template, request, url_for

from app.console.auth import bp, login_required, page_arg, pager
from app.errors import DomainError
from app.returns import service as returns
from app.returns.models import REFUND_LABELS, RETURN_STATUSES, STATUS_LABELS
from app.storage.service import url_for as upload_url


@bp.get("/returns")
@login_required(*returns.VIEWER_ROLES)
def returns_list():
    args = request.args
    status = args.get("status") or None
    if status and status not in RETURN_STATUSES:
        raise DomainError("invalid_filter", "状态参数有误", 400)
    page = page_arg(args)
    q = args.get("q", "").strip()[:64] or None
    rows, total = returns.list_returns_for_staff(staff=g.staff, status=status, q=q, page=page)
    return render_template(
        "console/returns.html", rows=rows, total=total, status=status, q=q or "",
        status_labels=STATUS_LABELS, refund_labels=REFUND_LABELS,
        **pager("console.returns_list", args, page, total, returns.STAFF_PAGE_SIZE),
    )


@bp.get("/returns/<id:return_id>")
@login_required(*returns.VIEWER_ROLES)
def return_detail(return_id):
    ret = returns.get_return_for_staff(staff=g.staff, return_id=return_id)
    photos = [(p.upload, upload_url(p.upload)) for p in ret.photos]
    may_receive = ret.status == "approved" and g.staff.role in returns.RECEIVER_ROLES
    return render_template(
        "console/return.html", ret=ret, photos=photos, status_labels=STATUS_LABELS, refund_labels=REFUND_LABELS,
        shipped={line.id: line.shipped_qty for line in ret.order.lines},
        warehouses=returns.list_warehouses() if may_receive else [],
        shipped_from=returns.shipped_from(ret) if may_receive else None,
        may_decide=g.staff.role in returns.DECIDER_ROLES, may_receive=g.staff.role in returns.RECEIVER_ROLES,
    )


@bp.post("/returns/<id:return_id>/approve")
@login_required(*returns.DECIDER_ROLES)
def return_approve(return_id):
    return _act(return_id, lambda: returns.approve_return(
        staff=g.staff, return_id=return_id, reason=request.form.get("reason", "")), "已同意退货，已通知经销商")


@bp.post("/returns/<id:return_id>/reject")
@login_required(*returns.DECIDER_ROLES)
def return_reject(return_id):
    return _act(return_id, lambda: returns.reject_return(
        staff=g.staff, return_id=return_id, reason=request.form.get("reason", "")), "已拒绝退货，已通知经销商")


@bp.post("/returns/<id:return_id>/receive")
@login_required(*returns.RECEIVER_ROLES)
def return_receive(return_id):
    raw = request.form.get("warehouse_id", "")
    warehouse_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 15 else 0
    return _act(return_id, lambda: returns.receive_return(staff=g.staff, return_id=return_id, warehouse_id=warehouse_id),
                "退货已入库，库存已增加；应退金额记为待退款")


def _act(return_id, action, done_message):
    try:
        ret = action()
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash(f"退货单 {ret.return_no}：{done_message}")
    return redirect(url_for("console.return_detail", return_id=return_id))
