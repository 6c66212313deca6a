"""What the mini-program shows of a shipment's trail (`app.tracking.reading.Trail.as_dict`)."""
from app.kernel.validation import Bool, DateTime, Int, Nested, Schema, Str


class TrackingEventOut(Schema):
    time = Str(required=True, metadata={"description": "北京时间，如 2026-12-01 10:00:00"})
    at = DateTime(required=True, metadata={"description": "同一时刻（ISO 8601，UTC）"})
    context = Str(required=True, metadata={"description": "承运商的描述，如 快件已到达【上海转运中心】"})
    area_name = Str(allow_none=True, metadata={"description": "所在地区（快递100 解析所得，可能为空）"})
    state = Int(allow_none=True, metadata={"description": "快递100 状态码：0 在途、1 揽收、2 疑难、3 签收、5 派件 …"})
    state_label = Str(required=True, metadata={"description": "状态（中文），如 签收"})


class TrackingOut(Schema):
    tracked = Bool(required=True, metadata={"description": "是否在跟踪物流（未配置快递100或承运商不支持时为 false）"})
    status = Str(allow_none=True, metadata={"description": "订阅状态：pending 订阅中、subscribed 已订阅、failed 订阅失败"})
    status_label = Str(required=True)
    state = Int(allow_none=True, metadata={"description": "最近一次推送的状态码（3 为已签收）"})
    state_label = Str(required=True, metadata={"description": "最近状态（中文），尚无推送时为空"})
    signed = Bool(required=True, metadata={"description": "是否已签收"})
    events = Nested(TrackingEventOut, many=True, required=True, metadata={"description": "物流轨迹，最新的在前"})
