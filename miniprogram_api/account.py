from flask import g

from app.funds import ledger
from app.funds import service as funds
from app.funds.schemas import AccountOut, LedgerPage, LedgerQuery
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("account", __name__, url_prefix="/account", description="资金账户")


@blp.get("")
@blp.response(200, AccountOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def account():
    """本经销商的应收、预付款、返利余额与信用额度"""
    dealer_id = g.user.dealer_id
    return {"accounts": ledger.get_balances(dealer_id), "credit": funds.credit_summary(dealer_id)}


@blp.get("/ledger")
@blp.arguments(LedgerQuery, location="query")
@blp.response(200, LedgerPage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def ledger_entries(query):
    """本经销商的资金流水（新的在前），可按账户筛选"""
    items, total = ledger.list_entries(
        dealer_id=g.user.dealer_id, account=query.get("account"), page=query["page"], page_size=query["page_size"],
    )
    return {"items": items, "page": query["page"], "page_size": query["page_size"], "total": total}
