"""The Blueprint every mini-program route module uses.

It parses JSON more defensively than webargs does by default and refuses non-JSON bodies
up front, so hostile input answers 4xx instead of escaping as a 500.
"""
import marshmallow as ma
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from app.kernel.errors import DomainError
from miniprogram_api.auth import require_json_body


class SafeJSONParser(FlaskParser):
    """Deeply nested JSON (RecursionError), 4,300+ digit numbers (ValueError) and lone
    UTF-16 surrogates (which cannot be stored or sent anywhere) are malformed input.

    Two savings on every request (see bench/README.md, 性能): one schema instance per schema class
    instead of a new one per request (marshmallow deep-copies every field to build one),
    and query strings that parsed cleanly are remembered, since the result depends on
    nothing else (a catalogue client asks for the same few pages over and over).
    """

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": ma.RAISE}
    QUERY_MEMO_SIZE = 512

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._schemas = {}
        self._query_memo = {}

    def _get_schema(self, argmap, req):
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        if location != "query" or not isinstance(argmap, type) or kwargs.get("validate"):
            return super().parse(argmap, req, location=location, **kwargs)
        req = req if req is not None else self.get_default_request()
        key = (argmap, req.query_string)
        parsed = self._query_memo.get(key)
        if parsed is None:
            parsed = super().parse(argmap, req, location=location, **kwargs)  # raises on bad input
            if len(self._query_memo) >= self.QUERY_MEMO_SIZE:
                self._query_memo.clear()
            self._query_memo[key] = dict(parsed)
        return dict(parsed)

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
