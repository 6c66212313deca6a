import marshmallow as ma

from app.dealers.schemas import CreditOut
from app.funds.ledger import MAX_AMOUNT_FEN
from app.funds.models import ACCOUNT_LABELS, LEDGER_ACCOUNTS, OFFLINE_STATUS_LABELS, OFFLINE_STATUSES
from app.kernel.validation import (
    DateTime,
    Int,
    Nested,
    PageQuery,
    Schema,
    Str,
    id_field,
    int_range,
    length,
    one_of,
    regexp,
)


class RequestPaymentOut(Schema):
    """Exactly what `wx.requestPayment` takes (signType RSA, paySign over appId, timeStamp, nonceStr, package)."""

    appId = Str(required=True)
    timeStamp = Str(required=True, metadata={"description": "秒级时间戳（字符串）"})
    nonceStr = Str(required=True)
    package = Str(required=True, metadata={"description": "prepay_id=…"})
    signType = Str(required=True, metadata={"description": "RSA"})
    paySign = Str(required=True)


class PayOut(Schema):
    params = Nested(RequestPaymentOut, required=True, metadata={"description": "原样传给 wx.requestPayment"})
    out_trade_no = Str(required=True, metadata={"description": "本次微信支付的商户订单号"})
    amount_fen = Int(required=True, metadata={"description": "本次应付金额（订单未付部分）"})


class BalancesOut(Schema):
    receivable_fen = Int(required=True, metadata={"description": "应收账款（欠品牌方的金额）"})
    prepaid_fen = Int(required=True, metadata={"description": "预付款余额"})
    rebate_fen = Int(required=True, metadata={"description": "返利余额"})


class AccountOut(Schema):
    accounts = Nested(BalancesOut, required=True)
    credit = Nested(CreditOut, required=True)


class LedgerQuery(PageQuery):
    account = Str(validate=one_of(LEDGER_ACCOUNTS, ACCOUNT_LABELS), metadata={"description": "receivable / prepaid / rebate；不传则全部"})


class LedgerEntryOut(Schema):
    id = Int(required=True)
    account = Str(required=True)
    account_label = Str(required=True)
    amount_fen = Int(required=True, metadata={"description": "正数增加余额，负数减少"})
    balance_after_fen = Int(required=True)
    ref_type = Str(required=True, metadata={
        "description": "order 订单（下单时的预付款支付、返利抵扣及其退回）/ shipment 发货（账期订单发货转应收）/ "
                       "payment 付款 / refund 退货退款 / rebate 返利 / adjustment 调整"})
    order_no = Str(allow_none=True, metadata={"description": "相关订单号（如有）"})
    note = Str(allow_none=True)
    actor_name = Str(allow_none=True)
    created_at = DateTime(required=True)


class LedgerPage(Schema):
    items = Nested(LedgerEntryOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)


# --- offline payments (线下转账) ----------------------------------------------------------

class Day(ma.fields.Date):
    default_error_messages = {"required": "缺少必填字段", "null": "不能为空值", "invalid": "日期格式应为 YYYY-MM-DD",
                              "format": "日期格式应为 YYYY-MM-DD"}


class OfflinePaymentIn(Schema):
    amount_fen = Int(required=True, validate=int_range(1, MAX_AMOUNT_FEN),
                     metadata={"description": "转账金额（分，正整数）"})
    transfer_date = Day(required=True, metadata={"description": "转账日期 YYYY-MM-DD（不晚于今天，不早于一年前）"})
    voucher_id = id_field(required=True, metadata={"description": "转账凭证图片：POST /uploads 返回的 id（本经销商上传的）"})
    order_no = Str(load_default=None, allow_none=True, validate=regexp(r"^[A-Za-z0-9]{1,20}$", "订单号格式无效"),
                   metadata={"description": "所付订单号；不传则为回款：先冲减应收账款，多出的部分转入预付款"})
    payer_name = Str(load_default=None, allow_none=True, validate=length(max=64), metadata={"description": "付款账户名（可选）"})
    bank_reference = Str(load_default=None, allow_none=True, validate=length(max=64),
                         metadata={"description": "银行流水号 / 交易参考号（可选）"})
    remark = Str(load_default=None, allow_none=True, validate=length(max=200), metadata={"description": "备注（可选）"})


class OfflineListQuery(PageQuery):
    status = Str(validate=one_of(OFFLINE_STATUSES, OFFLINE_STATUS_LABELS), metadata={"description": "pending / confirmed / rejected；不传则全部"})


class VoucherOut(Schema):
    id = Int(required=True)
    url = Str(required=True, metadata={"description": "凭证图片地址（有时效；过期后重新获取本记录即可）"})
    content_type = Str(required=True)
    width = Int(required=True)
    height = Int(required=True)


class OfflinePaymentOut(Schema):
    id = Int(required=True)
    status = Str(required=True, validate=one_of(OFFLINE_STATUSES, OFFLINE_STATUS_LABELS),
                 metadata={"description": "pending 待确认 / confirmed 已确认 / rejected 已驳回"})
    status_label = Str(required=True)
    amount_fen = Int(required=True, metadata={"description": "提交的转账金额"})
    received_fen = Int(allow_none=True, metadata={"description": "财务确认的实收金额（已确认时）"})
    transfer_date = ma.fields.Date(required=True)
    order_no = Str(allow_none=True, metadata={"description": "所付订单号；null 为回款（先冲减应收账款，多出的部分转入预付款）"})
    payer_name = Str(allow_none=True)
    bank_reference = Str(allow_none=True)
    remark = Str(allow_none=True)
    reason = Str(allow_none=True, metadata={"description": "驳回原因（已驳回时），或财务确认时的说明"})
    voucher = Nested(VoucherOut, required=True)
    created_at = DateTime(required=True)
    decided_at = DateTime(allow_none=True)


class OfflinePaymentPage(Schema):
    items = Nested(OfflinePaymentOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
