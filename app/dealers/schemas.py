from app.kernel.validation import (
    Bool,
    Int,
    Nested,
    Schema,
    Str,
    id_field,
    length,
    regexp,
)


class LoginIn(Schema):
    code = Str(required=True, validate=length(1, 128), metadata={"description": "wx.login() 返回的 code"})


class LoginOut(Schema):
    token = Str(required=True, metadata={"description": "放在 Authorization: Bearer 后使用"})
    expires_in = Int(required=True, metadata={"description": "有效秒数"})
    bound = Bool(required=True, metadata={"description": "该微信是否已绑定经销商账号"})


class BindIn(Schema):
    invite_code = Str(required=True, validate=length(4, 32))
    name = Str(validate=length(1, 32), metadata={"description": "您的称呼（可选）"})


class CodeName(Schema):
    code = Str(required=True)
    name = Str(required=True)


class UserOut(Schema):
    id = Int(required=True)
    name = Str(allow_none=True)
    role = Str(required=True, metadata={"description": "owner 负责人 / buyer 采购员 / viewer 只读"})


class DealerOut(Schema):
    code = Str(required=True)
    name = Str(required=True)
    status = Str(required=True)
    tier = Nested(CodeName, required=True)
    region = Nested(CodeName, required=True)


class CreditOut(Schema):
    limit_fen = Int(required=True)
    used_fen = Int(required=True)
    available_fen = Int(required=True)


class MeOut(Schema):
    user = Nested(UserOut, required=True)
    dealer = Nested(DealerOut, required=True)
    credit = Nested(CreditOut, required=True)
    unread_policies = Int(metadata={"description": "当前账号未读的政策数（GET /me 返回）"})


PHONE = regexp(r"^(1[0-9]{10}|0[0-9]{2,3}-?[0-9]{7,8})$", "请输入 11 位手机号或带区号的座机号")


class AddressIn(Schema):
    contact_name = Str(required=True, validate=length(1, 32))
    phone = Str(required=True, validate=PHONE)
    region_code = Str(required=True, validate=regexp(r"^[0-9]{6}$", "地区编码应为 6 位数字（GB/T 2260）"))
    detail = Str(required=True, validate=length(1, 200), metadata={"description": "街道门牌等详细地址"})
    is_default = Bool(load_default=False)


class AddressOut(Schema):
    id = id_field(required=True)
    contact_name = Str(required=True)
    phone = Str(required=True)
    region_code = Str(required=True)
    region_names = Str(required=True, metadata={"description": "省市区名称"})
    detail = Str(required=True)
    is_default = Bool(required=True)


class AddressList(Schema):
    items = Nested(AddressOut, many=True, required=True)
