"""Console: the dashboard (home page) and the JSON endpoints behind its charts.

Every figure comes from `app.reports.service`, which scopes it to the signed-in staff member
(a rep sees only their own dealers, roles without amounts get counts). The JSON endpoints answer
errors in the API's shape, `{"error": {"code", "message", "details"}}`, including 401 when the
session has expired.
"""
import functools

from flask import g, jsonify, render_template, request

from console.auth import bp, login_required
from app.kernel.errors import DomainError
from app.orders.approval import may_decide
from app.reports import service as reports

API = "/api/dashboard"


@bp.get("/")
@login_required()
def home():
    period = request.args.get("period", "month")
    staff = g.staff
    reports.period_days(period)  # 400 for an unknown period before anything is computed
    return render_template(
        "console/dashboard.html",
        period=period, periods=reports.PERIODS, rule=reports.COUNTING_RULE, amount_rule=reports.AMOUNT_RULE,
        summary=reports.get_summary(staff=staff),
        by_region=reports.sales_by_region(staff=staff, period=period),
        by_tier=reports.sales_by_tier(staff=staff, period=period),
        dealers=reports.top_dealers(staff=staff, period=period),
        skus=reports.top_skus(staff=staff, period=period),
        inactive=reports.inactive_dealers(staff=staff) if reports.sees_dealers(staff) else None,
        amounts=reports.sees_amounts(staff), approver=may_decide(staff),
        inactive_days=reports.INACTIVE_DAYS,
    )


def api_view(view):
    """Signed-in staff only, answered in JSON: 401 when signed out (no redirect to the login page)."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if g.staff is None:
            raise DomainError("unauthorized", "请先登录管理后台", 401)
        return jsonify(view(*args, **kwargs))
    return wrapper


def _period():
    return request.args.get("period", "month")


@bp.get(f"{API}/summary")
@api_view
def api_summary():
    return reports.get_summary(staff=g.staff)


@bp.get(f"{API}/sales-by-region")
@api_view
def api_sales_by_region():
    return reports.sales_by_region(staff=g.staff, period=_period())


@bp.get(f"{API}/sales-by-tier")
@api_view
def api_sales_by_tier():
    return reports.sales_by_tier(staff=g.staff, period=_period())


@bp.get(f"{API}/top-dealers")
@api_view
def api_top_dealers():
    return reports.top_dealers(staff=g.staff, period=_period())


@bp.get(f"{API}/top-skus")
@api_view
def api_top_skus():
    return reports.top_skus(staff=g.staff, period=_period())


@bp.get(f"{API}/daily-sales")
@api_view
def api_daily_sales():
    days = request.args.get("days", "30")
    if not (days.isascii() and days.isdigit() and len(days) <= 3):
        raise DomainError("invalid_days", f"天数必须是 1 到 {reports.MAX_TREND_DAYS} 之间的整数", 400,
                          {"days": [f"1 到 {reports.MAX_TREND_DAYS}"]})
    return reports.daily_sales(staff=g.staff, days=int(days))


@bp.get(f"{API}/inactive-dealers")
@api_view
def api_inactive_dealers():
    return reports.inactive_dealers(staff=g.staff)
