"""An Excel file as a download: the one response every console export answers with."""
from urllib.parse import quote

from flask import make_response, send_file

from app.imports.sheets import XLSX_MIME


def xlsx_download(data, filename, fallback):
    """`data` (.xlsx bytes, or an open file such as `sheets.workbook_file` returns, streamed in
    chunks and closed when sent) as an attachment named `filename` (UTF-8, RFC 5987), with the
    ASCII `fallback` name for old clients; never cached (it carries a brand's figures)."""
    if isinstance(data, (bytes, bytearray)):
        response = make_response(data)
    else:
        response = send_file(data, mimetype=XLSX_MIME, etag=False, conditional=False, max_age=None)
    response.headers["Content-Type"] = XLSX_MIME
    response.headers["Content-Disposition"] = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
    response.headers["Cache-Control"] = "no-store"
    return response
