from app.dealers.schemas import CreditOut
from app.funds.models import LEDGER_ACCOUNTS
from app.validation import DateTime, Int, Nested, PageQuery, Schema, Str, one_of


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
    account = Str(validate=one_of(LEDGER_ACCOUNTS), metadata={"description": "receivable / prepaid / rebate；不传则全部"})


class LedgerEntryOut(Schema):
    id = Int(required=True)
    account = Str(required=True)
    account_label = Str(required=True)
    amount_fen = Int(required=True, metadata={"description": "正数增加余额，负数减少"})
    balance_after_fen = Int(required=True)
    ref_type = Str(required=True, metadata={"description": "order 订单 / payment 付款 / rebate 返利单 / adjustment 调整"})
    order_no = Str(allow_none=True, metadata={"description": "相关订单号（如有）"})
    note = Str(allow_none=True)
    actor_name = Str(allow_none=True)
    created_at = DateTime(required=True)


class LedgerPage(Schema):
    items = Nested(LedgerEntryOut, many=True, required=True)
    page = Int(required=True)
    page_size = Int(required=True)
    total = Int(required=True)
