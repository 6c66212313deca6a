"""Turn service results into the dicts the response schemas describe."""
import json
import weakref

from app.catalog.schemas import STOCK_LEVELS
from app.catalog.service import stock_figures
from app.orders.models import STATUS_LABELS
from app.pricing.service import stored_line_values
from app.tracking import reading as tracking

# A cached priced page's items rendered once as JSON, each split where its live stock goes.
_rendered_pages = weakref.WeakKeyDictionary()


def product_page_json(priced, available, *, page, page_size):
    """The ProductPage document (see app/catalog/schemas.py) as UTF-8 JSON bytes.

    The catalogue is the hottest read: a page's priced items stay the same while the
    service caches the page, so they are rendered once and only each item's stock is
    formatted per request (`tests/test_openapi_schemathesis.py` checks the result
    against the schema).
    """
    rendered = _rendered_pages.get(priced)
    if rendered is None:
        rendered = _rendered_pages[priced] = [
            (json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[:-1].encode() + b',"stock":{"available":',
             fields["id"], low_stock_qty)
            for fields, low_stock_qty in priced.items
        ]
    parts = []
    for head, sku_id, low_stock_qty in rendered:
        units, level = stock_figures(available.get(sku_id, 0), low_stock_qty)
        parts.append(b'%s%d,"level":"%s"}}' % (head, units, _LEVELS[level]))
    after = priced.next_after(page, page_size)
    return b'{"items":[%s],"page":%d,"page_size":%d,"total":%d,"next_after":%s}\n' % (
        b",".join(parts), page, page_size, priced.total, b'"%s"' % after.encode() if after else b"null")


_LEVELS = {level: level.encode() for level in STOCK_LEVELS}


def priced_line(line):
    """A priced or order line's stored fields (`app.pricing.service.LINE_FIELDS`), as the
    PricedLineOut schema shows them."""
    return stored_line_values(line)


def order_line(line):
    # A just-placed order's lines are the quote's (nothing shipped yet).
    return {**priced_line(line), "shipped_qty": getattr(line, "shipped_qty", 0)}


def shipment(s, trail):
    return {
        "id": s.id, "seq": s.seq, "carrier": s.carrier, "tracking_no": s.tracking_no, "shipped_at": s.created_at,
        "lines": [
            {"sku_id": sl.sku_id, "sku_code": sl.order_line.sku_code, "name": sl.order_line.name,
             "unit": sl.order_line.unit, "qty": sl.qty}
            for sl in s.lines
        ],
        "tracking": trail.as_dict(),
    }


def shipment_detail(s, trail):
    return {**shipment(s, trail), "order_no": s.order.order_no}


def order(o):
    shipments = list(o.shipments)
    trails = tracking.trails([s.id for s in shipments]) if shipments else {}
    return {
        "order_no": o.order_no,
        "status": o.status,
        "status_label": STATUS_LABELS[o.status],
        "payment_method": o.payment_method,
        "lines": [order_line(line) for line in o.lines],
        "totals": {
            "subtotal_fen": o.subtotal_fen, "discount_fen": o.discount_fen,
            "shipping_fen": o.shipping_fen, "total_fen": o.total_fen, "rebate_fen": o.rebate_fen,
            "paid_fen": o.paid_fen, "due_fen": o.due_fen,
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
        "shipments": [shipment(s, trails[s.id]) for s in shipments],
    }


def order_json(o):
    """`order(o)` as UTF-8 JSON bytes, datetimes as ISO 8601 (as the OrderOut schema dumps
    them). The submit route answers with it: marshmallow's dump of the nested lines and
    events was a tenth of a submission's Python time (see bench/README.md, 性能)."""
    body = order(o)
    body["created_at"] = o.created_at.isoformat()
    for event in body["events"]:
        event["at"] = event["at"].isoformat()
    for sent in body["shipments"]:
        sent["shipped_at"] = sent["shipped_at"].isoformat()
        for line in sent["tracking"]["events"]:
            line["at"] = line["at"].isoformat()
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def order_summary(o):
    return {
        "order_no": o.order_no, "status": o.status, "status_label": STATUS_LABELS[o.status],
        "total_fen": o.total_fen, "line_count": len(o.lines), "created_at": o.created_at,
    }
