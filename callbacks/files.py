"""`GET /files/<key>?e=<expires>&s=<signature>`: a locally stored file, for whoever holds a
URL the app signed (`LocalStorage.url_for`). A missing, wrong or expired signature and an
unknown key all answer 404, so the route tells nothing about which keys exist. A URL signed
with a download name (`&d=<name>`) asks the browser to save the file under that name; a file
that is not an image is always a download (`app.storage.backends.serving_headers`)."""
from flask import Blueprint, has_request_context, request, send_file

from app.kernel.errors import NotFound
from app.storage import LocalStorage, get_storage
from app.storage.backends import KEY_PATTERN, content_type_of, serving_headers

bp = Blueprint("files", __name__)


def request_origin():
    """Where the current request came from ("http://localhost"), for absolute file and image
    URLs (`app.storage.absolute`); None outside a request."""
    return request.host_url.rstrip("/") if has_request_context() else None


@bp.get("/files/<path:key>")
def serve(key):
    storage = get_storage()
    if not isinstance(storage, LocalStorage) or not KEY_PATTERN.fullmatch(key):
        raise NotFound("文件不存在或链接已过期", "file_not_found")
    download_name = request.args.get("d") or None
    if not storage.verify(key, request.args.get("e"), request.args.get("s"), download_name=download_name):
        raise NotFound("文件不存在或链接已过期", "file_not_found")
    try:
        path = storage.path_of(key)
    except KeyError:
        raise NotFound("文件不存在或链接已过期", "file_not_found") from None
    response = send_file(path, mimetype=content_type_of(key), max_age=0, conditional=True)
    # The URL is a capability: keep it out of shared caches. Never let a browser sniff the
    # bytes as something else (e.g. HTML) or run anything in them.
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers.update(serving_headers(key, download_name))
    return response
