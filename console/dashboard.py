"""Console: the dashboard (home page), the JSON endpoints behind its charts and their Excel exports.

Every figure comes from `app.reports.service`, which scopes it to the signed-in staff member
(a rep sees only their own dealers, roles without amounts get counts). The JSON endpoints answer
errors in the API's shape, `{"error": {"code", "message", "details"}}`, including 401 when the
session has expired. The page has two selectors: `period` (today / this month) for the sales
figures and `month` (YYYY-MM) for the month figures (growth, coverage, cycle time, targets).
Every chart's table is `console.dashboard_tables`, exported as it is shown.
"""
import functools

from flask import g, jsonify, render_template, request

from console.downloads import xlsx_download
from console.auth import bp, login_required
from console.dashboard_tables import FIGURES, table
from app.kernel.errors import DomainError
from app.kernel.permissions import can
from app.orders.approval import may_decide
from app.reports import cycle, months, targets
from app.reports import service as reports

API = "/api/dashboard"


@bp.get("/")
@login_required()
def home():
    staff = g.staff
    period, month = _selectors()
    amounts = reports.sees_amounts(staff)
    names = [name for name, (needs_amounts, _by) in FIGURES.items() if amounts or not needs_amounts]
    tables = {name: table(name, staff=staff, period=period, month=month) for name in names}
    return render_template(
        "console/dashboard.html",
        period=period, periods=reports.PERIODS, rule=reports.COUNTING_RULE, amount_rule=reports.AMOUNT_RULE,
        summary=reports.get_summary(staff=staff),
        by_region=tables["sales-by-region"][1],
        tables={name: t for name, (t, _report) in tables.items()},
        growth=tables["growth"][1], coverage=tables["coverage-region"][1],
        dealer_attainment=tables["attainment-dealers"][1] if amounts else None,
        month=months.month_text(month), this_month=months.month_text(months.parse_month(None)),
        growth_rule=months.GROWTH_RULE, coverage_rule=months.COVERAGE_RULE, cycle_rule=cycle.CYCLE_RULE,
        attainment_rule=targets.ATTAINMENT_RULE, may_edit_targets=can(staff, "reports.targets"),
        inactive=reports.inactive_dealers(staff=staff) if reports.sees_dealers(staff) else None,
        amounts=amounts, approver=may_decide(staff),
        inactive_days=reports.INACTIVE_DAYS,
    )


@bp.get("/dashboard/export/<name>.xlsx")
@login_required()
def export_dashboard_figure(name):
    """One chart's table as .xlsx, with the page's selectors (`period`, `month`); the dealers'
    attainment in full (the page lists the furthest behind only)."""
    period, month = _selectors()
    sheet, _report = table(name, staff=g.staff, period=period, month=month, dealer_limit=None)
    return xlsx_download(sheet.xlsx(), f"{sheet.title}.xlsx", "dashboard.xlsx")


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


def _month():
    return months.parse_month(request.args.get("month"))


def _selectors():
    """The page's two selectors, checked (400 for an unknown period or a bad month) before
    anything is computed."""
    period = _period()
    reports.period_days(period)
    return period, _month()


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


@bp.get(f"{API}/growth")
@api_view
def api_growth():
    return months.growth(staff=g.staff, month=_month())


@bp.get(f"{API}/coverage")
@api_view
def api_coverage():
    return months.coverage(staff=g.staff, month=_month())


@bp.get(f"{API}/cycle-times")
@api_view
def api_cycle_times():
    return cycle.cycle_times(staff=g.staff, month=_month())


@bp.get(f"{API}/rep-attainment")
@api_view
def api_rep_attainment():
    return targets.rep_attainment(staff=g.staff, month=_month())
