"""Uploads: check an image, store it re-encoded, record who it belongs to.

`save_upload` stores the bytes first and then writes the row; if the row cannot be written
the stored object is deleted again, so a failed upload leaves neither a row nor a file.
Rows are read back only through `dealer_uploads`, scoped by the caller's dealer.
"""
import hashlib
import logging

from flask import current_app
from sqlalchemy import select

from app.database import write_transaction
from app.dealers.access import check_may_act
from app.dealers.models import ORDERING_ROLES
from app.extensions import db
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError, NotFound
from app.storage import StorageError, get_storage
from app.storage.images import reencode
from app.storage.models import Upload

log = logging.getLogger(__name__)

UPLOADS = Upload.__table__


def too_large_error():
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    return DomainError("file_too_large", f"图片不能超过 {_size_words(limit)}，请压缩后再上传", 413, {"max_bytes": limit})


def _size_words(limit):
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MB"
    if limit < 1024 * 1024:
        return f"{max(limit // 1024, 1)} KB"
    return f"{limit / (1024 * 1024):.1f} MB"


def save_upload(*, user, data, prefix="uploads"):
    """Store an image for the user's dealer and return its `Upload` row.

    Raises 403 for a read-only user, 413 `file_too_large`, 422 `empty_file`,
    `unsupported_file_type` (not JPEG/PNG/WebP by its bytes), `invalid_image`
    (does not decode) or `image_too_large` (too many pixels); 503 `storage_unavailable`
    when the store cannot be reached. Nothing is stored when it raises.
    """
    if user.role not in ORDERING_ROLES:
        raise DomainError("forbidden_role", "您的账号为只读角色，不能上传图片", 403)
    config = current_app.config
    if not data:
        raise DomainError("empty_file", "上传的文件是空的", 422)
    if len(data) > config["UPLOAD_MAX_BYTES"]:
        raise too_large_error()
    # What is stored (and described: size, digest, dimensions) is the re-encoded image.
    image = reencode(data, max_pixels=config["UPLOAD_MAX_PIXELS"])
    content_type, width, height = image.content_type, image.width, image.height
    storage = get_storage()
    try:
        key = storage.put(image, content_type, prefix)
    except StorageError:
        log.exception("storing an upload failed")
        raise DomainError("storage_unavailable", "图片存储暂时不可用，请稍后重试", 503) from None
    try:
        with write_transaction() as session:
            check_may_act(session, user)
            upload = Upload(
                dealer_id=user.dealer_id, uploaded_by_id=user.id, storage_key=key, content_type=content_type,
                size=len(image), width=width, height=height, sha256=hashlib.sha256(image).hexdigest(),
                created_at=utcnow(),
            )
            session.add(upload)
    except BaseException:
        try:
            storage.delete(key)
        except Exception:
            log.exception("could not delete stored object %s after a failed upload", key)
        raise
    return upload


def dealer_uploads(session, *, dealer_id, upload_ids, lock=False):
    """{id: Upload} of those ids that belong to the dealer (others are simply absent)."""
    if not upload_ids:
        return {}
    query = select(Upload).where(Upload.dealer_id == dealer_id, Upload.id.in_(sorted(set(upload_ids))))
    if lock:
        query = query.with_for_update()
    return {u.id: u for u in session.execute(query).scalars()}


def get_upload(*, dealer_id, upload_id):
    """The dealer's own upload; another dealer's id answers 404."""
    upload = dealer_uploads(db.session, dealer_id=dealer_id, upload_ids=[upload_id]).get(upload_id)
    if upload is None:
        raise NotFound("图片不存在", "upload_not_found")
    return upload


def url_for(upload):
    """A URL that loads the upload's bytes; it expires (STORAGE_URL_TTL_SECONDS)."""
    return get_storage().url_for(upload.storage_key)


def describe(upload):
    return {
        "id": upload.id, "url": url_for(upload), "content_type": upload.content_type, "size": upload.size,
        "width": upload.width, "height": upload.height, "created_at": upload.created_at,
    }
