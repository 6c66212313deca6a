"""The dealer-facing JSON API under /api/mp/v1: thin routes over app services.

Each route validates with a schema, calls one service function and dumps with a schema;
the OpenAPI document at /api/mp/v1/openapi.json is generated from the same schemas.
"""
from werkzeug.routing import BaseConverter


PREFIX = "/api/mp/v1"


class IdConverter(BaseConverter):
    """A positive integer id of at most 15 digits (below 2^53); anything else is a 404."""

    regex = r"[1-9][0-9]{0,14}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(int(value))


class OrderNoConverter(BaseConverter):
    """Order numbers are letters and digits; anything else cannot name an order (404)."""

    regex = r"[A-Za-z0-9]{1,20}"


def _id_param_schema(_converter):
    return {"type": "integer", "minimum": 1, "maximum": 10**15 - 1}


def _order_no_param_schema(_converter):
    return {"type": "string", "pattern": "^[A-Za-z0-9]{1,20}$", "example": "SO202611260001"}


def register(app, api):
    from miniprogram_api import (
        account, addresses, auth_routes, cart, catalog, materials, messages, offline_payments, orders, policies,
        rebates, returns, statements, subscriptions, uploads,
    )

    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["order_no"] = OrderNoConverter
    api.register_converter(IdConverter, _id_param_schema)
    api.register_converter(OrderNoConverter, _order_no_param_schema)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "POST /auth/login 返回的 token"}
    )
    for module in (auth_routes, catalog, cart, orders, addresses, subscriptions, messages, account, uploads, returns,
                   offline_payments, rebates, statements, policies, materials):
        api.register_blueprint(module.blp, url_prefix=PREFIX + module.blp.url_prefix)
