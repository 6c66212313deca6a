"""File storage: uploaded photos and the like, kept outside the database.

`get_storage()` answers the backend the configuration names (`STORAGE_BACKEND`: `local`,
the default, or `s3`), built once per app. Only keys are stored in the database; URLs are
made on demand (`url_for`) and expire. See `app.storage.backends` for the interface.

A local file's URL is `/files/<key>?…`, served by the callbacks shell (`callbacks.files`),
which also tells storage where the current request came from (`serve_from`): inside a
request the URL is absolute (the mini-program's <image> needs a full URL), outside one
(a job, the CLI) it stays relative. The core itself never reads the request.
"""
from urllib.parse import urlencode

from flask import current_app

from app.storage.backends import LocalStorage, S3Storage, StorageError  # noqa: F401

_EXTENSION = "dinghuo_storage"
_ORIGIN = "dinghuo_request_origin"


def serve_from(app, origin):
    """Installed by the shell that serves `/files/`: `origin()` answers the current
    request's scheme and host (e.g. "https://dinghuo.example.com"), or None outside one."""
    app.extensions[_ORIGIN] = origin


def absolute(path):
    """A path on this site, made absolute when there is a request to take the host from."""
    origin = current_app.extensions.get(_ORIGIN)
    base = origin() if origin else None
    return base + path if base else path


def get_storage(app=None):
    app = app or current_app._get_current_object()
    storage = app.extensions.get(_EXTENSION)
    if storage is None:
        storage = app.extensions[_EXTENSION] = _build(app.config)
    return storage


def _build(config):
    ttl = config["STORAGE_URL_TTL_SECONDS"]
    if config["STORAGE_BACKEND"] == "s3":
        if not config.get("S3_BUCKET"):
            raise RuntimeError("STORAGE_BACKEND=s3 needs S3_BUCKET")
        return S3Storage(
            bucket=config["S3_BUCKET"], endpoint_url=config.get("S3_ENDPOINT_URL"),
            access_key=config.get("S3_ACCESS_KEY"), secret_key=config.get("S3_SECRET_KEY"),
            region=config.get("S3_REGION"), addressing_style=config.get("S3_ADDRESSING_STYLE", "auto"),
            ttl_seconds=ttl,
        )
    return LocalStorage(config["STORAGE_DIR"], secret=config["SECRET_KEY"], ttl_seconds=ttl, url_builder=_file_url)


def _file_url(key, expires, signature, download_name=None):
    # A download name travels as `d` (covered by the signature).
    params = {"e": expires, "s": signature, **({"d": download_name} if download_name else {})}
    return absolute(f"/files/{key}?{urlencode(params)}")
