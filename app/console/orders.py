"""Console: order approval through the order service."""
from flask import flash, g, redirect, render_template, request, url_for

from app.console.auth import bp, login_required
from app.errors import DomainError
from app.orders import service as orders


# --- approvals -----------------------------------------------------------------------

@bp.get("/orders/pending")
@login_required(*orders.APPROVER_ROLES)
def pending_orders():
    rows = orders.list_pending_for_staff(staff=g.staff)
    return render_template("console/pending.html", rows=rows)


@bp.post("/orders/<order_no:order_no>/approve")
@login_required(*orders.APPROVER_ROLES)
def approve(order_no):
    return _decide(lambda: orders.approve_order(staff=g.staff, order_no=order_no), f"订单 {order_no} 已审批通过")


@bp.post("/orders/<order_no:order_no>/reject")
@login_required(*orders.APPROVER_ROLES)
def reject(order_no):
    reason = request.form.get("reason", "").strip()[:200]
    return _decide(
        lambda: orders.reject_order(staff=g.staff, order_no=order_no, reason=reason),
        f"订单 {order_no} 已驳回，库存和信用额度已释放",
    )


def _decide(action, done_message):
    try:
        action()
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(done_message)
    return redirect(url_for("console.pending_orders"))


