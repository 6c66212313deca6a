"""The material's files: checked (type from the bytes, size by kind), stored, deleted again
when a save fails, and served as signed, expiring URLs."""
import logging
import re
from dataclasses import dataclass

from flask import current_app

from app.kernel import inputs
from app.kernel.errors import DomainError
from app.materials.models import KIND_LABELS
from app.storage import StorageError, get_storage
from app.storage import files as storage_files
from app.storage.backends import EXTENSIONS
from app.storage.images import inspect_image

log = logging.getLogger(__name__)

STORAGE_PREFIX = "materials"

# Which kinds carry which parts.
FILE_KINDS = ("image", "poster", "video", "file")
IMAGE_KINDS = ("image", "poster")
COVER_KINDS = ("video", "file", "article", "link", "miniprogram")


@dataclass(frozen=True)
class FileIn:
    """An uploaded file as the console received it: its bytes and the name it had."""

    data: bytes
    filename: str = ""


@dataclass
class _Checked:
    data: bytes
    content_type: str
    filename: str
    width: int | None = None
    height: int | None = None


def _file_name(upload, content_type):
    """A download name: the uploaded name without any directory, with the extension the
    bytes say (a PDF named report.docx downloads as report.pdf)."""
    ext = EXTENSIONS.get(content_type, "")
    base = re.split(r"[\\/]", upload.filename or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f\"]", "", base).rsplit(".", 1)[0].strip()[:100] or "material"
    return base + ext


def _check_image(upload, *, what):
    config = current_app.config
    if not upload.data:
        raise DomainError("empty_file", f"{what}文件是空的", 422)
    if len(upload.data) > config["MATERIAL_IMAGE_MAX_BYTES"]:
        raise storage_files.too_large(what, config["MATERIAL_IMAGE_MAX_BYTES"])
    content_type, width, height = inspect_image(upload.data, max_pixels=config["UPLOAD_MAX_PIXELS"])
    return _Checked(upload.data, content_type, _file_name(upload, content_type), width, height)


def _check_main_file(kind, upload):
    config = current_app.config
    if kind in IMAGE_KINDS:
        return _check_image(upload, what="图片")
    if not upload.data:
        raise DomainError("empty_file", "上传的文件是空的", 422)
    if kind == "video":
        if len(upload.data) > config["MATERIAL_VIDEO_MAX_BYTES"]:
            raise storage_files.too_large("视频", config["MATERIAL_VIDEO_MAX_BYTES"])
        content_type = storage_files.inspect_video(upload.data)
    else:
        if len(upload.data) > config["MATERIAL_FILE_MAX_BYTES"]:
            raise storage_files.too_large("文件", config["MATERIAL_FILE_MAX_BYTES"])
        content_type = storage_files.inspect_document(upload.data)
    return _Checked(upload.data, content_type, _file_name(upload, content_type))


def check_files(kind, *, file, cover, creating):
    if file is not None and kind not in FILE_KINDS:
        raise inputs.invalid("file", f"{KIND_LABELS[kind]}不需要上传文件")
    if cover is not None and kind not in COVER_KINDS:
        raise inputs.invalid("cover", f"{KIND_LABELS[kind]}不需要封面图")
    if creating and kind in FILE_KINDS and file is None:
        raise inputs.invalid("file", f"请上传{KIND_LABELS[kind]}文件")
    if creating and kind == "miniprogram" and cover is None:
        raise inputs.invalid("cover", "小程序卡片需要封面图（建议 5:4，如 500×400）")
    main = _check_main_file(kind, file) if file is not None else None
    cover_checked = _check_image(cover, what="封面图") if cover is not None else None
    return main, cover_checked


class Stored:
    """Keys put into storage during one save; `undo` deletes them again."""

    def __init__(self):
        self.keys = []

    def put(self, data, content_type):
        try:
            key = get_storage().put(data, content_type, STORAGE_PREFIX)
        except StorageError:
            log.exception("storing a material file failed")
            self.undo()
            raise DomainError("storage_unavailable", "文件存储暂时不可用，请稍后重试", 503) from None
        self.keys.append(key)
        return key

    def undo(self):
        delete_quietly(self.keys)
        self.keys = []


def delete_quietly(keys):
    storage = get_storage()
    for key in keys:
        if key:
            try:
                storage.delete(key)
            except Exception:
                log.exception("could not delete stored material file %s", key)


def store_files(main, cover, stored):
    """Column values for the stored main file, cover and the thumbnail made from the picture."""
    values = {}
    picture = None
    if main is not None:
        values.update(file_key=stored.put(main.data, main.content_type), file_name=main.filename,
                      file_content_type=main.content_type, file_size=len(main.data),
                      width=main.width, height=main.height)
        if main.width is not None:
            picture = main.data
    if cover is not None:
        values["cover_key"] = stored.put(cover.data, cover.content_type)
        picture = cover.data
    if picture is not None:
        thumb, width, height = storage_files.make_thumbnail(picture, max_side=current_app.config["MATERIAL_THUMBNAIL_PX"])
        values.update(thumb_key=stored.put(thumb, "image/jpeg"), thumb_width=width, thumb_height=height)
    return values


def file_url(material, *, download=False):
    """A signed, expiring URL of the material's file (None without one); `download=True`
    makes the response an attachment named `file_name`."""
    if not material.file_key:
        return None
    return get_storage().url_for(material.file_key, download_name=material.file_name if download else None)


def thumb_url(material):
    return get_storage().url_for(material.thumb_key) if material.thumb_key else None


def cover_url(material):
    return get_storage().url_for(material.cover_key) if material.cover_key else None
