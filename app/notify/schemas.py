from app.kernel.validation import (
    DateTime,
    Int,
    List,
    Nested,
    PageQuery,
    Schema,
    Str,
    items,
    regexp,
)

MAX_ACCEPTED = 20


class SubscriptionsIn(Schema):
    template_ids_accepted = List(
        Str(validate=regexp(r"^[A-Za-z0-9_-]{1,64}$", "模板 ID 应为 1–64 位字母、数字、_ 或 -")),
        required=True,
        validate=items(max=MAX_ACCEPTED),
        metadata={"description": "wx.requestSubscribeMessage 返回中值为 accept 的模板 ID（每个 ID 计一次）"},
    )


class TemplateOut(Schema):
    event = Str(required=True, metadata={"description": "order_approved / order_rejected / order_shipped / payment_due / order_cancelled"})
    template_id = Str(required=True, metadata={"description": "传给 wx.requestSubscribeMessage 的 tmplIds"})
    title = Str(required=True)


class TemplatesOut(Schema):
    templates = Nested(TemplateOut, many=True, required=True)


class ConsentOut(TemplateOut):
    remaining = Int(required=True, metadata={"description": "还可接收的一次性订阅消息条数"})


class ConsentsOut(Schema):
    consents = Nested(ConsentOut, many=True, required=True)


class MessageListQuery(PageQuery):
    """The dealer's messages, a page at a time."""


class MessageOut(Schema):
    id = Int(required=True)
    event = Str(required=True)
    title = Str(required=True)
    body = Str(required=True)
    page = Str(allow_none=True, metadata={"description": "小程序内跳转页面，如 pages/order/detail?order_no=SO202611260001"})
    created_at = DateTime(required=True)


class MessagePage(Schema):
    items = Nested(MessageOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
