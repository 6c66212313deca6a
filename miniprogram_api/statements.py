"""Monthly statements (对账单) for the dealer: read them, confirm or dispute."""
from flask import g, url_for

from app.statements import service
from app.statements.models import EVENT_LABELS
from app.statements.schemas import DisputeIn, StatementListQuery, StatementOut, StatementPage
from miniprogram_api.auth import BEARER_DOC, dealer_user_required
from miniprogram_api.blueprint import MpBlueprint

blp = MpBlueprint("statements", __name__, url_prefix="/statements", description="对账单")


def _summary(statement):
    return {
        "id": statement.id, "statement_no": statement.statement_no, "month": statement.month,
        "status": statement.status, "status_label": service.status_label(statement.status),
        "closing_receivable_fen": statement.closing_receivable_fen, "closing_prepaid_fen": statement.closing_prepaid_fen,
        "closing_rebate_fen": statement.closing_rebate_fen, "issued_at": statement.issued_at,
    }


def _detail(statement):
    return {
        **_summary(statement),
        "dealer_name": statement.dealer_name, "period_start": statement.period_start, "period_end": statement.period_end,
        "accounts": service.summarize(statement),
        "dispute_comment": statement.dispute_comment, "resolution_note": statement.resolution_note,
        "confirmed_at": statement.confirmed_at,
        "events": [{"action": e.action, "label": EVENT_LABELS[e.action], "actor_name": e.actor_name,
                    "comment": e.comment, "at": e.created_at} for e in statement.events],
        "print_url": url_for("console.statement_shared", token=service.print_token(statement), _external=True),
    }


def _fresh(statement_id):
    return _detail(service.get_statement(dealer_id=g.user.dealer_id, statement_id=statement_id))


@blp.get("")
@blp.arguments(StatementListQuery, location="query")
@blp.response(200, StatementPage)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def list_statements(query):
    """我的对账单（新的月份在前），可按状态筛选"""
    rows, total = service.list_statements(
        dealer_id=g.user.dealer_id, status=query.get("status"), page=query["page"], page_size=query["page_size"],
    )
    return {"items": [_summary(s) for s in rows], "page": query["page"], "page_size": query["page_size"],
            "total": total}


@blp.get("/<id:statement_id>")
@blp.response(200, StatementOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def get_statement(statement_id):
    """对账单详情：各账户期初、按类别的本月发生（含明细与订单号）、期末，以及确认/异议记录"""
    return _fresh(statement_id)


@blp.post("/<id:statement_id>/confirm")
@blp.response(200, StatementOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def confirm(statement_id):
    """确认对账单（已确认的再次确认不变；有异议未处理时 409）"""
    service.confirm_statement(user=g.user, statement_id=statement_id)
    return _fresh(statement_id)


@blp.post("/<id:statement_id>/dispute")
@blp.arguments(DisputeIn)
@blp.response(200, StatementOut)
@blp.doc(security=BEARER_DOC)
@dealer_user_required
def dispute(body, statement_id):
    """对对账单提出异议（须填写说明；已确认的不能再提异议，409）"""
    service.dispute_statement(user=g.user, statement_id=statement_id, comment=body["comment"])
    return _fresh(statement_id)
