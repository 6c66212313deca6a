"""`POST /uploads`: a dealer user uploads a photo (multipart/form-data, field `file`)."""
import functools

from flask import current_app, g, request
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestEntityTooLarge

from app.dealers.models import ORDERING_ROLES
from app.errors import error_response
from app.kernel.errors import DomainError
from app.storage import service as uploads
from app.storage.schemas import UploadIn, UploadOut
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import SafeJSONParser

# Room for the multipart envelope (boundaries, part headers) around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


class UploadBlueprint(Blueprint):
    ARGUMENTS_PARSER = SafeJSONParser()


blp = UploadBlueprint("uploads", __name__, url_prefix="/uploads", description="图片上传")


@blp.before_request
def _allow_one_image():
    # This route alone takes bodies larger than MAX_CONTENT_LENGTH: up to one image.
    request.max_content_length = current_app.config["UPLOAD_MAX_BYTES"] + MULTIPART_OVERHEAD


def may_upload(view):
    """Before the body is read at all: a bound owner or buyer (else 401/403) sending
    multipart/form-data (else 415). Strangers never get to make us parse megabytes."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if g.user.role not in ORDERING_ROLES:
            raise DomainError("forbidden_role", "您的账号为只读角色，不能上传图片", 403)
        if request.content_length and request.mimetype != "multipart/form-data":
            raise DomainError("unsupported_media_type", "请用 multipart/form-data 上传文件（字段名 file）", 415)
        return view(*args, **kwargs)

    return dealer_user_required(wrapper)


@blp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc):
    error = uploads.too_large_error()
    return error_response(error.status, error.code, error.message, error.details)


@blp.post("")
@blp.response(201, UploadOut)
@blp.doc(security=BEARER_DOC)
@may_upload
@blp.arguments(UploadIn, location="files")
def upload(files):
    """上传图片（JPG、PNG、WebP；按文件内容判断格式，默认不超过 5 MB），返回图片 id 与地址"""
    file = files["file"]
    if not hasattr(file, "read"):
        raise DomainError("validation_error", "提交的数据有误，请检查后重试", 422, {"fields": {"file": ["应为文件"]}})
    data = file.read(current_app.config["UPLOAD_MAX_BYTES"] + 1)
    upload = uploads.save_upload(user=g.user, data=data, prefix="uploads")
    return uploads.describe(upload)
