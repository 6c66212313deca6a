"""Console: customer groups (sync from WeCom, map to dealers) and campaigns to them (create,
plan, schedule, send, cancel, results). Rules live in `app.campaigns`; form parsing and the
detail page's view in `console.campaign_pages`."""
from datetime import datetime

from flask import current_app, flash, g, redirect, render_template, request, url_for

from app.audience import service as audiences
from app.campaigns import groups as customer_groups
from app.campaigns import limits, reading, results, sending
from app.campaigns.authoring import MAX_ATTACHMENTS, check_attachments, create_campaign
from app.campaigns.models import (
    ATTACHMENT_LABELS,
    CAMPAIGN_STATUS_LABELS,
    CAMPAIGN_STATUSES,
    GROUP_STATUS_LABELS,
    OWNER_STATUS_LABELS,
    SENDER_STATUS_LABELS,
    TARGET_STATUS_LABELS,
)
from console.auth import bp, id_arg, login_required, page_arg, pager
from console.campaign_pages import campaign_view, form_lines, parse_material_ids
from app.kernel.clock import BUSINESS_TZ
from app.kernel.errors import DomainError

MULTIPART_OVERHEAD = 64 * 1024


@bp.before_app_request
def _allow_campaign_images():
    """The new-campaign form alone takes bodies above MAX_CONTENT_LENGTH: its images (up to 9
    and a cover, each at most UPLOAD_MAX_BYTES)."""
    if request.method == "POST" and request.path == "/console/campaigns/new":
        limit = (MAX_ATTACHMENTS + 1) * current_app.config["UPLOAD_MAX_BYTES"] + MULTIPART_OVERHEAD
        if (request.content_length or 0) > limit:
            raise DomainError("upload_too_large", "上传的图片太大或太多，请压缩或减少图片后再保存", 413)
        request.max_content_length = limit


# --- customer groups -------------------------------------------------------------------


@bp.get("/groups")
@login_required("groups.view")
def groups():
    args = request.args
    page = page_arg(args)
    mapped = args.get("mapped") or None
    status = args.get("status", "active")
    if mapped not in (None, "yes", "no") or status not in ("", "active", "dismissed"):
        raise DomainError("invalid_filter", "筛选参数有误", 400)
    filters = {"q": args.get("q", "").strip()[:64] or None, "owner": args.get("owner", "").strip()[:64] or None,
               "mapped": mapped, "status": status or None, "dealer_id": id_arg(args.get("dealer", ""), "经销商")}
    rows, total = customer_groups.list_groups(page=page, **filters)
    dealers = customer_groups.dealer_choices()
    from app.extensions import db

    return render_template(
        "console/groups.html", rows=rows, total=total, filters={**filters, "status": status},
        dealers=dealers, suggestions={r.id: customer_groups.suggest_dealer(r.name, dealers) for r in rows if not r.dealer_id},
        owners=customer_groups.owner_names(db.session, {r.owner_userid for r in rows}),
        status_labels=GROUP_STATUS_LABELS, owner_status_labels=OWNER_STATUS_LABELS,
        remaining=limits.remaining_this_month(db.session, [r.id for r in rows]), limit=limits.monthly_limit(),
        **pager("console.groups", args, page, total, customer_groups.GROUP_PAGE_SIZE),
    )


@bp.post("/groups/sync")
@login_required("groups.view")
def groups_sync():
    from app.integrations.wechat_errors import WeChatError

    try:
        result = customer_groups.sync_groups(actor=g.staff)
    except WeChatError as exc:
        flash(f"同步失败：企业微信返回 {exc.errcode}（{exc.errmsg}），请检查客户联系权限后重试", "error")
    else:
        flash(f"已同步 {result['owners']} 位业务员的 {result['groups']} 个客户群：新增 {result['new']} 个，"
              f"标记解散 {result['dismissed']} 个")
    return redirect(url_for("console.groups"))


@bp.post("/groups/<id:group_id>/dealer")
@login_required("groups.view")
def group_map(group_id):
    try:
        group = customer_groups.map_group(staff=g.staff, group_id=group_id, dealer_code=request.form.get("dealer", ""))
    except DomainError as exc:
        if exc.status != 422:
            raise
        flash(exc.message, "error")
    else:
        flash(f"客户群「{group.name}」" + (f"已对应到经销商 {group.dealer.code} {group.dealer.name}"
                                         if group.dealer else "已取消对应"))
    return redirect(request.form.get("back") if (request.form.get("back") or "").startswith("/console/groups")
                    else url_for("console.groups"))


# --- campaigns ---------------------------------------------------------------------------

@bp.get("/campaigns")
@login_required("campaigns.edit")
def campaign_list():
    args = request.args
    status = args.get("status") or None
    if status and status not in CAMPAIGN_STATUSES:
        raise DomainError("invalid_filter", "状态参数有误", 400)
    page = page_arg(args)
    rows, total = reading.list_campaigns(status=status, page=page)
    return render_template("console/campaigns.html", rows=rows, total=total, status=status,
                           status_labels=CAMPAIGN_STATUS_LABELS,
                           **pager("console.campaign_list", args, page, total, reading.CAMPAIGN_PAGE_SIZE))


def _form_page(values=None, errors=None, status=200, audience=None):
    from app.materials.reading import list_materials

    usable, _ = list_materials(staff=g.staff, status="published", validity="current", page_size=100)
    return render_template("console/campaign_form.html", values=values or {}, errors=errors or {},
                           choices=audiences.form_choices(), audience=audience, materials=[m for m, _ in usable],
                           max_attachments=MAX_ATTACHMENTS), status


@bp.route("/campaigns/new", methods=["GET", "POST"])
@login_required("campaigns.edit")
def campaign_new():
    if request.method == "GET":
        return _form_page()
    form = request.form
    values = {k: form.get(k, "") for k in ("title", "text", "links", "miniprograms", "materials")}
    audience = None
    try:
        audience = audiences.parse_form(form)
        images = [(f.filename or "image", f.read()) for f in request.files.getlist("images") if f and f.filename]
        cover = request.files.get("cover")
        attachments = check_attachments(
            links=form_lines(values["links"]), miniprograms=form_lines(values["miniprograms"]), images=images,
            cover=(cover.filename, cover.read()) if cover and cover.filename else None,
            material_ids=parse_material_ids(values["materials"]))
        campaign = create_campaign(staff=g.staff, title=values["title"], text=values["text"],
                                   audience=audience, attachments=attachments)
    except DomainError as exc:
        if exc.status != 422:
            raise
        flash(exc.message, "error")
        return _form_page(values, exc.details, 422, audience=audience or _raw_audience(form))
    flash(f"已保存群发「{campaign.title}」（草稿）：请核对下方的发送计划，然后立即发送或定时发送")
    return redirect(url_for("console.campaign_detail", campaign_id=campaign.id))


def _raw_audience(form):
    return {"all": bool(form.get("audience_all")), "tiers": form.getlist("audience_tiers"),
            "regions": form.getlist("audience_regions"), "dealers": form.get("audience_dealers", "").split()}


def _detail(campaign_id, status=200):
    campaign = reading.get_campaign(campaign_id)
    return render_template(
        "console/campaign.html", c=campaign, view=campaign_view(campaign),
        status_labels=CAMPAIGN_STATUS_LABELS, sender_labels=SENDER_STATUS_LABELS, target_labels=TARGET_STATUS_LABELS,
        attachment_labels=ATTACHMENT_LABELS,
    ), status


@bp.get("/campaigns/<id:campaign_id>")
@login_required("campaigns.edit")
def campaign_detail(campaign_id):
    return _detail(campaign_id)


def _act(campaign_id, action, done):
    try:
        result = action()
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise
        flash(exc.message, "error")
        return _detail(campaign_id, exc.status)
    flash(done(result) if callable(done) else done)
    return redirect(url_for("console.campaign_detail", campaign_id=campaign_id))


@bp.post("/campaigns/<id:campaign_id>/send")
@login_required("campaigns.edit")
def campaign_send(campaign_id):
    return _act(campaign_id, lambda: sending.send_now(staff=g.staff, campaign_id=campaign_id),
                "已创建群发任务：业务员会在企业微信收到确认提醒，确认后才会真正发到客户群")


@bp.post("/campaigns/<id:campaign_id>/schedule")
@login_required("campaigns.edit")
def campaign_schedule(campaign_id):
    raw = request.form.get("scheduled_at", "").strip()

    def action():
        try:
            at = datetime.strptime(raw.replace("T", " "), "%Y-%m-%d %H:%M").replace(tzinfo=BUSINESS_TZ)
        except ValueError:
            raise DomainError("invalid_field", "定时发送时间格式应为 YYYY-MM-DD HH:MM", 422) from None
        return sending.schedule_campaign(staff=g.staff, campaign_id=campaign_id, at=at)

    return _act(campaign_id, action, lambda c: f"已定时：{c.scheduled_at.astimezone(BUSINESS_TZ):%Y-%m-%d %H:%M} 自动下发群发任务")


@bp.post("/campaigns/<id:campaign_id>/cancel")
@login_required("campaigns.edit")
def campaign_cancel(campaign_id):
    return _act(campaign_id, lambda: sending.cancel_campaign(staff=g.staff, campaign_id=campaign_id,
                                                             reason=request.form.get("reason")),
                lambda r: "已取消" + (f"：停止了 {r['stopped']} 个业务员未确认的任务" if r["stopped"] else "")
                + (f"；{r['failed']} 个任务停止失败，请稍后重试" if r["failed"] else ""))


@bp.post("/campaigns/<id:campaign_id>/poll")
@login_required("campaigns.edit")
def campaign_poll(campaign_id):
    reading.get_campaign(campaign_id)
    return _act(campaign_id, lambda: results.poll_campaign(campaign_id), "已向企业微信查询最新发送结果")


@bp.post("/campaigns/<id:campaign_id>/senders/<id:sender_id>/retry")
@login_required("campaigns.edit")
def campaign_retry(campaign_id, sender_id):
    return _act(campaign_id, lambda: sending.retry_sender(staff=g.staff, sender_id=sender_id),
                "已重新为该业务员创建群发任务")
