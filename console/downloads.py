"""An Excel file as a download: the one response every console export answers with."""
from urllib.parse import quote

from flask import make_response

from app.imports.sheets import XLSX_MIME


def xlsx_download(data, filename, fallback):
    """`data` (.xlsx bytes) as an attachment named `filename` (UTF-8, RFC 5987), with the ASCII
    `fallback` name for old clients; never cached (it carries a brand's figures)."""
    response = make_response(data)
    response.headers["Content-Type"] = XLSX_MIME
    response.headers["Content-Disposition"] = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
    response.headers["Cache-Control"] = "no-store"
    return response
