"""Console: the material library (营销物料). Admin and marketing upload, edit, publish and
withdraw; sales read (to know what their dealers get); other roles 403."""
from flask import current_app, flash, g, redirect, render_template, request, url_for

from app.audience import service as audience
from console.auth import bp, login_required, page_arg, pager
from app.kernel.errors import DomainError
from app.kernel.permissions import can
from app.materials import authoring, reading
from app.materials.files import FileIn, cover_url, file_url, thumb_url
from app.materials.models import KIND_LABELS, STATUS_LABELS
from app.storage.files import size_words

# Room for the multipart envelope around the files.
MULTIPART_OVERHEAD = 256 * 1024
_UPLOAD_ENDPOINTS = {"console.material_new", "console.material_update"}
FORM_FIELDS = ("title", "summary", "tags", "valid_from", "valid_to", "body_html", "link_url", "mp_appid", "mp_path")


@bp.before_app_request
def _allow_material_files():
    # Before the CSRF check reads the form: these two pages alone take bodies larger than
    # MAX_CONTENT_LENGTH — one main file and one cover image, each checked by kind later.
    if request.endpoint in _UPLOAD_ENDPOINTS and request.method == "POST":
        config = current_app.config
        largest = max(config["MATERIAL_IMAGE_MAX_BYTES"], config["MATERIAL_VIDEO_MAX_BYTES"],
                      config["MATERIAL_FILE_MAX_BYTES"])
        request.max_content_length = largest + config["MATERIAL_IMAGE_MAX_BYTES"] + MULTIPART_OVERHEAD


def _can_manage():
    return can(g.staff, "materials.edit")


def _upload(name):
    """A `FileIn` for a file field, or None when nothing was chosen."""
    storage = request.files.get(name)
    if storage is None or not storage.filename:
        return None
    return FileIn(data=storage.read(), filename=storage.filename)


def _submitted():
    form = request.form
    return {
        "values": {name: form.get(name, "") for name in FORM_FIELDS if name not in ("tags",)},
        "tags": form.get("tags", ""),
        "audience": audience.parse_form(form),
        "file": _upload("file"),
        "cover": _upload("cover"),
    }


def _limits():
    config = current_app.config
    return {"image": size_words(config["MATERIAL_IMAGE_MAX_BYTES"]), "video": size_words(config["MATERIAL_VIDEO_MAX_BYTES"]),
            "file": size_words(config["MATERIAL_FILE_MAX_BYTES"]), "thumb": config["MATERIAL_THUMBNAIL_PX"]}


@bp.get("/materials")
@login_required("materials.view")
def materials_list():
    args = request.args
    kind, status, validity = args.get("kind") or None, args.get("status") or None, args.get("validity") or None
    if (kind and kind not in KIND_LABELS or status and status not in STATUS_LABELS
            or validity and validity not in reading.VALIDITY_LABELS):
        raise DomainError("invalid_filter", "类型、状态或有效期参数有误", 400)
    filters = {"q": args.get("q", "").strip()[:64] or None, "kind": kind, "status": status, "validity": validity,
               "tag": args.get("tag", "").strip()[:16] or None}
    page = page_arg(args)
    rows, total = reading.list_materials(staff=g.staff, page=page, **filters)
    audiences = audience.load_many("material", [m.id for m, _ in rows])
    return render_template(
        "console/materials.html", rows=rows, total=total, filters=filters, kind_labels=KIND_LABELS,
        status_labels=STATUS_LABELS, validity_labels=reading.VALIDITY_LABELS, tags=reading.all_tags(), can_manage=_can_manage(),
        audience_words={mid: audience.describe(a) for mid, a in audiences.items()},
        thumbs={m.id: thumb_url(m) for m, _ in rows},
        **pager("console.materials_list", args, page, total, reading.STAFF_PAGE_SIZE),
    )


def _form(*, kind, material=None, values=None, chosen=None, error=None, status=200):
    if values is None:
        values = ({name: getattr(material, name) or "" for name in FORM_FIELDS if name != "tags"}
                  if material is not None else {})
        values["tags"] = " ".join(material.tags) if material is not None else ""
    if chosen is None and material is not None:
        chosen = audience.load("material", material.id)
    stats, sharers = (reading.share_stats(staff=g.staff, material_id=material.id) if material is not None
                      else (None, []))
    return render_template(
        "console/material_form.html", kind=kind, kind_labels=KIND_LABELS, status_labels=STATUS_LABELS,
        material=material, values=values, chosen=chosen, choices=audience.form_choices(), error=error,
        error_field=error.details.get("field") if error else None, can_manage=_can_manage(), limits=_limits(),
        urls={"thumb": thumb_url(material), "file": file_url(material),
              "download": file_url(material, download=True), "cover": cover_url(material)}
        if material is not None else {},
        audience_words=audience.describe(chosen) if isinstance(chosen, audience.Audience) and not chosen.empty else None,
        stats=stats, sharers=sharers,
    ), status


@bp.route("/materials/new", methods=["GET", "POST"])
@login_required("materials.edit")
def material_new():
    kind = request.values.get("kind") or None
    if kind is not None and kind not in KIND_LABELS:
        raise DomainError("invalid_filter", "素材类型有误", 400)
    if kind is None:
        return render_template("console/material_kinds.html", kind_labels=KIND_LABELS, limits=_limits())
    if request.method == "GET":
        return _form(kind=kind)
    try:
        sent = _submitted()
        material = authoring.create_material(staff=g.staff, kind=kind, audience=sent["audience"], tags=sent["tags"],
                                             file=sent["file"], cover=sent["cover"], **sent["values"])
    except DomainError as exc:
        if exc.status == 403:
            raise
        return _form(kind=kind, values=request.form, chosen=_chosen_again(), error=exc, status=exc.status)
    flash(f"已新建素材“{material.title}”（草稿）：确认无误后点“发布”，经销商才能看到")
    return redirect(url_for("console.material_detail", material_id=material.id))


def _chosen_again():
    """The audience as typed, to show the form again after an error (even an invalid one)."""
    form = request.form
    return {"all": bool(form.get("audience_all")), "tiers": form.getlist("audience_tiers"),
            "regions": form.getlist("audience_regions"), "dealers": form.get("audience_dealers", "").split()}


@bp.get("/materials/<int:material_id>")
@login_required("materials.view")
def material_detail(material_id):
    material = reading.get_material(staff=g.staff, material_id=material_id)
    return _form(kind=material.kind, material=material)


@bp.post("/materials/<int:material_id>")
@login_required("materials.edit")
def material_update(material_id):
    material = reading.get_material(staff=g.staff, material_id=material_id)
    try:
        sent = _submitted()
        material = authoring.update_material(staff=g.staff, material_id=material.id, audience=sent["audience"],
                                             tags=sent["tags"], file=sent["file"], cover=sent["cover"],
                                             **sent["values"])
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _form(kind=material.kind, material=material, values=request.form, chosen=_chosen_again(), error=exc,
                     status=exc.status)
    flash(f"素材“{material.title}”已保存")
    return redirect(url_for("console.material_detail", material_id=material.id))


@bp.post("/materials/<int:material_id>/publish")
@login_required("materials.edit")
def material_publish(material_id):
    return _transition(material_id, authoring.publish_material, "已发布：受众内的经销商在有效期内可以在小程序里看到")


@bp.post("/materials/<int:material_id>/withdraw")
@login_required("materials.edit")
def material_withdraw(material_id):
    return _transition(material_id, authoring.withdraw_material, "已撤回：经销商不再看到它")


def _transition(material_id, action, done):
    try:
        material = action(staff=g.staff, material_id=material_id)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash(f"素材“{material.title}”{done}")
    return redirect(url_for("console.material_detail", material_id=material_id))
