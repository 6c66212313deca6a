"""Console pages. Each view checks the signed-in staff member's role; every POST carries
the session's CSRF token; sessions expire after CONSOLE_SESSION_HOURS."""
import functools
import hmac
import secrets
from datetime import datetime

from flask import (
    Blueprint,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from app import ratelimit
from app.audit import service as audit
from app.dealers.addresses import readable_region_names
from app.extensions import db
from app.kernel.clock import china_text
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.kernel.permissions import ROLE_LABELS, can
from app.staff.models import Staff
from app.staff.service import sign_in

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


def remember_password(staff):
    """After the signed-in member's own password changed: keep this session (every other one
    of theirs ends, carrying the old mark)."""
    session["pw"] = _password_mark(staff)


def login_required(*permissions):
    """Signed-in staff only; with `permissions`, only staff holding at least one of them
    (kernel permissions; others get 403)."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if g.staff is None:
                return redirect(url_for("console.login", next=request.full_path))
            if permissions and not any(can(g.staff, p) for p in permissions):
                raise DomainError("forbidden", "你的角色无权访问此页面", 403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


# The menu, in groups: (group, entries), each entry (label, path, permissions of which one
# opens it; none: everyone). A page's own view still checks; the menu only hides what would
# answer 403, and a group none of whose pages the staff member may open.
NAV_GROUPS = (
    (None, (
        ("仪表盘", "/console/", ()),
    )),
    ("订单", (
        ("订单", "/console/orders", ("orders.view",)),
        ("待审批", "/console/orders/pending", ("orders.approve", "orders.review_credit")),
        ("退货", "/console/returns", ("returns.view",)),
    )),
    ("经销商", (
        ("经销商", "/console/dealers", ("dealers.view",)),
        ("销售目标", "/console/targets", ("reports.targets",)),
    )),
    ("商品与价格", (
        ("商品", "/console/products", ("catalog.view",)),
        ("价格", "/console/prices", ("prices.view",)),
    )),
    ("库存", (
        ("库存", "/console/stock", ("stock.view",)),
    )),
    ("财务", (
        ("线下付款", "/console/finance/offline", ("payments.manage",)),
        ("收款记录", "/console/finance/payments", ("payments.manage",)),
        ("返利", "/console/rebates", ("rebates.manage",)),
        ("对账单", "/console/statements", ("statements.manage",)),
    )),
    ("营销", (
        ("客户群", "/console/groups", ("groups.view",)),
        ("客户群群发", "/console/campaigns", ("campaigns.edit",)),
        ("政策", "/console/policies", ("policies.view",)),
        ("营销素材", "/console/materials", ("materials.view",)),
    )),
    ("设置", (
        ("自动审批", "/console/settings/auto-approval", ("settings.edit",)),
        ("返利抵扣", "/console/settings/rebate-usage", ("settings.edit",)),
        ("签收完成订单", "/console/settings/delivery-completion", ("settings.edit",)),
        ("经销商等级", "/console/tiers", ("tiers.manage",)),
        ("地区", "/console/regions", ("regions.manage",)),
        ("仓库", "/console/warehouses", ("warehouses.manage",)),
        ("员工账号", "/console/staff", ("staff.manage",)),
        ("审计日志", "/console/audit", ("audit.view",)),
        ("Excel 导入导出", "/console/imports", ()),
    )),
)
# Every menu entry, (label, path, permissions), in menu order.
NAV = tuple(entry for _group, entries in NAV_GROUPS for entry in entries)


# --- list pages: paging and id filters --------------------------------------------------

def page_arg(args):
    """`?page=` of a list page (1 when absent); anything but 1..100000 answers 400."""
    page = args.get("page", "1")
    if not (page.isascii() and page.isdigit()) or not 1 <= int(page) <= 100_000:
        raise DomainError("invalid_filter", "页码必须是正整数", 400)
    return int(page)


def day_arg(value, label):
    """An optional `YYYY-MM-DD` from a query string: None when empty, 400 when malformed."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise DomainError("invalid_filter", f"{label}格式应为 YYYY-MM-DD", 400) from None


def id_arg(value, label):
    """An optional id from a query string: None when empty, 400 when not a positive number."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 15):
        raise DomainError("invalid_filter", f"{label}参数有误", 400)
    return int(value)


def form_text(*names):
    """The named fields of the posted form, trimmed and cut at 80 characters (the services check
    each one and say what is wrong)."""
    return {name: request.form.get(name, "").strip()[:80] for name in names}


def shown_on_form(exc):
    """True for a refusal a form page shows beside the form (validation 422, conflict 409);
    anything else (403, 404, …) propagates to the error page."""
    return exc.status in (409, 422)


def pager(endpoint, args, page, total, page_size, **path):
    """page, pages and the previous/next links of a list page, keeping its other filters."""
    pages = max(1, -(-total // page_size))
    kept = {k: v for k, v in args.items() if k != "page" and v}
    return {
        "page": page, "pages": pages,
        "prev_url": url_for(endpoint, **path, **kept, page=page - 1) if page > 1 else None,
        "next_url": url_for(endpoint, **path, **kept, page=page + 1) if page < pages else None,
    }


def nav_for(staff, current_path=""):
    """The menu `staff` sees: [(group, [(label, path, current), ...]), ...], empty groups left
    out; `current` marks the entry `current_path` is under (the longest match)."""
    visible = [(group, [(label, path) for label, path, needed in entries if not needed or any(can(staff, p) for p in needed)])
               for group, entries in NAV_GROUPS]
    under = [path for _group, links in visible for _label, path in links
             if current_path == path or current_path.startswith(path.rstrip("/") + "/") and path != "/console/"]
    current = max(under, key=len, default=None)
    return [(group, [(label, path, path == current) for label, path in links]) for group, links in visible if links]


@bp.app_template_global("region_option")  # a global: the imported audience macro sees it too
def region_option(*names):
    """A region picker's option as people write it: 广东省 深圳市, 上海市 (not 上海市 市辖区)."""
    return " ".join(readable_region_names(names))


@bp.app_template_filter("china_time")
def china_time(value, fmt="%Y-%m-%d %H:%M"):
    """Timestamps are stored in UTC; staff read them in China time."""
    return china_text(value, fmt)


@bp.app_context_processor
def _template_globals():
    return {"csrf_token": csrf_token, "yuan": format_yuan, "role_labels": ROLE_LABELS, "nav_for": nav_for,
            "audit_value": audit.display_value, "can": _signed_in_can}


def _signed_in_can(permission):
    """`can('orders.ship')` in a template: may the signed-in staff member do it?"""
    return can(g.staff, permission)


# --- sign in / out -------------------------------------------------------------------

SIGN_IN_LIMITED = "登录失败次数过多，请 {wait}后再试"


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("console/login.html", error=None)
    username = request.form.get("username", "").strip()
    # Failed sign-ins are throttled per client address and per username (app.ratelimit);
    # repeated wrong passwords lock the account itself (app.staff.service.sign_in).
    throttles = (("CONSOLE_LOGIN_LIMIT_PER_ADDRESS", "console-login-address", ratelimit.client_address()),
                 ("CONSOLE_LOGIN_LIMIT_PER_ACCOUNT", "console-login-account", username.lower() or "-"))
    try:
        for setting, scope, key in throttles:
            ratelimit.check(setting, scope=scope, key=key, code="too_many_sign_ins", message=SIGN_IN_LIMITED)
        staff = sign_in(username=username, password=request.form.get("password", ""))
    except DomainError as exc:
        if exc.code == "bad_credentials":
            for setting, scope, key in throttles:
                ratelimit.count(setting, scope=scope, key=key)
        response = make_response(render_template("console/login.html", error=exc.message), exc.status)
        if getattr(exc, "retry_after", None):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    session.clear()  # a fresh session (and CSRF token) after sign-in
    session.permanent = True
    session["staff_id"] = staff.id
    session["pw"] = _password_mark(staff)
    target = request.args.get("next", "")
    # Only paths inside the console: never an open redirect.
    if not target.startswith("/console") or target.startswith("//"):
        target = url_for("console.home")
    return redirect(target)


@bp.post("/logout")
def logout():
    session.clear()
    flash("已退出登录")
    return redirect(url_for("console.login"))
