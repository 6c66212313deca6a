"""How an order is paid: the split between the rebate balance and the payment method.

An order's total is paid by two parts:
- `rebate_fen`: taken from the dealer's rebate balance at submission (`use_rebate_fen`),
  at most the brand's rebate-usage rate (basis points, a brand setting, default 3000 =
  30 %) of the order's goods amount (subtotal − discount, shipping excluded), rounded half
  up to the fen once, and at most the rebate balance;
- `payable_fen` = total − rebate: paid by the payment method. Credit holds it against the
  credit limit; prepaid takes it from the prepaid balance at submission; WeChat Pay and
  offline transfers pay it after submission.

`split_payment` decides the split and its problems without touching the database; the
order service (preview and submit) reads the balances and the rate and writes the ledger.
The setting lives in `brand_settings` under `rebate_usage` as `{"max_rate_bp": int}`
(declared in `app.kernel.settings`).
"""
from dataclasses import asdict, dataclass

from app.audit import service as audit
from app.extensions import db
from app.kernel import settings
from app.kernel.errors import DomainError
from app.kernel.money import apply_bp, format_yuan, percent_text
from app.orders.models import PAYMENT_METHOD_LABELS

KEY = settings.REBATE_USAGE.key


def describe_rate(rate_bp):
    return f"{rate_bp // 100}%" if rate_bp % 100 == 0 else f"{percent_text(rate_bp, places=2)}%"


# --- the brand setting -------------------------------------------------------------------

def read_rebate_rate(session):
    """The rebate-usage cap (basis points of the goods amount) as this transaction sees it."""
    return settings.read(session, settings.REBATE_USAGE)


def get_rebate_rate():
    rate = read_rebate_rate(db.session)
    db.session.rollback()
    return rate


def set_rebate_rate(*, max_rate_bp, actor=None):
    """Set the share of an order's goods amount a dealer may pay from its rebate balance.

    Admins only (403 otherwise; the CLI passes no actor); 422 `invalid_setting` unless
    0 ≤ rate ≤ 10000 bp. Audited as `settings.rebate_usage` in the same transaction.
    """
    return audit.change_setting(settings.REBATE_USAGE, max_rate_bp, actor=actor, refused="只有管理员可以修改返利抵扣比例")


# --- the split ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PaymentSplit:
    method: str
    total_fen: int
    goods_fen: int
    rebate_rate_bp: int
    rebate_cap_fen: int
    rebate_available_fen: int
    rebate_fen: int
    payable_fen: int
    prepaid_available_fen: int

    @property
    def rebate_max_fen(self):
        """The most rebate this order could use now: the cap, and no more than the balance."""
        return min(self.rebate_cap_fen, self.rebate_available_fen)

    def as_dict(self):
        return {**asdict(self), "method_label": PAYMENT_METHOD_LABELS[self.method], "rebate_max_fen": self.rebate_max_fen}

    def problems(self):
        """What stands in the way of paying this way, as preview problems (first is worst)."""
        found = []
        if self.rebate_fen > self.rebate_cap_fen:
            found.append({
                "code": "rebate_over_cap", "status": 422,
                "message": (f"返利抵扣不能超过商品金额的 {describe_rate(self.rebate_rate_bp)}：本单最多抵扣 "
                            f"{format_yuan(self.rebate_cap_fen)}，申请抵扣 {format_yuan(self.rebate_fen)}"),
                "rebate_cap_fen": self.rebate_cap_fen, "rebate_fen": self.rebate_fen,
            })
        if self.rebate_fen > self.rebate_available_fen:
            found.append({
                "code": "insufficient_rebate", "status": 409,
                "message": (f"返利余额不足：当前余额 {format_yuan(self.rebate_available_fen)}，"
                            f"申请抵扣 {format_yuan(self.rebate_fen)}"),
                "rebate_available_fen": self.rebate_available_fen, "rebate_fen": self.rebate_fen,
            })
        if self.method == "prepaid" and self.payable_fen > self.prepaid_available_fen:
            found.append({
                "code": "insufficient_prepaid", "status": 409,
                "message": (f"预付款余额不足：当前余额 {format_yuan(self.prepaid_available_fen)}，"
                            f"本单需付 {format_yuan(self.payable_fen)}，请先充值或选择其他付款方式"),
                "prepaid_available_fen": self.prepaid_available_fen, "payable_fen": self.payable_fen,
            })
        return found

    def raise_for_problems(self):
        """Raise the first problem (over the cap 422; short of rebate or prepaid 409)."""
        found = self.problems()
        if found:
            first = found[0]
            raise DomainError(first["code"], first["message"], first["status"],
                              {"problems": [{k: v for k, v in p.items() if k != "status"} for p in found]})


def split_payment(*, method, total_fen, goods_fen, use_rebate_fen, rate_bp, rebate_balance_fen, prepaid_balance_fen):
    """The `PaymentSplit` of an order of `total_fen` (`goods_fen` of goods) paid by `method`
    with `use_rebate_fen` of rebate, under the cap `rate_bp` and the balances given."""
    if method not in PAYMENT_METHOD_LABELS:
        raise DomainError("invalid_payment_method", f"付款方式应为 {'、'.join(PAYMENT_METHOD_LABELS)} 之一", 422)
    if type(use_rebate_fen) is not int or use_rebate_fen < 0:
        raise DomainError("invalid_rebate", "返利抵扣金额应为不小于 0 的整数（单位：分）", 422)
    cap = min(apply_bp(goods_fen, rate_bp), total_fen)
    return PaymentSplit(
        method=method, total_fen=total_fen, goods_fen=goods_fen, rebate_rate_bp=rate_bp, rebate_cap_fen=cap,
        rebate_available_fen=rebate_balance_fen, rebate_fen=use_rebate_fen,
        payable_fen=max(total_fen - use_rebate_fen, 0), prepaid_available_fen=prepaid_balance_fen,
    )
