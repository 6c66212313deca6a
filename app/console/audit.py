"""Console: the audit log (admin and finance)."""
from datetime import datetime, timedelta

from flask import render_template, request, url_for

from app.audit.service import ACTION_LABELS, AUDIT_PAGE_SIZE, ENTITY_LABELS, display_value, field_label, list_entries
from app.console.auth import bp, login_required
from app.errors import DomainError
from app.extensions import db
from app.staff.models import Staff
from app.pricing.service import BUSINESS_TZ


def _day(value, name):
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise DomainError("invalid_filter", f"{name}格式应为 YYYY-MM-DD", 400) from None
    return day.replace(tzinfo=BUSINESS_TZ)


@bp.get("/audit")
@login_required("admin", "finance")
def audit_log():
    args = request.args
    page = args.get("page", "1")
    if not (page.isascii() and page.isdigit()) or not 1 <= int(page) <= 100_000:
        raise DomainError("invalid_filter", "页码必须是正整数", 400)
    staff_id = args.get("staff", "")
    if staff_id and not (staff_id.isascii() and staff_id.isdigit() and len(staff_id) <= 15):
        raise DomainError("invalid_filter", "操作人参数有误", 400)
    entity_type = args.get("entity_type") or None
    if entity_type and entity_type not in ENTITY_LABELS:
        raise DomainError("invalid_filter", "对象类型参数有误", 400)
    action = args.get("action") or None
    if action and action not in ACTION_LABELS:
        raise DomainError("invalid_filter", "操作类型参数有误", 400)
    day_from = _day(args.get("from"), "开始日期")
    day_to = _day(args.get("to"), "结束日期")
    filters = {
        "entity_type": entity_type, "entity_id": args.get("entity_id", "").strip()[:64] or None,
        "staff_id": int(staff_id) if staff_id else None, "action": action,
        "day_from": day_from, "day_to": day_to + timedelta(days=1) if day_to else None,
    }
    rows, total = list_entries(page=int(page), **filters)
    page, pages = int(page), max(1, -(-total // AUDIT_PAGE_SIZE))
    kept = {k: v for k, v in args.items() if k != "page" and v}
    staff = db.session.execute(db.select(Staff).order_by(Staff.name)).scalars().all()
    return render_template(
        "console/audit.html", rows=rows, total=total, page=page, pages=pages, args=args, staff=staff,
        action_labels=ACTION_LABELS, entity_labels=ENTITY_LABELS, field_label=field_label, display_value=display_value,
        prev_url=url_for("console.audit_log", **kept, page=page - 1) if page > 1 else None,
        next_url=url_for("console.audit_log", **kept, page=page + 1) if page < pages else None,
    )
