"""The Blueprint every mini-program route module uses.

It parses JSON more defensively than webargs does by default and refuses non-JSON bodies
up front, so hostile input answers 4xx instead of escaping as a 500.
"""
import marshmallow as ma
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from app.errors import DomainError
from miniprogram_api.auth import require_json_body


class SafeJSONParser(FlaskParser):
    """Deeply nested JSON (RecursionError), 4,300+ digit numbers (ValueError) and lone
    UTF-16 surrogates (which cannot be stored or sent anywhere) are malformed input."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": ma.RAISE}

    def load_json(self, req, schema):
        try:
            data = super().load_json(req, schema)
        except (RecursionError, ValueError):
            raise DomainError("malformed_json", "请求体不是合法的 JSON", 400) from None
        if data is not ma.missing and not _keys_are_text(data):
            # A bad value gets a field error from `Str`; a bad key has no field to name.
            raise DomainError("malformed_json", "请求体的字段名中含有无效字符", 400)
        return data


def _keys_are_text(data):
    """True when every object key, at any depth, is valid UTF-8 (no lone surrogates)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError:
                    return False
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return True


class MpBlueprint(Blueprint):
    ARGUMENTS_PARSER = SafeJSONParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.before_request(require_json_body)
