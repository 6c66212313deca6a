"""The WeCom customer-contact gateway the campaign modules talk to (groups, tasks, results)."""
from flask import current_app


def gateway():
    from app.integrations.wechat_gateways import wecom_contact_gateway

    return wecom_contact_gateway(current_app._get_current_object())
