"""Money an order takes or gives back outside the submission: payments applied to it
(WeChat Pay, a confirmed offline transfer) and, when it will not be delivered (cancelled,
rejected: `app.orders.states`), what it was paid given back to the dealer.

Both post through the ledger in the caller's transaction; the caller locked the dealer's
account row, then the order row, in that order.
"""
from app.funds import ledger
from app.funds.models import Payment
from app.kernel.clock import utcnow
from app.kernel.errors import DomainError
from app.kernel.money import format_yuan
from app.orders.models import CLOSED_UNPAID_STATUSES, PAYMENT_METHOD_LABELS

PAYMENT_METHODS_APPLIED = ("wechat", "offline")


def give_back_payments(session, order, *, actor, actor_type, why):
    """What an order that will not be delivered was paid stays the dealer's (ref "order"):
    the rebate it used goes back to the rebate balance, and what its method paid (prepaid
    at submission, WeChat Pay, an offline transfer) is credited to the prepaid balance
    (refunds to WeChat Pay are later work). `paid_fen` and `rebate_fen` stay as the record
    of what was paid; a cancelled or rejected order is due nothing. The caller locked the
    dealer's account row, then the order."""
    movements = []
    if order.rebate_fen:
        movements.append(ledger.Movement(
            "rebate", order.rebate_fen, "order", order.id, f"{why}，订单 {order.order_no} 返利抵扣退回"))
    if order.paid_fen:
        movements.append(ledger.Movement(
            "prepaid", order.paid_fen, "order", order.id, f"{why}，订单 {order.order_no} 已付款转入预付款"))
    if movements:
        balances = ledger.lock_balances(session, order.dealer_id)
        ledger.post(session, balances, movements, actor=actor, actor_type=actor_type)


def apply_payment(session, balances, order, *, amount_fen, method, reference, actor, actor_type, at=None,
                  **payment_columns):
    """Record money a dealer paid for `order` (WeChat Pay, a confirmed offline transfer): the
    one way a payment reaches an order. Returns the new `Payment` (`applied_fen`: what went
    to the order).

    The caller locked the dealer's account row (`ledger.lock_balances` → `balances`), then
    the order row (`FOR UPDATE`), in that order, and made sure this payment is recorded
    only once (e.g. a unique transaction id). In the caller's transaction:
    - applied = min(amount, what the order still has due, `due_fen`: nothing once it was
      cancelled or rejected); the order's `paid_fen` grows by it;
    - ledger (ref "payment" unless said): receivable +applied (the order's charge, ref
      "order") and −applied (the payment), so an order paid up front nets to zero;
      anything beyond (the order was cancelled meanwhile, paid twice) goes to prepaid
      (+excess), never lost;
    - a credit order is not paid by order (its shipments post receivable): the whole
      amount pays the dealer's receivable (−amount), `applied_fen` 0.
    `reference` says what paid in the ledger notes ("微信支付 4200…", "线下转账凭证 #12");
    `payment_columns` are `Payment` columns (transaction_id, out_trade_no, payer_openid,
    paid_at, ...). 422 for a method other than wechat/offline or an amount that is not a
    positive integer of fen.
    """
    if method not in PAYMENT_METHODS_APPLIED:
        raise DomainError("invalid_payment_method", "付款方式应为微信支付或线下转账", 422)
    if type(amount_fen) is not int or not 0 < amount_fen <= ledger.MAX_AMOUNT_FEN:
        raise DomainError("invalid_amount", "付款金额应为正整数（单位：分）", 422)
    now = at or utcnow()
    on_account = order.payment_method == "credit"
    applied = 0 if on_account else min(amount_fen, order.due_fen)
    payment = Payment(dealer_id=order.dealer_id, order_id=order.id, method=method, amount_fen=amount_fen,
                      applied_fen=applied, created_at=now, **payment_columns)
    session.add(payment)
    session.flush()
    label = PAYMENT_METHOD_LABELS[method]
    movements = []
    if on_account:
        movements.append(ledger.Movement(
            "receivable", -amount_fen, "payment", payment.id, f"{reference}：账期订单 {order.order_no} 还款"))
    if applied:
        movements += [
            ledger.Movement("receivable", applied, "order", order.id, f"订单 {order.order_no} 应付（{label}）"),
            ledger.Movement("receivable", -applied, "payment", payment.id, reference),
        ]
    excess = 0 if on_account else amount_fen - applied
    if excess:
        why = "订单已取消或驳回" if order.status in CLOSED_UNPAID_STATUSES else "超出订单未付金额"
        movements.append(ledger.Movement(
            "prepaid", excess, "payment", payment.id, f"{reference}：{why}，{format_yuan(excess)} 转入预付款"))
    ledger.post(session, balances, movements, actor=actor, actor_type=actor_type, at=now)
    if applied:
        order.paid_fen += applied
        order.updated_at = now
    return payment
