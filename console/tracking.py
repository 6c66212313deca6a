"""Console: shipment tracking — retrying a failed Kuaidi100 subscription from the order page,
and the brand setting that lets a carrier's 签收 complete the order (`app.tracking`). The
trail itself is shown on the order page (`console/orders.py`)."""
from flask import flash, g, redirect, render_template, request, url_for

from app.kernel.errors import DomainError
from app.tracking import pushes, subscriptions
from console.auth import bp, login_required


@bp.post("/orders/<order_no:order_no>/shipments/<int:shipment_id>/resubscribe")
@login_required("orders.ship")
def resubscribe_tracking(order_no, shipment_id):
    try:
        row = subscriptions.resubscribe(staff=g.staff, order_no=order_no, shipment_id=shipment_id)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash(f"运单 {row.number} 已重新提交快递100 订阅")
    return redirect(url_for("console.order_detail", order_no=order_no))


@bp.route("/settings/delivery-completion", methods=["GET", "POST"])
@login_required("settings.edit")
def delivery_completion_settings():
    if request.method == "POST":
        enabled = pushes.set_delivery_completes_order(enabled=request.form.get("enabled") == "on", actor=g.staff)
        flash("已保存：" + ("快递签收后自动完成订单" if enabled else "快递签收不改变订单状态"))
        return redirect(url_for("console.delivery_completion_settings"))
    return render_template("console/settings_delivery_completion.html",
                           enabled=pushes.get_delivery_completes_order())
