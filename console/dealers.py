"""Console: dealers — the list, one dealer's page, create/edit, credit limit, suspend/reactivate
and invite codes. Every rule lives in `app.dealers` (`admin`, `typed`, `identity`); these views read the form
and call it, and `console.dealer_pages` reads what the pages show."""
from flask import flash, g, redirect, render_template, request, url_for

from app.audit.service import ACTION_LABELS
from console.auth import bp, china_time, id_arg, login_required, page_arg, pager
from app.dealers.models import DEALER_STATUS_LABELS
from app.extensions import db
from app.kernel.errors import DomainError
from app.kernel.money import fen_to_yuan_text, format_yuan
from app.staff.models import Staff

# --- dealers -------------------------------------------------------------------------



@bp.get("/dealers")
@login_required("dealers.view")
def dealers():
    from app.dealers.models import Region, Tier
    from app.dealers.admin import DEALER_LIST_PAGE_SIZE, list_dealers_for_staff

    args = request.args
    q = args.get("q", "").strip()[:64] or None
    page = page_arg(args)
    rep = args.get("rep", "")
    rep_id = id_arg(rep, "业务员")
    filters = {
        "q": q, "tier": args.get("tier") or None, "region": args.get("region") or None,
        "rep_id": rep_id, "status": args.get("status") or None,
    }
    rows, total = list_dealers_for_staff(staff=g.staff, page=page, **filters)
    options = {
        "tiers": db.session.execute(db.select(Tier).order_by(Tier.rank.desc())).scalars().all(),
        "provinces": db.session.execute(db.select(Region).where(Region.parent_code.is_(None)).order_by(Region.code)).scalars().all(),
        "reps": db.session.execute(db.select(Staff).where(Staff.role == "sales").order_by(Staff.name)).scalars().all(),
    }
    return render_template(
        "console/dealers.html", rows=rows, total=total, **pager("console.dealers", args, page, total, DEALER_LIST_PAGE_SIZE),
        filters={**filters, "rep_id": rep}, status_labels=DEALER_STATUS_LABELS, **options,
    )


# --- one dealer: detail, create, edit, credit, status, invites ------------------------------

# The form's inputs, named as `app.dealers.typed.dealer_fields_from_text` reads them (amounts in yuan).
FORM_FIELDS = (
    "code", "name", "tier", "region_code", "rep", "contact_name", "contact_phone", "payment_terms_days",
    "contract_start", "contract_end", "annual_target", "credit_limit",
)
# A form input -> the service field its errors are reported under.
FORM_ERROR_KEYS = {"annual_target": "annual_target_fen", "credit_limit": "credit_limit_fen"}


def _detail_page(code, status=200):
    from app.dealers.models import ROLE_LABELS as USER_ROLE_LABELS
    from console.dealer_pages import dealer_detail
    from app.dealers.fields import FIELD_LABELS
    from app.orders.models import STATUS_LABELS

    detail = dealer_detail(staff=g.staff, code=code)
    return render_template(
        "console/dealer.html", d=detail, status_labels=DEALER_STATUS_LABELS, user_role_labels=USER_ROLE_LABELS,
        order_status_labels=STATUS_LABELS, field_labels=FIELD_LABELS, action_labels=ACTION_LABELS,
    ), status


@bp.get("/dealers/<code>")
@login_required("dealers.view")
def dealer(code):
    return _detail_page(code)


def _form_page(*, dealer=None, values=None, errors=None, status=200):
    from console.dealer_pages import dealer_form_options
    from app.dealers.addresses import region_text
    from app.dealers.admin import permissions_for
    from app.dealers.fields import FIELD_LABELS
    from app.funds.service import get_balances

    shown = {}
    if dealer is not None:  # how fields the role may not change read on the page
        shown = {
            "tier": dealer.tier.name, "region_code": region_text(dealer.region_code),
            "rep": dealer.rep.name if dealer.rep else "未分配",
            "annual_target": format_yuan(dealer.annual_target_fen) if dealer.annual_target_fen is not None else "未设定",
            "credit_limit": format_yuan(get_balances(dealer.id).credit_limit_fen),
        }
    return render_template(
        "console/dealer_form.html", dealer=dealer, values=values or {}, errors=errors or {}, shown=shown,
        permissions=permissions_for(g.staff, dealer), field_labels=FIELD_LABELS,
        error_keys=FORM_ERROR_KEYS, **dealer_form_options(dealer),
    ), status


def _submitted(editable):
    """The form's values the staff member may send: only inputs present and editable."""
    wanted = {FORM_ERROR_KEYS.get(name, name): name for name in FORM_FIELDS}
    return {form: request.form[form] for field, form in wanted.items() if field in editable and form in request.form}


def _form_values(dealer):
    """The edit form pre-filled: amounts in yuan as a clerk types them, dates ISO."""
    from app.funds.service import get_balances

    limit = get_balances(dealer.id).credit_limit_fen
    return {
        "code": dealer.code, "name": dealer.name, "tier": dealer.tier.code, "region_code": dealer.region_code,
        "rep": dealer.rep.username if dealer.rep else "", "contact_name": dealer.contact_name or "",
        "contact_phone": dealer.contact_phone or "", "payment_terms_days": dealer.payment_terms_days,
        "contract_start": dealer.contract_start.isoformat() if dealer.contract_start else "",
        "contract_end": dealer.contract_end.isoformat() if dealer.contract_end else "",
        "annual_target": _plain_yuan(dealer.annual_target_fen), "credit_limit": _plain_yuan(limit),
    }


def _plain_yuan(fen):
    if fen is None:
        return ""
    return fen_to_yuan_text(fen, trim=True)


@bp.route("/dealers/new", methods=["GET", "POST"])
@login_required("dealers.create")
def new_dealer():
    from app.dealers.fields import DEALER_FIELDS
    from app.dealers.typed import create_dealer_from_text

    if request.method == "GET":
        return _form_page(values={"payment_terms_days": 30})
    raw = _submitted(DEALER_FIELDS)
    try:
        created = create_dealer_from_text(staff=g.staff, values=raw)
    except DomainError as exc:
        if exc.status != 422:
            raise
        flash(exc.message, "error")
        return _form_page(values=raw, errors=exc.details.get("fields", {}), status=422)
    flash(f"已新建经销商 {created.code} {created.name}；可以在下方生成邀请码，发给经销商绑定小程序")
    return redirect(url_for("console.dealer", code=created.code))


@bp.route("/dealers/<code>/edit", methods=["GET", "POST"])
@login_required("dealers.edit")
def edit_dealer(code):
    from app.dealers.admin import get_dealer_for_staff, permissions_for
    from app.dealers.typed import update_dealer_from_text

    dealer = get_dealer_for_staff(staff=g.staff, code=code)
    editable = permissions_for(g.staff, dealer)["edit_fields"]
    if not editable:
        raise DomainError("forbidden", "你的角色不能修改这家经销商", 403)
    if request.method == "GET":
        return _form_page(dealer=dealer, values=_form_values(dealer))
    # Every input the form sent (a field the role may not change is refused by the service
    # if its value differs); the form only shows the editable ones.
    raw = {name: request.form[name] for name in FORM_FIELDS if name in request.form and name != "code"}
    try:
        update_dealer_from_text(staff=g.staff, code=code, values=raw, reason=request.form.get("reason"))
    except DomainError as exc:
        if exc.status != 422:
            raise
        flash(exc.message, "error")
        return _form_page(dealer=dealer, values={**_form_values(dealer), **raw}, errors=exc.details.get("fields", {}),
                          status=422)
    flash(f"已保存经销商 {code} 的修改")
    return redirect(url_for("console.dealer", code=code))


def _act(code, action, done_message):
    """Run a detail-page action; a refused input re-renders the page with the reason (4xx)."""
    try:
        result = action()
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise
        flash(exc.message, "error")
        return _detail_page(code, status=exc.status)
    flash(done_message(result) if callable(done_message) else done_message)
    return redirect(url_for("console.dealer", code=code))


@bp.post("/dealers/<code>/credit")
@login_required("dealers.credit")
def dealer_credit(code):
    from app.dealers.admin import set_credit_limit
    from app.dealers.typed import dealer_fields_from_text

    def action():
        fields = dealer_fields_from_text({"credit_limit": request.form.get("credit_limit", "")})
        set_credit_limit(staff=g.staff, code=code, limit_fen=fields["credit_limit_fen"],
                         reason=request.form.get("reason"))
        return fields["credit_limit_fen"]

    return _act(code, action, lambda limit: f"信用额度已调整为 {format_yuan(limit)}")


@bp.post("/dealers/<code>/suspend")
@login_required("dealers.status")
def suspend(code):
    from app.dealers.admin import suspend_dealer

    return _act(
        code, lambda: suspend_dealer(staff=g.staff, code=code, reason=request.form.get("reason")),
        f"经销商 {code} 已暂停订货：其用户仍可登录小程序查看，但不能下单",
    )


@bp.post("/dealers/<code>/reactivate")
@login_required("dealers.status")
def reactivate(code):
    from app.dealers.admin import reactivate_dealer

    return _act(
        code, lambda: reactivate_dealer(staff=g.staff, code=code, reason=request.form.get("reason")),
        f"经销商 {code} 已恢复，可以正常下单",
    )


@bp.post("/dealers/<code>/invites")
@login_required("dealers.invite")
def issue_invite(code):
    from app.dealers.models import ROLE_LABELS as USER_ROLE_LABELS
    from app.dealers.identity import create_invite

    role = request.form.get("role", "")
    return _act(
        code, lambda: create_invite(dealer_code=code, role=role, staff=g.staff),
        lambda invite: f"已生成{USER_ROLE_LABELS[invite.role]}邀请码 {invite.code}，"
                       f"{china_time(invite.expires_at)} 前有效，只能使用一次",
    )
