"""Console: the audit log (admin and finance)."""

from flask import render_template, request

from app.audit.service import (
    ACTION_LABELS,
    AUDIT_PAGE_SIZE,
    ENTITY_LABELS,
    field_label,
    list_entries,
)
from console.auth import bp, day_arg, id_arg, login_required, page_arg, pager
from app.extensions import db
from app.kernel.errors import DomainError
from app.staff.models import Staff


@bp.get("/audit")
@login_required("audit.view")
def audit_log():
    args = request.args
    page = page_arg(args)
    staff_id = id_arg(args.get("staff", ""), "操作人")
    entity_type = args.get("entity_type") or None
    if entity_type and entity_type not in ENTITY_LABELS:
        raise DomainError("invalid_filter", "对象类型参数有误", 400)
    action = args.get("action") or None
    if action and action not in ACTION_LABELS:
        raise DomainError("invalid_filter", "操作类型参数有误", 400)
    filters = {
        "entity_type": entity_type, "entity_id": args.get("entity_id", "").strip()[:64] or None,
        "staff_id": staff_id, "action": action,
        "day_from": day_arg(args.get("from"), "开始日期"), "day_to": day_arg(args.get("to"), "结束日期"),
    }
    rows, total = list_entries(page=page, **filters)
    staff = db.session.execute(db.select(Staff).order_by(Staff.name)).scalars().all()
    return render_template(
        "console/audit.html", rows=rows, total=total, args=args, staff=staff,
        action_labels=ACTION_LABELS, entity_labels=ENTITY_LABELS, field_label=field_label,
        **pager("console.audit_log", args, page, total, AUDIT_PAGE_SIZE),
    )
