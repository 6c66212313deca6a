"""Excel (.xlsx) import and export of price lists, stock, SKUs, dealers and monthly sales targets.

Each kind is a module with the same face: `TITLE`, `COLUMNS` (the one layout both export
and import use), `NOTES`, `EXPORT_PERMISSIONS`, `IMPORT_PERMISSIONS` (kernel
permissions a role needs, all of them), `export_workbook(staff=..., ...)`
and `import_file(staff=, data=, filename=, apply=, reason=)`. Shared reading, writing and
cell parsing live in `app.imports.sheets`.
"""
from app.imports import dealers, prices, skus, stock, targets
from app.kernel.permissions import can

KINDS = {"prices": prices, "stock": stock, "skus": skus, "dealers": dealers, "targets": targets}


def may_export(staff, module):
    return all(can(staff, p) for p in module.EXPORT_PERMISSIONS)


def may_import(staff, module):
    return all(can(staff, p) for p in module.IMPORT_PERMISSIONS)
