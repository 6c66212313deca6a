"""The WeChat and WeCom outbox channels: mini-program subscribe messages, WeCom app
messages, template-card updates and group robots (registered by `create_app`)."""
from flask import current_app
from sqlalchemy import and_, select, update

from app.integrations.wechat_errors import WeChatError
from app.notify import channels
from app.notify.models import SubscribeConsent

# WeCom drops app messages beyond 30 a minute to one member without an error, and a group
# robot takes 20 a minute: delivery holds the rest back.
WECOM_APP_LIMIT = (30, 60)
WECOM_ROBOT_LIMIT = (20, 60)
# WeChat's answer when the user has no subscription left for the template.
ERRCODE_NO_SUBSCRIPTION = 43101


def _gateway(kind):
    """The app's gateway (built once per app: it holds the HTTP session and token cache)."""
    from app.integrations.wechat_gateways import mini_program_gateway, wecom_gateway

    app = current_app._get_current_object()
    return mini_program_gateway(app) if kind == "mp" else wecom_gateway(app)


def _robot_key(config, name):
    if name == "default" and config.get("WECOM_ROBOT_KEY"):
        return config["WECOM_ROBOT_KEY"]
    if (config.get("WECOM_ROBOT_KEYS") or {}).get(name):
        return config["WECOM_ROBOT_KEYS"][name]
    raise WeChatError(None, f"未配置群机器人「{name}」的 webhook key")


def send_subscribe(config, row):
    _gateway("mp").send_subscribe_message(row.recipient, row.payload)


def send_wecom_app(config, row):
    _gateway("wecom").send_app_message(row.recipient, row.payload)


def send_wecom_card(config, row):
    _gateway("wecom").update_template_card(row.recipient, row.payload)


def send_wecom_robot(config, row):
    _gateway("wecom").send_robot_message(_robot_key(config, row.recipient), row.payload)


def clear_consent(conn, row, errcode):
    """WeChat says the user has no subscription left for this template: stop counting on one."""
    if errcode != ERRCODE_NO_SUBSCRIPTION:
        return
    from app.dealers.models import DealerUser
    from app.kernel.clock import utcnow

    users = select(DealerUser.id).where(DealerUser.openid == row.recipient).scalar_subquery()
    conn.execute(
        update(SubscribeConsent.__table__)
        .where(and_(SubscribeConsent.template_id == (row.payload or {}).get("template_id"),
                    SubscribeConsent.user_id.in_(users)))
        .values(remaining=0, updated_at=utcnow())
    )


def register(app):
    channels.register(app, "mp_subscribe", send_subscribe, after_permanent_failure=clear_consent)
    channels.register(app, "wecom_app", send_wecom_app, rate_limit=WECOM_APP_LIMIT)
    channels.register(app, "wecom_card", send_wecom_card)
    channels.register(app, "wecom_robot", send_wecom_robot, rate_limit=WECOM_ROBOT_LIMIT)
