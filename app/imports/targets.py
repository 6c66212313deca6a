"""Monthly sales targets in Excel: one row per (dealer, month); an import sets the targets.

The export lists every active dealer (code order) for one month, with its target when it has
one, so the usual work is: export the month, type the targets, import. A row with an empty
目标金额 is left as it is (an import never removes a target: the targets page does); a target
must be above 0 yuan. Every changed target goes through `app.reports.targets.set_sales_target`
(its check and its `sales_target.set` audit entry) in one transaction.
"""
from dataclasses import dataclass

from sqlalchemy import select

from app.dealers.models import Dealer
from app.extensions import db
from app.imports import sheets
from app.imports.result import Change, run_import
from app.imports.sheets import CellError, Column, Errors
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.kernel.permissions import require
from app.reports import targets
from app.reports.models import SalesTarget
from app.reports.months import month_text

KIND = "targets"
TITLE = "销售目标"
EXPORT_PERMISSIONS = ("reports.targets",)
IMPORT_PERMISSIONS = ("reports.targets",)

COLUMNS = (
    Column("dealer_code", "经销商编码", 14),
    Column("dealer_name", "经销商名称", 26, reference=True),
    Column("month", "月份", 10),
    Column("amount", "目标金额（元）", 16, required=True),
)

NOTES = (
    "销售目标导入说明",
    "· 每行是一家经销商一个月的订货目标；月份写成 2026-11，目标金额以元填写（最多两位小数，必须大于 0）。",
    "· 目标金额留空的行不做修改；导入不会删除已有目标，删除请在“销售目标”页面操作。",
    "· 同一经销商同一月份只能出现一次。任何一行有错，整个文件都不会导入；系统会列出每个错误的行号和原因。",
    "· 达成率 = 当月订货金额（不含已取消、已驳回的订单）÷ 目标；业务员的目标是其名下经销商目标之和。",
)


def export_workbook(*, staff, month):
    """Every active dealer with its target of `month` (a first day; empty when none)."""
    require(staff, "reports.targets")
    rows = db.session.execute(
        select(Dealer.code, Dealer.name, SalesTarget.amount_fen)
        .outerjoin(SalesTarget, (SalesTarget.dealer_id == Dealer.id) & (SalesTarget.month == month))
        .where(Dealer.status == "active").order_by(Dealer.code)
    ).all()
    out = [(code, name, month_text(month), sheets.yuan_decimal(fen) if fen is not None else None)
           for code, name, fen in rows]
    return sheets.workbook_bytes(TITLE, COLUMNS, out, notes=NOTES)


@dataclass
class _Row:
    number: int
    dealer_code: str
    month: object
    amount_fen: int


def _parse(sheet, errors):
    parsed = []
    for number, cells in sheet.rows:
        try:
            code = sheets.text(cells.get("dealer_code"), "经销商编码", max_len=32)
            first = sheets.month(cells.get("month"), "月份")
            raw = cells.get("amount")
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            fen = sheets.money_fen(raw, "目标金额")
            targets.check_amount_fen(fen)
        except CellError as exc:
            errors.add(number, str(exc))
            continue
        except DomainError as exc:
            errors.add(number, exc.message)
            continue
        parsed.append(_Row(number, code, first, fen))
    return parsed


def import_file(*, staff, data, filename, apply, reason=None):
    """Validate a targets workbook and, with `apply`, set every changed target in one
    transaction. Raises `FileRejected` / `RowsRejected` (unknown dealer, bad month or amount,
    duplicate dealer and month) and then writes nothing."""
    require(staff, "reports.targets", "你的角色无权导入销售目标")
    sheet = sheets.read_sheet(data, COLUMNS)
    errors = Errors()
    rows = _parse(sheet, errors)
    return run_import(staff=staff, kind=KIND, title=TITLE, filename=filename, sheet=sheet, apply=apply,
                      errors=errors, reason=reason or None,
                      work=lambda session, errors, result: _run(session, staff, rows, errors, result))


def _run(session, staff, rows, errors, result):
    codes = sorted({r.dealer_code for r in rows})
    dealers = {}
    for start in range(0, len(codes), 900):
        dealers.update({d.code: d for d in session.execute(
            select(Dealer.id, Dealer.code, Dealer.name).where(Dealer.code.in_(codes[start:start + 900])))})
    seen = {}
    current = {}
    for dealer_id, first, fen in session.execute(
            select(SalesTarget.dealer_id, SalesTarget.month, SalesTarget.amount_fen)
            .where(SalesTarget.dealer_id.in_([d.id for d in dealers.values()] or [0]))):
        current[(dealer_id, first)] = fen
    for row in rows:
        dealer = dealers.get(row.dealer_code)
        if dealer is None:
            errors.add(row.number, f"经销商编码“{row.dealer_code}”不存在")
            continue
        key = (dealer.id, row.month)
        if key in seen:
            errors.add(row.number, f"经销商 {row.dealer_code} 的 {month_text(row.month)} 目标与第 {seen[key]} 行重复")
            continue
        seen[key] = row.number
        before = current.get(key)
        if before == row.amount_fen:
            result.unchanged += 1
            continue
        targets.set_sales_target(staff=staff, dealer_code=row.dealer_code, month=row.month,
                                 amount_fen=row.amount_fen, session=session)
        result.add(Change(row.number, "create" if before is None else "update",
                          f"{dealer.code} {dealer.name} · {month_text(row.month)}",
                          before="" if before is None else format_yuan(before), after=format_yuan(row.amount_fen)))
