"""Staff accounts: the account rules (username, role, password, WeCom UserID) and creation
with a hashed password, and sign-in for the console with a lockout after repeated wrong
passwords (state in the `staff` row, so it holds across web processes; times from the kernel
clock). What an admin changes from the console (create, role, password reset, deactivate)
is `app.staff.accounts`."""
import re
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.audit import service as audit
from app.database import write_transaction
from app.extensions import db
from app.kernel.clock import duration_words, utcnow
from app.kernel.errors import DomainError
from app.kernel.permissions import ROLE_LABELS, STAFF_ROLES, require
from app.staff.models import Staff

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
_WECOM_USERID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Compared against when the username is unknown, so a wrong name takes as long as a wrong
# password: one per hash method (PASSWORD_HASH_METHOD), made on first use.
_DUMMY_HASHES = {}


def hash_password(password):
    """The stored form of a password, by the configured method (scrypt; tests use a cheap one,
    which production refuses to start with)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _dummy_hash():
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash("not-a-real-password", method=method)
    return _DUMMY_HASHES[method]


def check_password_rules(password):
    """The one password rule, for the CLI and the console alike: 8 to 128 characters."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError("weak_password", f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符", 422, {"field": "password"})
    if len(password) > MAX_PASSWORD_LENGTH:
        raise DomainError("weak_password", f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符", 422, {"field": "password"})


def check_role(role):
    if role not in STAFF_ROLES:
        raise DomainError("invalid_role", f"角色只能是 {'、'.join(ROLE_LABELS.values())} 之一", 422, {"field": "role"})
    return role


def check_wecom_userid(session, wecom_userid, staff_id=None):
    """An optional WeCom UserID (letters, digits, _ - . @; at most 64), used by no other
    account: None when empty, 422 when malformed, 409 when taken."""
    wecom_userid = (wecom_userid or "").strip()
    if not wecom_userid:
        return None
    if not _WECOM_USERID.fullmatch(wecom_userid):
        raise DomainError("invalid_field", "企业微信 UserID 只能包含字母、数字和 _ - . @，且不超过 64 个字符", 422,
                          {"field": "wecom_userid"})
    taken = session.execute(select(Staff.username).where(Staff.wecom_userid == wecom_userid, Staff.id != (staff_id or 0))).first()
    if taken:
        raise DomainError("wecom_userid_taken", f"企业微信 UserID {wecom_userid} 已被账号 {taken.username} 使用", 409,
                          {"field": "wecom_userid"})
    return wecom_userid


def add_staff(session, *, username, name, role, password, wecom_userid=None, phone=None):
    """A new staff member with a hashed password in `session` (the caller commits): 422 for an
    empty or over-long username, a bad role or a short password, 409 if the username or the
    WeCom UserID is taken. The rules of `flask staff create` and the console's staff page."""
    username = (username or "").strip()
    if not username or len(username) > 64 or _CONTROL_OR_SPACE.search(username):
        raise DomainError("invalid_username", "用户名不能为空、不能含空格，且不超过 64 个字符", 422, {"field": "username"})
    name = (name or username).strip()
    if len(name) > 64 or _CONTROL.search(name):
        raise DomainError("invalid_field", "姓名不能超过 64 个字符，也不能包含控制字符", 422, {"field": "name"})
    check_role(role)
    check_password_rules(password)
    if session.execute(select(Staff.id).where(Staff.username == username)).first():
        raise DomainError("username_taken", f"用户名 {username} 已被使用", 409, {"field": "username"})
    staff = Staff(
        username=username, name=name, role=role, phone=phone or None,
        wecom_userid=check_wecom_userid(session, wecom_userid), password_hash=hash_password(password), active=True,
    )
    session.add(staff)
    session.flush()
    return staff


def create_staff(*, username, name, role, password, wecom_userid=None, phone=None):
    """A new staff member with a hashed password (the CLI's `flask staff create`, with no one
    signed in yet; the console creates through `app.staff.accounts.create_account`)."""
    with write_transaction() as session:
        return add_staff(session, username=username, name=name, role=role, password=password,
                         wecom_userid=wecom_userid, phone=phone)


def set_password(staff, password):
    """Store a new password (ending the account's console sessions, which carry a mark of the
    stored hash)."""
    check_password_rules(password)
    with write_transaction() as session:
        session.get(Staff, staff.id).password_hash = hash_password(password)


BAD_CREDENTIALS = "用户名或密码错误，或账号已停用"
SYSTEM = type("System", (), {"id": None, "name": "系统"})()


def _locked_error(staff, now):
    seconds = max(1, int((staff.locked_until - now).total_seconds()))
    return DomainError(
        "account_locked",
        f"密码连续输错次数过多，账号已被锁定，请 {duration_words(seconds)}后再试，或联系管理员解锁",
        423, {"locked_until": staff.locked_until.isoformat()})


def is_locked(staff, now=None):
    return staff.locked_until is not None and staff.locked_until > (now or utcnow())


def sign_in(*, username, password):
    """The active staff member with this username and password; a successful sign-in clears
    the count of wrong passwords.

    Raises 423 `account_locked` while the account is locked (the password is not checked, so
    guessing on goes nowhere) and 401 `bad_credentials` for an unknown name, a wrong password
    or a deactivated account. A wrong password counts: CONSOLE_LOCKOUT_FAILURES of them in a
    row, none further apart than CONSOLE_LOCKOUT_MINUTES, lock the account for
    CONSOLE_LOCKOUT_MINUTES (audited as `staff.lock`).
    """
    staff = db.session.execute(select(Staff).where(Staff.username == (username or "").strip())).scalar_one_or_none()
    now = utcnow()
    if staff is not None and is_locked(staff, now):
        raise _locked_error(staff, now)
    stored = staff.password_hash if staff is not None and staff.password_hash else _dummy_hash()
    ok = check_password_hash(stored, password or "")
    if staff is None or not staff.password_hash or not staff.active:
        raise DomainError("bad_credentials", BAD_CREDENTIALS, 401)
    if not ok:
        _count_failure(staff.id)
        raise DomainError("bad_credentials", BAD_CREDENTIALS, 401)
    if staff.failed_logins or staff.locked_until is not None:
        with write_transaction() as session:
            row = session.get(Staff, staff.id)
            row.failed_logins, row.last_failed_login_at, row.locked_until = 0, None, None
    return staff


def _count_failure(staff_id):
    config = current_app.config
    threshold, minutes = config["CONSOLE_LOCKOUT_FAILURES"], config["CONSOLE_LOCKOUT_MINUTES"]
    with write_transaction() as session:
        staff = session.execute(select(Staff).where(Staff.id == staff_id).with_for_update()).scalar_one()
        now = utcnow()
        window = timedelta(minutes=minutes)
        recent = staff.last_failed_login_at is not None and now - staff.last_failed_login_at <= window
        staff.failed_logins = (staff.failed_logins if recent else 0) + 1
        staff.last_failed_login_at = now
        if threshold and staff.failed_logins >= threshold and not is_locked(staff, now):
            staff.locked_until = now + window
            audit.record(session, actor=SYSTEM, action="staff.lock", entity_type="staff", entity_id=staff.id,
                         label=f"{staff.username} {staff.name}", after={"locked_until": staff.locked_until},
                         reason=f"连续 {staff.failed_logins} 次密码错误")
            staff.failed_logins = 0


def unlock_staff(*, staff, staff_id):
    """Lift a lockout now (and forget the wrong passwords so far). Audited as `staff.unlock`.
    403 without `staff.manage`, 404 for an unknown account, 409 if it is not locked."""
    require(staff, "staff.manage", "你的角色无权解锁员工账号")
    with write_transaction() as session:
        target = session.execute(select(Staff).where(Staff.id == staff_id).with_for_update()).scalar_one_or_none()
        if target is None:
            raise DomainError("staff_not_found", "员工账号不存在", 404)
        if not is_locked(target):
            raise DomainError("not_locked", f"{target.name}的账号没有被锁定", 409)
        before = {"locked_until": target.locked_until}
        target.failed_logins, target.last_failed_login_at, target.locked_until = 0, None, None
        audit.record(session, actor=staff, action="staff.unlock", entity_type="staff", entity_id=target.id,
                     label=f"{target.username} {target.name}", before=before, after={"locked_until": None})
    return target


def list_staff():
    """Every staff account, by username (the console's staff page)."""
    return db.session.execute(select(Staff).order_by(Staff.username)).scalars().all()
