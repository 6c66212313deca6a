"""The dealer-facing JSON API under /api/mp/v1: thin routes over app services.

Each route validates with a schema, calls one service function and dumps with a schema;
the OpenAPI document at /api/mp/v1/openapi.json is generated from the same schemas.
"""
from werkzeug.routing import BaseConverter

from app.validation import MAX_ID

PREFIX = "/api/mp/v1"


class IdConverter(BaseConverter):
    """A positive integer id that fits the database (1 … 2^53-1); anything else is a 404."""

    regex = r"[1-9][0-9]{0,15}"

    def to_python(self, value):
        number = int(value)
        if number > MAX_ID:
            from werkzeug.routing import ValidationError

            raise ValidationError()
        return number

    def to_url(self, value):
        return str(int(value))


def _id_param_schema(_converter):
    return {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def register(app, api):
    app.url_map.converters["id"] = IdConverter
    from miniprogram_api import addresses, auth_routes, cart, catalog, orders

    api.register_converter(IdConverter, _id_param_schema)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "POST /auth/login 返回的 token"}
    )
    for module in (auth_routes, catalog, cart, orders, addresses):
        api.register_blueprint(module.blp, url_prefix=PREFIX + module.blp.url_prefix)
