from flask import current_app, g

from app import ratelimit
from app.dealers import identity
from app.dealers.schemas import BindIn, LoginIn, LoginOut, MeOut
from app.errors import ErrorSchema
from app.integrations.wechat_gateways import MiniProgramGateway
from app.policies.dealer import unread_count
from miniprogram_api.blueprint import MpBlueprint
from miniprogram_api.auth import BEARER_DOC, current_openid, dealer_user_required

blp = MpBlueprint("auth", __name__, url_prefix="", description="登录、绑定与当前账号")


@blp.post("/auth/login")
@blp.arguments(LoginIn)
@blp.response(200, LoginOut)
@blp.alt_response(429, schema=ErrorSchema, description="登录过于频繁（同一网络地址或同一微信用户），请按 Retry-After 秒后再试")
def login(body):
    """用 wx.login() 的 code 登录，换取令牌"""
    # Each login spends a code2Session call of the brand's quota: limited per client address
    # before WeChat is asked, and per WeChat user before a token is issued.
    ratelimit.hit("MP_LOGIN_LIMIT_PER_ADDRESS", scope="mp-login-address", key=ratelimit.client_address(),
                  code="too_many_logins", message=LOGIN_LIMITED)
    gateway = MiniProgramGateway.from_config(current_app.config)
    return identity.login_with_code(js_code=body["code"], gateway=gateway, admit=_admit_wechat_user)


LOGIN_LIMITED = "登录过于频繁，请 {wait}后再试"


def _admit_wechat_user(openid):
    ratelimit.hit("MP_LOGIN_LIMIT_PER_USER", scope="mp-login-user", key=openid,
                  code="too_many_logins", message=LOGIN_LIMITED)


@blp.post("/auth/bind")
@blp.arguments(BindIn)
@blp.response(200, MeOut)
@blp.doc(security=BEARER_DOC)
def bind(body):
    """用邀请码把当前微信绑定到经销商账号"""
    user = identity.bind_invite(openid=current_openid(), invite_code=body["invite_code"], name=body.get("name"))
    return identity.describe_user(user)


@blp.get("/me")
@blp.response(200, MeOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def me():
    """当前用户、所属经销商、信用额度与未读政策数"""
    return {**identity.describe_user(g.user), "unread_policies": unread_count(g.user)}
