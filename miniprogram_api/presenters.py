"""Turn service results into the dicts the response schemas describe."""
from app.orders.models import STATUS_LABELS


def priced_line(line):
    return {
        "sku_id": line.sku_id, "sku_code": line.sku_code, "name": line.name, "spec": line.spec,
        "unit": line.unit, "qty": line.qty, "list_price_fen": line.list_price_fen,
        "unit_price_fen": line.unit_price_fen, "amount_fen": line.amount_fen,
        "price_source": line.price_source,
    }


def order(o):
    return {
        "order_no": o.order_no,
        "status": o.status,
        "status_label": STATUS_LABELS[o.status],
        "payment_method": o.payment_method,
        "lines": [priced_line(line) for line in o.lines],
        "totals": {
            "subtotal_fen": o.subtotal_fen, "discount_fen": o.discount_fen,
            "shipping_fen": o.shipping_fen, "total_fen": o.total_fen,
        },
        "ship_to": {
            "contact_name": o.ship_contact, "phone": o.ship_phone,
            "region_code": o.ship_region_code, "address": o.ship_address,
        },
        "remark": o.remark,
        "created_at": o.created_at,
        "events": [
            {
                "from_status": e.from_status, "to_status": e.to_status, "label": STATUS_LABELS[e.to_status],
                "actor_type": e.actor_type, "actor_name": e.actor_name, "reason": e.reason, "at": e.created_at,
            }
            for e in o.events
        ],
    }


def order_summary(o):
    return {
        "order_no": o.order_no, "status": o.status, "status_label": STATUS_LABELS[o.status],
        "total_fen": o.total_fen, "line_count": len(o.lines), "created_at": o.created_at,
    }
