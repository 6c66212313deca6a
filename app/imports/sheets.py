"""Reading and writing the one-sheet workbooks of Excel import and export.

Every kind (price lists, stock, SKUs, dealers) declares its columns once (`Column`); the
export writes exactly those headers and the import accepts exactly those headers, so a
file exported, edited and imported again round-trips.

Cells are parsed by the kernel's input kinds (`app.kernel.inputs`, `cell=True`) through small
functions that raise `CellError` with a Chinese reason; the caller collects every bad row
(row number as Excel shows it) before deciding anything. Money never passes through a float
into fen: see `money_fen`.
"""
import io
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.kernel import inputs
from app.kernel.errors import DomainError

MAX_BYTES = 5 * 1024 * 1024          # the uploaded .xlsx file
MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # what the zip unpacks to (guards against zip bombs)
MAX_ROWS = 20_000                     # data rows, header excluded
MAX_ERRORS_SHOWN = 500
EXPORT_BATCH = 2000                    # rows an export reads from the database at a time

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    width: int = 14
    required: bool = True       # the header must be present in an imported file
    reference: bool = False     # exported for people to read; ignored on import


class CellError(ValueError):
    """A cell's value is not acceptable; the message (Chinese) says why."""


class FileRejected(DomainError):
    """The file as a whole cannot be imported (not an xlsx, headers, size, empty)."""

    def __init__(self, message, code="import_file_invalid"):
        super().__init__(code, message, 400)


class RowsRejected(DomainError):
    """Some rows are bad; nothing was imported. `details["errors"]`: [{row, message}]."""

    def __init__(self, errors, total_rows):
        errors = sorted(errors, key=lambda e: (e["row"], e["message"]))
        super().__init__(
            "import_rows_invalid",
            f"共 {len(errors)} 处错误，整个文件（{total_rows} 行）都没有导入，没有做任何修改；请改正后重新上传",
            422,
            {"errors": errors[:MAX_ERRORS_SHOWN], "error_count": len(errors), "rows": total_rows},
        )


class Errors:
    """Bad rows, collected so that every problem is reported at once."""

    def __init__(self):
        self.items = []

    def add(self, row, message):
        self.items.append({"row": row, "message": message})

    def __bool__(self):
        return bool(self.items)


# --- reading ------------------------------------------------------------------------

@dataclass
class Sheet:
    rows: list          # [(excel row number, {column key: raw cell value})]
    ignored_headers: list


def _clean_header(value):
    return re.sub(r"\s+", "", str(value)) if value is not None else ""


def read_sheet(data, columns, *, max_rows=MAX_ROWS, max_bytes=MAX_BYTES):
    """The data rows of the first worksheet of the .xlsx `data`, by column key.

    Raises `FileRejected` (Chinese message) for a file that is not an .xlsx workbook, is too
    large, lacks a required header, repeats a header, has no data rows or more than
    `max_rows`. Fully blank rows are skipped; row numbers are the ones Excel shows.
    """
    import openpyxl  # imported here: only imports and exports need it

    if not data:
        raise FileRejected("请选择要导入的 Excel 文件（.xlsx）", "import_file_missing")
    if len(data) > max_bytes:
        raise FileRejected(f"文件太大：最大 {max_bytes // (1024 * 1024)} MB", "import_file_too_large")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise FileRejected("文件不是 Excel 工作簿（.xlsx）。旧版 .xls 或 CSV 请先在 Excel 里另存为 .xlsx", "import_not_xlsx")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise FileRejected("文件内容太大，无法导入", "import_file_too_large")
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except FileRejected:
        raise
    except Exception:  # openpyxl raises many kinds for a broken or foreign zip
        raise FileRejected("文件无法作为 Excel 工作簿（.xlsx）打开，可能已损坏", "import_not_xlsx") from None
    try:
        return _read_rows(workbook.worksheets[0], columns, max_rows)
    except (FileRejected, IndexError) as exc:
        if isinstance(exc, IndexError):
            raise FileRejected("工作簿里没有工作表", "import_empty") from None
        raise
    except Exception:
        raise FileRejected("文件无法作为 Excel 工作簿（.xlsx）读取，可能已损坏", "import_not_xlsx") from None
    finally:
        workbook.close()


def _read_rows(sheet, columns, max_rows):
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None or not any(_clean_header(v) for v in header):
        raise FileRejected("第一个工作表是空的：第 1 行应为表头，从第 2 行起是数据", "import_empty")
    by_header = {_clean_header(c.header): c for c in columns}
    positions, seen, ignored = {}, set(), []
    for index, value in enumerate(header):
        name = _clean_header(value)
        if not name:
            continue
        if name in seen:
            raise FileRejected(f"表头“{name}”出现了两次", "import_bad_headers")
        seen.add(name)
        column = by_header.get(name)
        if column is None:
            ignored.append(name)
        elif not column.reference:
            positions[column.key] = index
    missing = [c.header for c in columns if c.required and not c.reference and c.key not in positions]
    if missing:
        raise FileRejected(
            "表头不对，缺少列：" + "、".join(missing)
            + "。请先导出（或下载模板）再在导出的文件上修改，第 1 行表头不要改动", "import_bad_headers",
        )
    data_rows = []
    for number, values in enumerate(rows, start=2):
        if values is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        if len(data_rows) >= max_rows:
            raise FileRejected(f"数据行太多：一次最多导入 {max_rows} 行，请分成几个文件", "import_too_many_rows")
        data_rows.append((number, {key: values[i] if i < len(values) else None for key, i in positions.items()}))
    if not data_rows:
        raise FileRejected("文件里没有数据行（第 2 行起为数据）", "import_empty")
    return Sheet(rows=data_rows, ignored_headers=ignored)


# --- cells ----------------------------------------------------------------------------
#
# The kinds are the kernel's (`app.kernel.inputs`, read with `cell=True`); here their refusal
# becomes a CellError carrying the same Chinese message.

def _cell(parse, value, **kw):
    try:
        return parse(value, field=None, cell=True, **kw)
    except DomainError as exc:
        raise CellError(exc.message) from None


def text(value, label, *, max_len, required=True):
    """A stripped string; numbers typed into a text column (e.g. a code 1001) become text."""
    return _cell(inputs.text, value, label=label, max_len=max_len, required=required)


def money_fen(value, label="价格"):
    """Yuan in a cell → integer fen, exactly, by the one rule for typed money
    (`app.kernel.money.parse_yuan`: "12.50", "¥1,234.00", "8 元", "50万"; at most two decimals — never
    rounded —, not negative). A float cell is read as the 15 significant digits Excel shows.
    """
    return _cell(inputs.yuan, value, label=label)


def integer(value, label, *, minimum=0, maximum=10**12, required=True, default=None):
    """A whole number; "1,200" and 1200.0 are fine, 12.5 is not."""
    return _cell(inputs.integer, value, label=label, minimum=minimum, maximum=maximum, required=required,
                 default=default)


def day(value, label, *, required=True):
    """A calendar date: a date cell, or text 2026-11-26 / 2026/11/26 / 2026年11月26日."""
    return _cell(inputs.day, value, label=label, required=required)


def month(value, label, *, required=True):
    """A calendar month (its first day): a date cell, or text 2026-11 / 2026/11 / 2026年11月."""
    return _cell(inputs.month, value, label=label, required=required)


def choice(value, label, options):
    """One of `options` ({shown text: stored value}); the stored value itself is accepted too."""
    return _cell(inputs.choice_by_label, value, label=label, options=options)


# --- writing --------------------------------------------------------------------------

def yuan_decimal(fen):
    """Integer fen → Decimal yuan with two places, no float on our side (openpyxl writes the cell
    with "%.16g", exact for any amount below 10^14 yuan)."""
    return Decimal(int(fen)).scaleb(-2)


def workbook_file(title, columns, rows, *, notes=()):
    """An .xlsx with one sheet: bold headers, then `rows` (tuples in `columns` order), written to
    a temporary file returned at position 0 (deleted when closed). `rows` is consumed one row at a
    time (openpyxl's write-only mode spools them to disk), so an export of 100,000 rows takes no
    more memory than one of ten.

    Decimal cells get a two-decimal format, dates `yyyy-mm-dd`. `notes` (lines of Chinese)
    go on a second sheet "说明", which imports ignore.
    """
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"
    bold, grey = Font(bold=True), PatternFill("solid", fgColor="DDDDDD")
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=column.header)
        cell.font = bold
        if column.reference:
            cell.fill = grey
        header.append(cell)
    sheet.append(header)
    for row in rows:
        out = []
        for value in row:
            if isinstance(value, Decimal):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "0.00"
                out.append(cell)
            elif isinstance(value, date):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "yyyy-mm-dd"
                out.append(cell)
            else:
                out.append(value)
        sheet.append(out)
    if notes:
        info = workbook.create_sheet("说明")
        info.column_dimensions["A"].width = 100
        for line in notes:
            info.append([line])
    out = tempfile.TemporaryFile()
    try:
        workbook.save(out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def workbook_bytes(title, columns, rows, *, notes=()):
    """`workbook_file` read into memory: for the small workbooks (templates, a dashboard table)."""
    with workbook_file(title, columns, rows, notes=notes) as out:
        return out.read()
