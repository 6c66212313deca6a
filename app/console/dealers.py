"""Console: dealers."""
from flask import g, render_template, request, url_for

from app.console.auth import bp, login_required
from app.errors import DomainError
from app.extensions import db
from app.staff.models import Staff

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
