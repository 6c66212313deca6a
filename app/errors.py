"""One error type and one error shape.

Services raise `DomainError(code, message, status, details)`. Every error leaving the
app — domain, validation, HTTP or unexpected — is rendered as
`{"error": {"code": "...", "message": "...(中文)", "details": {...}}}` for API paths,
and as a small HTML page for console pages.
"""
import logging

import marshmallow as ma
from flask import jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from app.kernel.errors import DomainError

log = logging.getLogger(__name__)


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "机器可读的错误码（英文）"})
    message = ma.fields.String(required=True, metadata={"description": "给人看的中文说明"})
    details = ma.fields.Dict(metadata={"description": "出错字段或问题明细"})


class ErrorSchema(ma.Schema):
    error = ma.fields.Nested(ErrorBodySchema, required=True)


# HTTP errors raised by Flask/Werkzeug themselves, in words a dealer understands.
HTTP_MESSAGES = {
    400: ("bad_request", "请求格式有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限执行此操作"),
    404: ("not_found", "资源不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "请求与当前状态冲突"),
    413: ("payload_too_large", "请求内容过大"),
    415: ("unsupported_media_type", "请使用 application/json 格式提交"),
    422: ("validation_error", "提交的数据有误，请检查后重试"),
    429: ("too_many_requests", "请求过于频繁，请稍后再试"),
}


def wants_json():
    path = request.path
    return (path.startswith(("/api/", "/healthz", "/console/api/"))
            or not request.accept_mimetypes.accept_html)


def error_response(status, code, message, details=None):
    if wants_json():
        resp = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
        resp.status_code = status
        return resp
    return make_response(render_template("error.html", status=status, code=code, message=message), status)


def _handle_domain_error(exc):
    resp = error_response(exc.status, exc.code, exc.message, exc.details)
    retry_after = getattr(exc, "retry_after", None)  # app.ratelimit.TooManyAttempts
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def _handle_http_exception(exc):
    status = exc.code or 500
    code, message = HTTP_MESSAGES.get(status, ("http_error", "请求无法处理"))
    details = {}
    data = getattr(exc, "data", None) or {}
    # webargs (through flask-smorest) puts field errors under "messages".
    messages = data.get("messages")
    if messages:
        if "json" in messages and messages["json"] == ["Invalid JSON body."]:
            return error_response(400, "malformed_json", "请求体不是合法的 JSON", {})
        details = {"fields": _flatten_locations(messages)}
    headers = data.get("headers") or {}
    resp = error_response(status, code, message, details)
    if headers:
        resp.headers.update(headers)
    return resp


def _flatten_locations(messages):
    # {"json": {"lines": {...}}, "query": {...}} -> {"lines": {...}, ...}
    flat = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def _handle_unexpected(exc):
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "服务器开小差了，请稍后重试", {})


def init_app(app):
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
