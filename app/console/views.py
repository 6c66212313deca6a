"""Console pages. Each view checks the signed-in staff member's role; every POST carries
the session's CSRF token; sessions expire after CONSOLE_SESSION_HOURS."""
import functools
import hmac
import secrets

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for

from app.errors import DomainError
from app.extensions import db
from app.money import format_yuan
from app.orders import service as orders
from app.staff.models import Staff
from app.staff.service import ROLE_LABELS, authenticate

bp = Blueprint("console", __name__, url_prefix="/console")


# --- session, CSRF, roles -----------------------------------------------------------

def csrf_token():
    token = session.get("csrf")
    if token is None:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


@bp.before_app_request
def _load_staff():
    g.staff = None
    staff_id = session.get("staff_id") if request.path.startswith("/console") else None
    if staff_id is not None:
        staff = db.session.get(Staff, staff_id)
        # A deactivated account or a changed password ends every open session.
        if staff is None or not staff.active or session.get("pw") != _password_mark(staff):
            session.clear()
        else:
            g.staff = staff


@bp.before_request
def _check_csrf():
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent, expected):
            raise DomainError("csrf_failed", "页面已过期或请求来源不明（CSRF 校验失败），请刷新页面后重试", 400)


def _password_mark(staff):
    return (staff.password_hash or "")[-16:]


def login_required(*roles):
    """Signed-in staff only; with `roles`, only those roles (others get 403)."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if g.staff is None:
                return redirect(url_for("console.login", next=request.full_path))
            if roles and g.staff.role not in roles:
                raise DomainError("forbidden", "你的角色无权访问此页面", 403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


@bp.app_context_processor
def _template_globals():
    return {"csrf_token": csrf_token, "yuan": format_yuan, "role_labels": ROLE_LABELS}


# --- sign in / out -------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        staff = authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if staff is None:
            error = "用户名或密码错误，或账号已停用"
        else:
            session.clear()  # a fresh session (and CSRF token) after sign-in
            session.permanent = True
            session["staff_id"] = staff.id
            session["pw"] = _password_mark(staff)
            target = request.args.get("next", "")
            # Only paths inside the console: never an open redirect.
            if not target.startswith("/console") or target.startswith("//"):
                target = url_for("console.home")
            return redirect(target)
    return render_template("console/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    session.clear()
    flash("已退出登录")
    return redirect(url_for("console.login"))


@bp.get("/")
@login_required()
def home():
    if g.staff.role in orders.APPROVER_ROLES:
        return redirect(url_for("console.pending_orders"))
    return render_template("console/home.html")


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


# --- dealers -------------------------------------------------------------------------

DEALER_STATUS_LABELS = {"active": "正常", "suspended": "暂停"}


@bp.get("/dealers")
@login_required("admin", "sales", "finance")
def dealers():
    from app.dealers.models import Region, Tier
    from app.dealers.service import DEALER_LIST_PAGE_SIZE, list_dealers_for_staff

    args = request.args
    q = args.get("q", "").strip()[:64] or None
    page = args.get("page", "1")
    if not (page.isascii() and page.isdigit()) or not 1 <= int(page) <= 100_000:
        raise DomainError("invalid_filter", "页码必须是正整数", 400)
    rep = args.get("rep", "")
    if rep and not (rep.isascii() and rep.isdigit() and len(rep) <= 15):
        raise DomainError("invalid_filter", "业务员参数有误", 400)
    filters = {
        "q": q, "tier": args.get("tier") or None, "region": args.get("region") or None,
        "rep_id": int(rep) if rep else None, "status": args.get("status") or None,
    }
    rows, total = list_dealers_for_staff(staff=g.staff, page=int(page), **filters)
    options = {
        "tiers": db.session.execute(db.select(Tier).order_by(Tier.rank.desc())).scalars().all(),
        "provinces": db.session.execute(db.select(Region).where(Region.parent_code.is_(None)).order_by(Region.code)).scalars().all(),
        "reps": db.session.execute(db.select(Staff).where(Staff.role == "sales").order_by(Staff.name)).scalars().all(),
    }
    page, pages = int(page), max(1, -(-total // DEALER_LIST_PAGE_SIZE))
    kept = {k: v for k, v in args.items() if k != "page" and v}
    return render_template(
        "console/dealers.html", rows=rows, total=total, page=page, pages=pages,
        prev_url=url_for("console.dealers", **kept, page=page - 1) if page > 1 else None,
        next_url=url_for("console.dealers", **kept, page=page + 1) if page < pages else None,
        filters={**filters, "rep_id": rep}, status_labels=DEALER_STATUS_LABELS, **options,
    )
