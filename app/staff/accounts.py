"""What an admin does to staff accounts from the console: create one, change its name, phone
and WeCom UserID, change its role, reset its password, deactivate and reactivate it.

Every function takes the acting staff member, needs `staff.manage`, locks the rows it
decides on and writes an audit entry (entity `staff`) in the same transaction. The account
rules (username, role, password length, WeCom UserID) are `app.staff.service`'s, the same
as `flask staff create`.

Two guards keep the console reachable: nobody deactivates or demotes themselves, and the
last active account that may manage staff is never deactivated or demoted. A password reset
or a deactivation ends the account's console sessions (they carry a mark of the stored
password hash and are dropped for an inactive account, `console.auth`); a reset also lifts
a sign-in lockout.
"""
from sqlalchemy import select

from app.audit import service as audit
from app.database import write_transaction
from app.extensions import db
from app.kernel import inputs
from app.kernel.errors import DomainError
from app.kernel.permissions import ROLE_LABELS, require, roles_with
from app.staff.models import Staff
from app.staff.service import add_staff, check_password_rules, check_role, check_wecom_userid, hash_password

PHONE_MAX = 20


def _label(target):
    return f"{target.username} {target.name}"


def _lock(session, staff_id):
    target = session.execute(select(Staff).where(Staff.id == staff_id).with_for_update()).scalar_one_or_none()
    if target is None:
        raise DomainError("staff_not_found", "员工账号不存在", 404)
    return target


def _phone(value):
    phone = inputs.text(value, field="phone", label="手机号", max_len=PHONE_MAX, required=False)
    if phone and not all(c.isdigit() or c in "+- " for c in phone):
        raise inputs.invalid("phone", "手机号只能包含数字、空格、+ 和 -")
    return phone or None


def create_account(*, staff, username, name, role, password, wecom_userid=None, phone=None):
    """A new active account. 403 without `staff.manage`; 422 for an empty name or username, a
    bad role or a short password; 409 for a taken username or WeCom UserID. Audited as
    `staff.create` (never with the password)."""
    require(staff, "staff.manage")
    name = inputs.text(name, field="name", label="姓名", max_len=64)
    phone = _phone(phone)
    with write_transaction() as session:
        target = add_staff(session, username=username, name=name, role=role, password=password,
                           wecom_userid=wecom_userid, phone=phone)
        audit.record(session, actor=staff, action="staff.create", entity_type="staff", entity_id=target.id,
                     label=_label(target), after={"username": target.username, "name": target.name,
                                                  "role": target.role, "wecom_userid": target.wecom_userid,
                                                  "phone": target.phone})
    return target


def update_account(*, staff, staff_id, name, wecom_userid=None, phone=None):
    """Change an account's name, WeCom UserID and phone (the username stays: it is how the
    person signs in and how the audit log names them). Audited as `staff.update` with only
    the changed fields; nothing changed writes nothing."""
    require(staff, "staff.manage")
    name = inputs.text(name, field="name", label="姓名", max_len=64)
    phone = _phone(phone)
    with write_transaction() as session:
        target = _lock(session, staff_id)
        wecom_userid = check_wecom_userid(session, wecom_userid, staff_id=target.id)
        before = {"name": target.name, "wecom_userid": target.wecom_userid, "phone": target.phone}
        after = {"name": name, "wecom_userid": wecom_userid, "phone": phone}
        old, new = audit.changed(before, after)
        if new:
            target.name, target.wecom_userid, target.phone = name, wecom_userid, phone
            audit.record(session, actor=staff, action="staff.update", entity_type="staff", entity_id=target.id,
                         label=_label(target), before=old, after=new)
    return target


def _keep_a_manager(session, staff, target, what, own):
    """Refuse (409) when `target` is the last active account holding `staff.manage`, or is
    `staff` themselves; `what` is the refused change ("停用", "改为业务员"), `own` the same
    said of one's own account ("停用自己的账号")."""
    managers = roles_with("staff.manage")
    if target.active and target.role in managers:
        # Lock every active manager in id order, so two admins demoting each other queue
        # and the second sees only one left.
        active = session.execute(select(Staff.id).where(Staff.active.is_(True), Staff.role.in_(managers))
                                 .order_by(Staff.id).with_for_update()).scalars().all()
        if [i for i in active if i != target.id] == []:
            raise DomainError("last_admin", f"{target.name}是最后一个启用的管理员，不能{what}；请先让另一位员工成为管理员", 409)
    if target.id == staff.id:
        raise DomainError("self_change", f"不能{own}；请让另一位管理员操作", 409)


def change_role(*, staff, staff_id, role):
    """Give an account another role. 422 for an unknown role; 409 for oneself or the last
    active admin (see `_keep_a_manager`) and when the role is unchanged. Audited as
    `staff.role`; the new role's permissions apply from the account's next request."""
    require(staff, "staff.manage")
    check_role(role)
    with write_transaction() as session:
        target = _lock(session, staff_id)
        if target.role == role:
            raise DomainError("role_unchanged", f"{target.name}已经是{ROLE_LABELS[role]}", 409)
        if role not in roles_with("staff.manage"):
            _keep_a_manager(session, staff, target, f"改为{ROLE_LABELS[role]}", "修改自己的角色")
        before = target.role
        target.role = role
        audit.record(session, actor=staff, action="staff.role", entity_type="staff", entity_id=target.id,
                     label=_label(target), before={"role": before}, after={"role": role})
    return target


def reset_password(*, staff, staff_id, password):
    """Set a new password for an account (the admin tells the person; they may sign in with it
    at once). Ends every console session the account has open and lifts a lockout. 422 for a
    password the CLI would refuse too. Audited as `staff.password_reset` (no password in it)."""
    require(staff, "staff.manage")
    check_password_rules(password)
    with write_transaction() as session:
        target = _lock(session, staff_id)
        target.password_hash = hash_password(password)
        target.failed_logins, target.last_failed_login_at, target.locked_until = 0, None, None
        audit.record(session, actor=staff, action="staff.password_reset", entity_type="staff", entity_id=target.id,
                     label=_label(target), reason="管理员重置密码，原有登录已失效")
    return target


def set_active(*, staff, staff_id, active):
    """Deactivate (`active=False`: cannot sign in, open sessions end, the WeCom bot no longer
    answers them) or reactivate an account. 409 when already so, for oneself, or for the last
    active admin. Audited as `staff.deactivate` / `staff.reactivate`."""
    require(staff, "staff.manage")
    with write_transaction() as session:
        target = _lock(session, staff_id)
        if target.active == bool(active):
            raise DomainError("already", f"{target.name}的账号已经是{'启用' if target.active else '停用'}状态", 409)
        if not active:
            _keep_a_manager(session, staff, target, "停用", "停用自己的账号")
        target.active = bool(active)
        audit.record(session, actor=staff, action="staff.reactivate" if active else "staff.deactivate",
                     entity_type="staff", entity_id=target.id, label=_label(target),
                     before={"active": not target.active}, after={"active": target.active})
    return target


def get_account(*, staff, staff_id):
    require(staff, "staff.manage")
    target = db.session.get(Staff, staff_id)
    if target is None:
        raise DomainError("staff_not_found", "员工账号不存在", 404)
    return target
