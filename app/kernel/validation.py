"""Marshmallow building blocks with Chinese error messages.

Schemas in `app/<domain>/schemas.py` use these fields and validators so every field
error a dealer sees reads as Chinese. JSON integers are strict: "5" and 5.5 are not 5.
"""
import re

import marshmallow as ma
from marshmallow import ValidationError, pre_load, validate  # noqa: F401 - schemas build on these too

# Ids travel through JavaScript in the mini-program, so keep them exact there.
MAX_ID = 2**53 - 1

_DIGITS = re.compile(r"-?[0-9]{1,18}")

_COMMON = {"required": "缺少必填字段", "null": "不能为空值", "validator_failed": "取值无效"}


class Schema(ma.Schema):
    error_messages = {"unknown": "不认识的字段", "type": "数据格式无效，应为对象"}


# C0 control characters other than tab and newlines; PostgreSQL cannot store NUL at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Str(ma.fields.String):
    """Text that can be stored and shown: valid UTF-8, no control characters."""

    default_error_messages = {
        **_COMMON, "invalid": "应为字符串", "invalid_utf8": "不是有效的 UTF-8 字符串",
        "control": "不能包含控制字符",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            raise self.make_error("invalid_utf8") from None
        if _CONTROL.search(text):
            raise self.make_error("control")
        return text


class Int(ma.fields.Integer):
    default_error_messages = {**_COMMON, "invalid": "应为整数", "too_large": "数值过大"}

    def __init__(self, *, strict=True, **kwargs):
        super().__init__(strict=strict, **kwargs)


class QueryInt(Int):
    """Integers from a query string arrive as text: plain ASCII digits only."""

    def __init__(self, **kwargs):
        super().__init__(strict=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _DIGITS.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Bool(ma.fields.Boolean):
    """Only JSON true/false: marshmallow would also take "yes", "on" and 1."""

    default_error_messages = {**_COMMON, "invalid": "应为布尔值 true/false"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):  # 1 == True in Python, so check the type itself
            raise self.make_error("invalid")
        return value


class List(ma.fields.List):
    default_error_messages = {**_COMMON, "invalid": "应为数组"}


class Nested(ma.fields.Nested):
    default_error_messages = {**_COMMON, "type": "应为对象"}


class DateTime(ma.fields.DateTime):
    default_error_messages = {**_COMMON, "invalid": "日期时间格式无效"}


def length(min=None, max=None):
    if min and max:
        msg = f"长度应在 {min} 到 {max} 个字符之间"
    elif max:
        msg = f"长度不能超过 {max} 个字符"
    else:
        msg = f"长度至少 {min} 个字符"
    return validate.Length(min=min, max=max, error=msg)


def items(min=None, max=None):
    return validate.Length(min=min, max=max, error=f"条目数应在 {min or 0} 到 {max} 之间")


def int_range(min=None, max=None):
    return validate.Range(min=min, max=max, error=f"应为 {min} 到 {max} 之间的整数")


def one_of(choices, labels):
    """One of `choices`; the message names them as people know them, by `labels` ({choice:
    Chinese name}), never by their codes (the OpenAPI description lists the codes)."""
    return validate.OneOf(choices, error="取值应为以下之一：" + "、".join(labels[c] for c in choices))


class FullMatch(validate.Regexp):
    """Like marshmallow's Regexp, but the whole value must match (no trailing newline)."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


def regexp(pattern, message):
    # Write patterns in the ECMAScript subset OpenAPI uses; FullMatch anchors them in Python.
    return FullMatch(pattern, error=message)


def id_field(**kwargs):
    return Int(validate=int_range(1, MAX_ID), **kwargs)


class PageQuery(Schema):
    """`page` and `page_size` of a paged list (?page=&page_size=)."""

    page = QueryInt(load_default=1, validate=int_range(1, 10_000))
    page_size = QueryInt(load_default=20, validate=int_range(1, 100))
