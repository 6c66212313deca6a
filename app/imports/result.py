"""What an import did (or, in a preview, would do): counts and the list of changes."""
from dataclasses import dataclass, field

from app.audit import service as audit
from app.database import write_transaction
from app.imports.sheets import Errors, RowsRejected


@dataclass
class Change:
    row: int            # the Excel row number
    action: str         # "create" | "update"
    label: str          # what changed, for people: "金牌价 · SKU-COLA 可乐"
    before: str = ""
    after: str = ""


@dataclass
class ImportResult:
    kind: str
    filename: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    applied: bool = False
    changes: list = field(default_factory=list)
    ignored_headers: list = field(default_factory=list)

    def add(self, change):
        self.changes.append(change)
        if change.action == "create":
            self.created += 1
        else:
            self.updated += 1

    def summary(self):
        return {"file": self.filename, "rows": self.rows, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged}


def record_summary(session, *, staff, result, label, reason=None):
    """One `import` entry for the whole file (the changes themselves have entries of their own)."""
    audit.record(
        session, actor=staff, action="import", entity_type="import", entity_id=result.kind,
        label=f"{label}：{result.filename}"[:128], after=result.summary(), reason=reason,
    )


def run_import(*, staff, kind, title, filename, sheet, apply, work, errors=None, reason=None):
    """The one transaction every Excel import runs in: `work(session, errors, result)` makes the
    changes through the domains' services and records bad rows in `errors` (the same `Errors`
    the caller's parsing filled, if it parsed first). Any bad row raises `RowsRejected` and
    nothing is written; a preview (`apply` false) rolls back and returns what would change; an
    applied file gets one `import` audit entry (with `reason`, when the kind keeps one)."""
    errors = Errors() if errors is None else errors
    result = ImportResult(kind=kind, filename=filename, rows=len(sheet.rows), ignored_headers=sheet.ignored_headers)
    with write_transaction() as session:
        work(session, errors, result)
        if errors:
            raise RowsRejected(errors.items, result.rows)
        if not apply:
            session.rollback()
            return result
        record_summary(session, staff=staff, result=result, label=title, reason=reason)
        result.applied = True
    return result
