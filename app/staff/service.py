"""Staff accounts: creation with a hashed password, and sign-in for the console."""
from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.database import write_transaction
from app.extensions import db
from app.kernel.errors import DomainError
from app.kernel.permissions import STAFF_ROLES
from app.staff.models import Staff

MIN_PASSWORD_LENGTH = 8

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
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError("weak_password", f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符", 422)


def create_staff(*, username, name, role, password, wecom_userid=None, phone=None):
    """A new staff member with a hashed password; 409 if the username is taken."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise DomainError("invalid_username", "用户名不能为空，且不超过 64 个字符", 422)
    if role not in STAFF_ROLES:
        raise DomainError("invalid_role", f"角色必须是 {'、'.join(STAFF_ROLES)} 之一", 422)
    check_password_rules(password)
    with write_transaction() as session:
        if session.execute(select(Staff.id).where(Staff.username == username)).first():
            raise DomainError("username_taken", f"用户名 {username} 已被使用", 409)
        staff = Staff(
            username=username, name=(name or username).strip()[:64], role=role, phone=phone,
            wecom_userid=wecom_userid, password_hash=hash_password(password), active=True,
        )
        session.add(staff)
    return staff


def set_password(staff, password):
    check_password_rules(password)
    with write_transaction() as session:
        session.get(Staff, staff.id).password_hash = hash_password(password)


def authenticate(username, password):
    """The active staff member with this username and password, or None."""
    staff = db.session.execute(select(Staff).where(Staff.username == (username or "").strip())).scalar_one_or_none()
    stored = staff.password_hash if staff is not None and staff.password_hash else _dummy_hash()
    ok = check_password_hash(stored, password or "")
    if staff is None or not staff.password_hash or not ok or not staff.active:
        return None
    return staff
