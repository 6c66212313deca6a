"""员工账号: every staff account, whether it is locked after repeated wrong passwords, and
the admin's unlock. (Creating accounts, roles and passwords are still `flask staff ...`.)"""
from flask import flash, g, redirect, render_template, url_for

from console.auth import bp, login_required
from app.kernel.clock import utcnow
from app.staff import service as staff_service


@bp.get("/staff")
@login_required("staff.manage")
def staff_list():
    now = utcnow()
    accounts = staff_service.list_staff()
    return render_template("console/staff.html", accounts=accounts,
                           locked={s.id for s in accounts if staff_service.is_locked(s, now)})


@bp.post("/staff/<int:staff_id>/unlock")
@login_required("staff.manage")
def staff_unlock(staff_id):
    target = staff_service.unlock_staff(staff=g.staff, staff_id=staff_id)
    flash(f"已解锁{target.name}（{target.username}）的账号")
    return redirect(url_for("console.staff_list"))
