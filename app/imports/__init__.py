"""Excel (.xlsx) import and export of price lists, stock, SKUs and dealers.

Each kind is a module with the same face: `TITLE`, `COLUMNS` (the one layout both export
and import use), `NOTES`, `EXPORT_ROLES`, `IMPORT_ROLES`, `export_workbook(staff=..., ...)`
and `import_file(staff=, data=, filename=, apply=, reason=)`. Shared reading, writing and
cell parsing live in `app.imports.sheets`.
"""
from app.imports import dealers, prices, skus, stock

KINDS = {"prices": prices, "stock": stock, "skus": skus, "dealers": dealers}
