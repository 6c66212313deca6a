"""Marshmallow building blocks with Chinese error messages.

Schemas in `app/<domain>/schemas.py` use these fields and validators so every field
error a dealer sees reads as Chinese. JSON integers are strict: "5" and 5.5 are not 5.
"""
import marshmallow as ma
from marshmallow import validate

# Ids travel through JavaScript in the mini-program, so keep them exact there.
MAX_ID = 2**53 - 1

_COMMON = {"required": "缺少必填字段", "null": "不能为空值", "validator_failed": "取值无效"}


class Schema(ma.Schema):
    error_messages = {"unknown": "不认识的字段", "type": "数据格式无效，应为对象"}


class Str(ma.fields.String):
    default_error_messages = {**_COMMON, "invalid": "应为字符串", "invalid_utf8": "不是有效的 UTF-8 字符串"}


class Int(ma.fields.Integer):
    default_error_messages = {**_COMMON, "invalid": "应为整数", "too_large": "数值过大"}

    def __init__(self, *, strict=True, **kwargs):
        super().__init__(strict=strict, **kwargs)


class QueryInt(Int):
    """Integers from a query string arrive as text."""

    def __init__(self, **kwargs):
        super().__init__(strict=False, **kwargs)


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


def one_of(choices, labels=None):
    return validate.OneOf(choices, error="取值应为以下之一：" + "、".join(labels or choices))


def regexp(pattern, message):
    return validate.Regexp(pattern, error=message)


def id_field(**kwargs):
    return Int(validate=int_range(1, MAX_ID), **kwargs)
