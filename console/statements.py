"""Console: monthly statements (对账单) for admin and finance. The list filters by month,
status and dealer and counts each status (so open disputes stand out); the detail shows the
figures, the dealer's dispute and finance's resolve form; each statement downloads as Excel
and opens as a print page (also for the dealer through a signed link, without signing in)."""

from flask import (
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from console.downloads import xlsx_download
from console.auth import bp, login_required, page_arg, pager
from app.kernel.errors import DomainError
from app.statements import service as statements
from app.statements.excel import statement_workbook
from app.statements.models import EVENT_LABELS, STATEMENT_STATUSES, STATUS_LABELS


@bp.get("/statements")
@login_required("statements.manage")
def statements_list():
    args = request.args
    month = args.get("month", "").strip() or None
    if month:
        try:
            month = f"{statements.parse_month(month):%Y-%m}"
        except DomainError:
            raise DomainError("invalid_filter", "月份格式应为 YYYY-MM，例如 2026-11", 400) from None
    status = args.get("status") or None
    if status and status not in STATEMENT_STATUSES:
        raise DomainError("invalid_filter", "状态参数有误", 400)
    q = args.get("q", "").strip()[:64] or None
    page = page_arg(args)
    rows, total, counts = statements.list_statements_for_staff(
        staff=g.staff, month=month, status=status, dealer_q=q, page=page,
    )
    return render_template(
        "console/statements.html", rows=rows, total=total, counts=counts, month=month or "", status=status,
        q=q or "", status_labels=STATUS_LABELS,
        **pager("console.statements_list", args, page, total, statements.STAFF_PAGE_SIZE),
    )


@bp.get("/statements/<id:statement_id>")
@login_required("statements.manage")
def statement_detail(statement_id):
    statement = statements.get_statement_for_staff(staff=g.staff, statement_id=statement_id)
    return render_template(
        "console/statement.html", statement=statement, accounts=statements.summarize(statement),
        status_labels=STATUS_LABELS, event_labels=EVENT_LABELS, category_labels=statements.CATEGORY_LABELS,
        share_url=url_for("console.statement_shared", token=statements.print_token(statement), _external=True),
    )


@bp.post("/statements/<id:statement_id>/resolve")
@login_required("statements.manage")
def statement_resolve(statement_id):
    try:
        statement = statements.resolve_dispute(staff=g.staff, statement_id=statement_id, note=request.form.get("note", ""))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash(f"对账单 {statement.statement_no}：异议已处理，已通知经销商重新确认")
    return redirect(url_for("console.statement_detail", statement_id=statement_id))


@bp.get("/statements/<id:statement_id>/export.xlsx")
@login_required("statements.manage")
def statement_export(statement_id):
    statement = statements.get_statement_for_staff(staff=g.staff, statement_id=statement_id)
    return xlsx_download(statement_workbook(statement, brand=current_app.config["BRAND_NAME"]),
                         f"对账单_{statement.statement_no}.xlsx", "statement.xlsx")


@bp.get("/statements/<id:statement_id>/print")
@login_required("statements.manage")
def statement_print(statement_id):
    statement = statements.get_statement_for_staff(staff=g.staff, statement_id=statement_id)
    return _print_page(statement)


@bp.get("/statements/shared/<token>")
def statement_shared(token):
    """The dealer's print link (from the mini-program): no sign-in, the signed token is the key."""
    if len(token) > 200:
        raise DomainError("statement_not_found", "链接无效或已过期", 404)
    return _print_page(statements.statement_for_token(token))


def _print_page(statement):
    response = make_response(render_template(
        "statements/print.html", statement=statement, accounts=statements.summarize(statement),
        status_labels=STATUS_LABELS, month_label=statements.month_label(statement.month),
    ))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
