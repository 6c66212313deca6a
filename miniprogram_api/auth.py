"""Who is calling: bearer token -> WeChat openid -> bound dealer user."""
import functools

from flask import g, request

from app.dealers.identity import openid_from_token, user_for_openid
from app.kernel.errors import DomainError

BEARER_DOC = [{"bearerAuth": []}]


def _bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DomainError("unauthorized", "请先登录（缺少 Authorization: Bearer 令牌）", 401)
    return token.strip()


def current_openid():
    return openid_from_token(_bearer_token())


def dealer_user_required(view):
    """Require a valid token of a WeChat user bound to an active dealer user; sets g.user."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = user_for_openid(current_openid())
        if user is None:
            raise DomainError("not_bound", "该微信尚未绑定经销商账号，请输入邀请码完成绑定", 403)
        g.user = user
        return view(*args, **kwargs)

    return wrapper


def require_json_body():
    """A body that is not JSON is refused up front with 415, not misread as empty."""
    if request.method in ("POST", "PUT", "PATCH") and request.content_length and not request.is_json:
        raise DomainError("unsupported_media_type", "请使用 Content-Type: application/json 提交 JSON", 415)
