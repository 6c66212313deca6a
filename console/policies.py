"""Console: policies (渠道政策 / 价格政策 / 促销通知). Admin and marketing write, schedule,
publish, withdraw and remind; sales may look. Every rule lives in `app.policies`."""
from datetime import datetime

from flask import flash, g, redirect, render_template, request, url_for

from app.audience import service as audiences
from console.auth import bp, login_required, page_arg, pager
from app.kernel import inputs
from app.kernel.clock import BUSINESS_TZ
from app.kernel.errors import DomainError
from app.kernel.permissions import can
from app.policies import content
from app.policies import authoring, reading, reminders
from app.policies.models import CATEGORY_LABELS, STATUS_LABELS
from app.storage import get_storage

STATS_FILTERS = {"": "全部", "unread": "未读", "unacked": "未确认"}


def parse_publish_at(value):
    """A China-time 'YYYY-MM-DDTHH:MM' (a datetime-local input) as an aware datetime."""
    try:
        return datetime.strptime((value or "").strip(), "%Y-%m-%dT%H:%M").replace(tzinfo=BUSINESS_TZ)
    except ValueError:
        raise inputs.invalid("publish_at", "发布时间格式应为 YYYY-MM-DD HH:MM") from None


@bp.get("/policies")
@login_required("policies.view")
def policies_list():
    args = request.args
    status, category = args.get("status") or None, args.get("category") or None
    if status and status not in STATUS_LABELS or category and category not in CATEGORY_LABELS:
        raise DomainError("invalid_filter", "筛选参数有误", 400)
    page = page_arg(args)
    q = args.get("q", "").strip()[:64] or None
    rows, total = reading.list_policies_for_staff(status=status, category=category, q=q, page=page)
    return render_template(
        "console/policies.html", rows=rows, total=total, status=status, category=category, q=q or "",
        status_labels=STATUS_LABELS, category_labels=CATEGORY_LABELS, may_edit=can(g.staff, "policies.edit"),
        **pager("console.policies_list", args, page, total, reading.STAFF_PAGE_SIZE),
    )


def _form_page(*, policy=None, values=None, audience=None, error=None, status=200):
    return render_template(
        "console/policy_form.html", policy=policy, values=values or {}, audience=audience, error=error,
        choices=audiences.form_choices(), category_labels=CATEGORY_LABELS, allowed_tags=sorted(content.TAGS),
        attachments=reading.current_attachments(policy) if policy is not None else [],
    ), status


def _files():
    return [(f.filename, f.read()) for f in request.files.getlist("files") if f and f.filename]


def _submitted():
    form = request.form
    return {k: form.get(k, "") for k in ("title", "category", "body", "effective_from", "effective_to", "ack_required")}


@bp.route("/policies/new", methods=["GET", "POST"])
@login_required("policies.edit")
def policy_new():
    if request.method == "GET":
        return _form_page(values={"category": "channel"})
    raw = _submitted()
    try:
        fields = authoring.parse_fields(request.form)
        audience = audiences.parse_form(request.form)
        policy = authoring.create_policy(staff=g.staff, fields=fields, audience=audience, files=_files())
    except DomainError as exc:
        if exc.status == 403:
            raise
        return _form_page(values=raw, audience=_audience_from_form(), error=exc.message, status=exc.status)
    flash(f"已保存草稿「{policy.title}」：可以立即发布或定时发布")
    return redirect(url_for("console.policy_detail", policy_id=policy.id))


def _audience_from_form():
    form = request.form
    return {"all": bool(form.get("audience_all")), "tiers": form.getlist("audience_tiers"),
            "regions": form.getlist("audience_regions"), "dealers": form.get("audience_dealers", "").split()}


@bp.route("/policies/<id:policy_id>/edit", methods=["GET", "POST"])
@login_required("policies.edit")
def policy_edit(policy_id):
    policy = reading.get_policy_for_staff(policy_id)
    if request.method == "GET":
        values = {"title": policy.title, "category": policy.category, "body": policy.body_html,
                  "effective_from": policy.effective_from.isoformat() if policy.effective_from else "",
                  "effective_to": policy.effective_to.isoformat() if policy.effective_to else "",
                  "ack_required": policy.ack_required}
        return _form_page(policy=policy, values=values, audience=audiences.load("policy", policy.id))
    raw = _submitted()
    removing = [int(v) for v in request.form.getlist("remove_attachment") if v.isascii() and v.isdigit() and len(v) < 15]
    try:
        fields = authoring.parse_fields(request.form)
        audience = audiences.parse_form(request.form)
        policy, version = authoring.update_policy(staff=g.staff, policy_id=policy_id, fields=fields, audience=audience,
                                                  files=_files(), remove_attachment_ids=removing)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _form_page(policy=policy, values=raw, audience=_audience_from_form(), error=exc.message,
                          status=exc.status)
    flash(f"已发布第 {version} 版，经销商将看到本次更新" if version else "已保存")
    return redirect(url_for("console.policy_detail", policy_id=policy_id))


@bp.get("/policies/<id:policy_id>")
@login_required("policies.view")
def policy_detail(policy_id):
    show = request.args.get("show", "")
    if show not in STATS_FILTERS:
        raise DomainError("invalid_filter", "筛选参数有误", 400)
    page = page_arg(request.args)
    stats = reading.policy_stats(policy_id, show=show, page=page)
    policy = stats["policy"]
    return render_template(
        "console/policy.html", p=policy, stats=stats, show=show, filters=STATS_FILTERS,
        audience_words=audiences.describe(stats["audience"]), status_labels=STATUS_LABELS,
        category_labels=CATEGORY_LABELS, attachments=reading.current_attachments(policy),
        versions=policy.versions, may_edit=can(g.staff, "policies.edit"),
        **pager("console.policy_detail", request.args, page, stats["total"], reading.STATS_PAGE_SIZE,
                policy_id=policy_id),
    )


@bp.get("/policies/<id:policy_id>/attachments/<id:attachment_id>")
@login_required("policies.view")
def policy_attachment(policy_id, attachment_id):
    attachment = reading.get_attachment_for_staff(policy_id, attachment_id)
    return redirect(get_storage().url_for(attachment.storage_key))


def _act(policy_id, action, done):
    try:
        result = action()
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash(done(result) if callable(done) else done)
    return redirect(url_for("console.policy_detail", policy_id=policy_id))


@bp.post("/policies/<id:policy_id>/publish")
@login_required("policies.edit")
def policy_publish(policy_id):
    return _act(policy_id, lambda: authoring.publish_policy(staff=g.staff, policy_id=policy_id),
                "已发布：受众内的经销商已收到通知")


@bp.post("/policies/<id:policy_id>/schedule")
@login_required("policies.edit")
def policy_schedule(policy_id):
    def action():
        at = parse_publish_at(request.form.get("publish_at"))
        return authoring.schedule_policy(staff=g.staff, policy_id=policy_id, publish_at=at)
    return _act(policy_id, action, "已设置定时发布，到时间后自动发布")


@bp.post("/policies/<id:policy_id>/unschedule")
@login_required("policies.edit")
def policy_unschedule(policy_id):
    return _act(policy_id, lambda: authoring.unschedule_policy(staff=g.staff, policy_id=policy_id),
                "已取消定时发布，政策回到草稿")


@bp.post("/policies/<id:policy_id>/withdraw")
@login_required("policies.edit")
def policy_withdraw(policy_id):
    return _act(policy_id, lambda: authoring.withdraw_policy(staff=g.staff, policy_id=policy_id,
                                                             reason=request.form.get("reason", "")),
                "已撤回：经销商不再能看到该政策")


@bp.post("/policies/<id:policy_id>/remind")
@login_required("policies.edit")
def policy_remind(policy_id):
    def done(result):
        reminded, skipped = result
        if not reminded:
            return ("没有需要提醒的经销商" if not skipped else
                    f"{skipped} 家经销商在 30 分钟内已提醒过，本次未重复发送")
        return f"已提醒 {reminded} 家经销商及其业务员" + (f"；{skipped} 家 30 分钟内已提醒过，未重复发送" if skipped else "")
    return _act(policy_id, lambda: reminders.remind_stragglers(staff=g.staff, policy_id=policy_id), done)
