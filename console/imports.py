"""Console: Excel export and import of price lists, stock, SKUs, dealers and sales targets.

An upload is first checked and previewed (nothing written); the preview page carries the
file back (base64, re-checked in full) when the clerk confirms. A direct import (action
"import" with the file) does the same in one step. Every view checks its kind's roles.
"""
import base64
import binascii

from flask import g, render_template, request

from console.downloads import xlsx_download
from console.auth import bp, login_required
from app.errors import wants_json
from app.imports import KINDS, may_export, may_import, sheets
from app.imports.sheets import FileRejected, RowsRejected
from app.kernel import inputs
from app.kernel.clock import business_today
from app.kernel.errors import DomainError
from app.reports.months import month_text, parse_month

# The upload (base64 on confirm: 4/3 of the file) plus the form's small fields.
_UPLOAD_LIMIT = sheets.MAX_BYTES * 4 // 3 + 64 * 1024


@bp.before_app_request
def _allow_large_uploads():
    if request.method == "POST" and request.path.startswith("/console/imports/"):
        if (request.content_length or 0) > _UPLOAD_LIMIT:
            raise DomainError("import_file_too_large", f"文件太大：最大 {sheets.MAX_BYTES // (1024 * 1024)} MB", 413)
        request.max_content_length = _UPLOAD_LIMIT
        request.max_form_memory_size = _UPLOAD_LIMIT


def _require(module, may):
    if not may(g.staff, module):
        raise DomainError("forbidden", "你的角色无权访问此页面", 403)


def _download(data, stem):
    return xlsx_download(data, f"{stem}_{business_today():%Y%m%d}.xlsx", "export.xlsx")


def _page(status=200, **context):
    from app.imports import prices, stock

    staff = g.staff
    kinds = [(name, module) for name, module in KINDS.items() if may_export(staff, module) or may_import(staff, module)]
    return render_template(
        "console/imports.html", kinds=kinds,
        price_lists=prices.lists_for(staff) if may_export(staff, prices) else [],
        warehouses=stock.warehouses() if may_export(staff, stock) else [], may_export=may_export, may_import=may_import,
        max_rows=sheets.MAX_ROWS, max_mb=sheets.MAX_BYTES // (1024 * 1024), **context,
    ), status


@bp.get("/imports")
@login_required()
def imports():
    return _page()


# --- exports (one view per kind, each with its own roles) ------------------------------

def _int_arg(name, label):
    value = request.args.get(name, "")
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 15):
        raise DomainError("invalid_filter", f"{label}参数有误", 400)
    return int(value)


@bp.get("/imports/prices/export.xlsx")
@login_required()
def export_prices():
    _require(KINDS["prices"], may_export)
    list_id = _int_arg("list_id", "价格表")
    data = KINDS["prices"].export_workbook(staff=g.staff, list_id=list_id)
    return _download(data, f"价格表{list_id}" if list_id else "价格表")


@bp.get("/imports/stock/export.xlsx")
@login_required()
def export_stock():
    _require(KINDS["stock"], may_export)
    warehouse = request.args.get("warehouse", "").strip()[:32] or None
    data = KINDS["stock"].export_workbook(staff=g.staff, warehouse_code=warehouse)
    return _download(data, f"库存_{warehouse}" if warehouse else "库存")


@bp.get("/imports/skus/export.xlsx")
@login_required()
def export_skus():
    _require(KINDS["skus"], may_export)
    return _download(KINDS["skus"].export_workbook(staff=g.staff), "商品")


@bp.get("/imports/dealers/export.xlsx")
@login_required()
def export_dealers():
    _require(KINDS["dealers"], may_export)
    return _download(KINDS["dealers"].export_workbook(staff=g.staff), "经销商")


@bp.get("/imports/targets/export.xlsx")
@login_required()
def export_targets():
    _require(KINDS["targets"], may_export)
    month = parse_month(None)
    if request.args.get("month"):
        try:
            month = inputs.month(request.args["month"], field="month", label="月份")
        except DomainError as exc:
            raise DomainError("invalid_month", exc.message, 400) from None
    return _download(KINDS["targets"].export_workbook(staff=g.staff, month=month), f"销售目标_{month_text(month)}")


@bp.get("/imports/<kind>/template.xlsx")
@login_required()
def import_template(kind):
    module = KINDS.get(kind)
    if module is None:
        raise DomainError("not_found", "没有这种导入", 404)
    if not may_import(g.staff, module):
        raise DomainError("forbidden", "你的角色无权导入此类数据", 403)
    return _download(sheets.workbook_bytes(module.TITLE, module.COLUMNS, [], notes=module.NOTES), f"{module.TITLE}模板")


# --- imports --------------------------------------------------------------------------

def _uploaded():
    """(bytes, filename) from the file field, or from the preview's hidden payload."""
    payload = request.form.get("payload")
    if payload:
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise FileRejected("上传内容已损坏，请重新选择文件") from None
        return data, (request.form.get("filename") or "upload.xlsx")[:120]
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise FileRejected("请选择要导入的 Excel 文件（.xlsx）", "import_file_missing")
    data = upload.read(sheets.MAX_BYTES + 1)
    return data, upload.filename[:120]


def _run_import(kind):
    module = KINDS[kind]
    action = request.form.get("action", "preview")
    if action not in ("preview", "import"):
        raise DomainError("bad_request", "操作参数有误", 400)
    reason = request.form.get("reason", "").strip()[:200]
    filename = None
    try:
        data, filename = _uploaded()
        result = module.import_file(staff=g.staff, data=data, filename=filename,
                                    apply=action == "import", reason=reason)
    except (FileRejected, RowsRejected) as exc:
        if wants_json():
            raise
        return _page(exc.status, failed_kind=kind, failure=exc, filename=filename)
    payload = base64.b64encode(data).decode("ascii") if not result.applied else None
    return render_template("console/import_result.html", kind=kind, module=module, result=result,
                           payload=payload, reason=reason)


@bp.post("/imports/prices")
@login_required()
def import_prices():
    _require(KINDS["prices"], may_import)
    return _run_import("prices")


@bp.post("/imports/stock")
@login_required()
def import_stock():
    _require(KINDS["stock"], may_import)
    return _run_import("stock")


@bp.post("/imports/skus")
@login_required()
def import_skus():
    _require(KINDS["skus"], may_import)
    return _run_import("skus")


@bp.post("/imports/dealers")
@login_required()
def import_dealers():
    _require(KINDS["dealers"], may_import)
    return _run_import("dealers")


@bp.post("/imports/targets")
@login_required()
def import_targets():
    _require(KINDS["targets"], may_import)
    return _run_import("targets")
