"""Dealers in Excel: one row per dealer; an import creates new codes and updates existing ones.

Cells are read by the dealers domain's own `typed.dealer_fields_from_text` and each row goes through
`admin.create_dealer` / `admin.update_dealer` (their checks, role rules — finance may change payment terms
and credit, a rep the contacts of their own dealers — and audit entries), all inside one
transaction: a bad row anywhere and nothing is kept.
"""
from sqlalchemy import select

from app.dealers import admin, typed
from app.dealers.access import scope_to_staff
from app.dealers.addresses import region_texts
from app.dealers.fields import FIELD_LABELS
from app.dealers.models import DEALER_STATUS_LABELS, Dealer, Region, Tier
from app.extensions import db
from app.funds.models import CreditAccount
from app.imports import sheets
from app.imports.result import Change, run_import
from app.imports.sheets import CellError, Column
from app.kernel.errors import DomainError
from app.staff.models import Staff

KIND = "dealers"
TITLE = "经销商"
EXPORT_PERMISSIONS = ("dealers.view",)
IMPORT_PERMISSIONS = ("dealers.edit",)  # the service refuses, row by row, what a role may not change

# key: the service's field name (amounts in yuan as `dealer_fields_from_text` reads them)
COLUMNS = (
    Column("code", "经销商编码", 12),
    Column("name", "经销商名称", 28),
    Column("tier", "等级", 10),
    Column("region_code", "地区编码", 10),
    Column("region_name", "地区名称", 12, reference=True),
    Column("rep", "业务员", 12),
    Column("contact_name", "联系人", 10),
    Column("contact_phone", "联系电话", 14),
    Column("payment_terms_days", "账期（天）", 10),
    Column("contract_start", "合同开始日期", 12),
    Column("contract_end", "合同结束日期", 12),
    Column("annual_target", "年度目标（元）", 14),
    Column("credit_limit", "信用额度（元）", 14),
    Column("status", "状态", 8, reference=True),
)
_FIELDS = [c.key for c in COLUMNS if not c.reference]

NOTES = (
    "经销商导入说明",
    "· 每行一个经销商。经销商编码已存在的行修改该经销商（编码不能改），不存在的行新建（仅管理员）。",
    "· 等级填等级编码（如 gold）；地区编码为 6 位国标编码（如 440300）；业务员填其登录用户名，可留空。",
    "· 金额（年度目标、信用额度）按“元”填写，如 50000、¥1,234.50、50万；最多两位小数，不四舍五入。",
    "· 财务只能修改账期和信用额度，业务员只能修改自己经销商的联系人和电话；其他列与现有值相同即可。",
    "· 状态一列只供参考：暂停或恢复经销商请在经销商页面操作。",
    "· 任何一行有错，整个文件都不会导入；系统会列出每个错误的行号和原因。",
)


def export_rows(*, staff):
    query = scope_to_staff(
        select(Dealer, Tier.code, Staff.username, CreditAccount.credit_limit_fen)
        .join(Tier, Tier.id == Dealer.tier_id)
        .join(Region, Region.code == Dealer.region_code)
        .outerjoin(Staff, Staff.id == Dealer.rep_id)
        .outerjoin(CreditAccount, CreditAccount.dealer_id == Dealer.id)
        .order_by(Dealer.code),
        staff,
    ).execution_options(yield_per=sheets.EXPORT_BATCH)
    # Regions as people write them ("上海市", not GB/T's "市辖区"), every code in use named once.
    regions = region_texts(db.session.execute(select(Dealer.region_code).distinct()).scalars())
    for dealer, tier_code, rep, limit_fen in db.session.execute(query):
        yield (
            dealer.code, dealer.name, tier_code, dealer.region_code, regions[dealer.region_code], rep or "", dealer.contact_name or "",
            dealer.contact_phone or "", dealer.payment_terms_days, dealer.contract_start, dealer.contract_end,
            None if dealer.annual_target_fen is None else sheets.yuan_decimal(dealer.annual_target_fen),
            sheets.yuan_decimal(limit_fen or 0), DEALER_STATUS_LABELS.get(dealer.status, dealer.status),
        )


def export_workbook(*, staff):
    return sheets.workbook_file(TITLE, COLUMNS, export_rows(staff=staff), notes=NOTES)


def import_file(*, staff, data, filename, apply, reason=None):
    """Validate a dealer workbook and, with `apply`, import it in one transaction (a preview runs
    the same and rolls back). Raises `FileRejected` / `RowsRejected` (every bad row) and then
    writes nothing. The dealer service audits each created or changed dealer and credit limit."""
    sheet = sheets.read_sheet(data, COLUMNS)
    why = (reason or "").strip()[:200] or f"Excel 导入：{filename}"[:200]
    return run_import(staff=staff, kind=KIND, title=TITLE, filename=filename, sheet=sheet, apply=apply,
                      work=lambda session, errors, result: _run(session, staff, sheet, errors, result, why))


def _snapshot(session, dealer_id):
    return admin.snapshot(session, session.get(Dealer, dealer_id)) | {
        "credit_limit_fen": session.get(CreditAccount, dealer_id).credit_limit_fen
        if session.get(CreditAccount, dealer_id) else 0
    }


def _run(session, staff, sheet, errors, result, reason):
    existing = {code: id_ for id_, code in session.execute(select(Dealer.id, Dealer.code))}
    seen = {}
    for number, cells in sheet.rows:
        raw = {key: cells.get(key) for key in _FIELDS if key in cells}
        try:
            fields = typed.dealer_fields_from_text(raw)
        except DomainError as exc:
            errors.add(number, exc.message)
            continue
        code = (fields.get("code") or "").upper()
        if not code:
            errors.add(number, "经销商编码不能为空")
            continue
        if code in seen:
            errors.add(number, f"经销商编码“{code}”与第 {seen[code]} 行重复")
            continue
        seen[code] = number
        try:
            dealer_id = existing.get(code)
            if dealer_id is None:
                dealer = admin.create_dealer(staff=staff, session=session, reason=reason, **fields)
                result.add(Change(number, "create", f"{dealer.code} {dealer.name}"))
            else:
                fields.pop("code")
                before = _snapshot(session, dealer_id)
                dealer = admin.update_dealer(staff=staff, code=code, session=session, reason=reason, **fields)
                session.flush()
                after = _snapshot(session, dealer_id)
                old = {k: v for k, v in before.items() if after.get(k) != v}
                if old:
                    result.add(Change(number, "update", f"{dealer.code} {dealer.name}", before=_describe(old),
                                      after=_describe({k: after[k] for k in old})))
                else:
                    result.unchanged += 1
        except DomainError as exc:
            errors.add(number, exc.message)
        except CellError as exc:
            errors.add(number, str(exc))
    session.flush()


def _describe(values):
    shown = []
    for key, value in values.items():
        if key.endswith("_fen") and value is not None:
            value = sheets.yuan_decimal(value)
        shown.append(f"{FIELD_LABELS.get(key, key)}：{value if value not in (None, '') else '—'}")
    return "，".join(shown)
