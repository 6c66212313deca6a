"""员工账号: every staff account and what an admin does to one — create it, change its name,
phone and WeCom UserID, change its role, reset its password, deactivate or reactivate it, and
unlock it after repeated wrong passwords. Views parse the form and render; the rules, the
guards (not oneself, not the last admin), permission checks and audit are
`app.staff.accounts` and `app.staff.service`. `flask staff create` remains for the very first
admin, before anyone can sign in."""
from flask import flash, g, redirect, render_template, request, url_for

from console.auth import bp, form_text, login_required, remember_password, shown_on_form
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.kernel.permissions import ROLE_LABELS
from app.staff import accounts
from app.staff import service as staff_service

PROFILE_FIELDS = ("name", "wecom_userid", "phone")


def _list_page(status=200, error=None, form=None):
    now = utcnow()
    listed = staff_service.list_staff()
    return render_template("console/staff.html", accounts=listed, error=error, form=form or {"role": "sales"},
                           roles=ROLE_LABELS, min_password=staff_service.MIN_PASSWORD_LENGTH,
                           locked={s.id for s in listed if staff_service.is_locked(s, now)}), status


@bp.get("/staff")
@login_required("staff.manage")
def staff_list():
    return _list_page()


@bp.post("/staff")
@login_required("staff.manage")
def staff_create():
    form = form_text("username", "name", "role", "wecom_userid", "phone")
    try:
        target = accounts.create_account(staff=g.staff, password=request.form.get("password", ""), **form)
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _list_page(exc.status, exc.message, form)
    flash(f"已创建{ROLE_LABELS[target.role]}账号 {target.username}（{target.name}），请把初始密码告诉本人")
    return redirect(url_for("console.staff_account", staff_id=target.id))


def _account_page(target, status=200, error=None, form=None):
    return render_template("console/staff_account.html", target=target, error=error, roles=ROLE_LABELS,
                           form=form or {name: getattr(target, name) or "" for name in PROFILE_FIELDS},
                           locked=staff_service.is_locked(target), min_password=staff_service.MIN_PASSWORD_LENGTH), status


@bp.get("/staff/<int:staff_id>")
@login_required("staff.manage")
def staff_account(staff_id):
    return _account_page(accounts.get_account(staff=g.staff, staff_id=staff_id))


def _act(staff_id, change, done, form=None):
    """Run `change()` on the account; on a refusal show its page with the message."""
    accounts.get_account(staff=g.staff, staff_id=staff_id)  # an unknown account answers 404 first
    try:
        target = change()
    except DomainError as exc:
        if not shown_on_form(exc):
            raise
        return _account_page(accounts.get_account(staff=g.staff, staff_id=staff_id), exc.status, exc.message, form)
    flash(done(target))
    return redirect(url_for("console.staff_account", staff_id=target.id))


@bp.post("/staff/<int:staff_id>/profile")
@login_required("staff.manage")
def staff_profile(staff_id):
    form = form_text(*PROFILE_FIELDS)
    return _act(staff_id, lambda: accounts.update_account(staff=g.staff, staff_id=staff_id, **form),
                lambda t: f"已保存{t.name}（{t.username}）的资料", form)


@bp.post("/staff/<int:staff_id>/role")
@login_required("staff.manage")
def staff_role(staff_id):
    role = request.form.get("role", "").strip()[:16]
    return _act(staff_id, lambda: accounts.change_role(staff=g.staff, staff_id=staff_id, role=role),
                lambda t: f"{t.name}（{t.username}）的角色已改为{ROLE_LABELS[t.role]}")


@bp.post("/staff/<int:staff_id>/password")
@login_required("staff.manage")
def staff_password(staff_id):
    password = request.form.get("password", "")
    if password != request.form.get("password_again", ""):
        return _account_page(accounts.get_account(staff=g.staff, staff_id=staff_id), 422, "两次输入的新密码不一致")

    def reset():
        target = accounts.reset_password(staff=g.staff, staff_id=staff_id, password=password)
        if target.id == g.staff.id:
            remember_password(target)  # one's own reset keeps this session, ends the others
        return target

    return _act(staff_id, reset, lambda t: f"已重置{t.name}（{t.username}）的密码，该账号原有的登录已失效")


@bp.post("/staff/<int:staff_id>/<any(deactivate, reactivate):action>")
@login_required("staff.manage")
def staff_set_active(staff_id, action):
    active = action == "reactivate"
    return _act(staff_id, lambda: accounts.set_active(staff=g.staff, staff_id=staff_id, active=active),
                lambda t: f"已{'启用' if t.active else '停用'}{t.name}（{t.username}）的账号")


@bp.post("/staff/<int:staff_id>/unlock")
@login_required("staff.manage")
def staff_unlock(staff_id):
    target = staff_service.unlock_staff(staff=g.staff, staff_id=staff_id)
    flash(f"已解锁{target.name}（{target.username}）的账号")
    return redirect(url_for("console.staff_list"))
