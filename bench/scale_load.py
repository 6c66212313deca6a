"""A brand's worth of data, set-based: dealers, SKUs, two years of orders with their lines,
events, shipments, payments and ledger entries, written on top of `flask demo seed`.

Used by bench/scale.py (`load(conn, sizes, ...)`); every statement is `INSERT … SELECT
generate_series` or an aggregate over what the previous steps wrote, so 1,000,000 orders
take minutes. The rows keep the schema's invariants as the app would have left them:

- every SKU has a stock row in every warehouse; `stock.reserved` is the sum of the open
  orders' `stock_reservations`;
- every dealer has a credit account, a default address and a buyer; `credit_accounts.held_fen`
  is the sum of its open credit orders' holds (one `credit_entries` hold row each, running
  `held_after_fen`), `receivable_fen` the balance of its last receivable ledger entry;
- an order's subtotal and total are the sums of its lines (no discount, no shipping: a credit
  order at list or tier price); its status has the events that led there (submitted, approved
  or rejected or cancelled, shipped, completed), each event after the previous one;
- a shipped or completed order has one shipment of all its lines a day after approval, and
  the ledger posts receivable +total for it (ref "shipment"); on the 10th of every month each
  dealer repays what was shipped to it the month before (a `payments` row, receivable −, ref
  "payment"). Ledger ids follow time, and each dealer's receivable entries in id order replay
  its balance (`balance_after_fen` is the running sum), so statements issue without a mismatch;
- order numbers are `SO<China day><4 digits>`, counted per day in `order_no_counters`.

Simplifications (said in docs/ops/capacity.md): all bulk orders are on credit at the SKU's
list price or the dealer tier's price (`price_source` "list"/"tier"), one shipment each, no
returns, refunds, rebates used or partial shipments; credit entries exist only for the open
holds (history's hold/release pairs are left out); orders end the day before the load.
FK triggers are off during the load (`session_replication_role = replica`, superuser only):
the rows are consistent by construction and `check(conn)` verifies the invariants afterwards.
"""
import time

# Leaf regions of the demo seed (their names print as in app.dealers.addresses).
REGIONS = ("440100", "310100", "440300", "330100", "110100", "320100", "320500", "330200", "350100", "350200",
           "370100", "370200", "410100", "420100", "430100", "440600", "510100")
EXTRA_WAREHOUSES = (("WH-BJ", "华北仓", "110100", 3), ("WH-CD", "西南仓", "510100", 4), ("WH-WH", "华中仓", "420100", 5))
DAYS = 730


def sizes_for(scale):
    """Dealers, SKUs and orders of a brand at `scale` (1.0 = 5,000 / 20,000 / 1,000,000)."""
    return {"dealers": max(30, round(5000 * scale)), "skus": max(100, round(20000 * scale)),
            "orders": max(2000, round(1_000_000 * scale))}


def _step(conn, log, label, sql, params=None):
    t0 = time.perf_counter()
    cur = conn.execute(sql, params or {})
    conn.commit()
    log(f"  {label}: {cur.rowcount if cur.rowcount >= 0 else '-'} rows, {time.perf_counter() - t0:.1f} s")


def load(conn, sizes, *, end_utc, log=print):
    """Write the bulk rows. `end_utc`: the China midnight (UTC) the history ends at (today's start)."""
    p = {"nd": sizes["dealers"], "ns": sizes["skus"], "no": sizes["orders"], "days": DAYS, "end": end_utc}
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET work_mem = '64MB'")
    conn.execute("SET maintenance_work_mem = '256MB'")
    for code, name, region, priority in EXTRA_WAREHOUSES:
        conn.execute("INSERT INTO warehouses (code, name, region_code, priority) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (code, name, region, priority))
    conn.commit()
    have = conn.execute("SELECT (SELECT count(*) FROM dealers), (SELECT count(*) FROM skus)").fetchone()
    p["d0"], p["s0"] = have  # the demo's rows stay as they are; bulk rows come after them
    p["regions"] = list(REGIONS)

    _step(conn, log, "skus", """
        INSERT INTO skus (code, name, spec, unit, pack_size, moq, step, list_price_fen, low_stock_qty, category_id,
                          status, created_at)
        SELECT 'SC-' || lpad(i::text, 6, '0'), '规模商品 ' || i, (250 * (1 + i %% 8)) || 'ml×12瓶', '箱', 12,
               1 + (i %% 3 = 0)::int, 1, 1000 + (i::bigint * 7919) %% 40000, 20,
               (SELECT min(id) FROM categories) + i %% 7, 'active', %(end)s - interval '800 days'
        FROM generate_series(1, greatest(%(ns)s - %(s0)s, 0)) AS i""", p)
    _step(conn, log, "stock", """
        INSERT INTO stock (sku_id, warehouse_id, on_hand, reserved)
        SELECT s.id, w.id, 10000000, 0 FROM skus s CROSS JOIN warehouses w
        ON CONFLICT DO NOTHING""")
    _step(conn, log, "tier prices (gold 90 %, silver 95 % of list, every other SKU)", """
        INSERT INTO price_list_items (price_list_id, sku_id, price_fen)
        SELECT pl.id, s.id, s.list_price_fen * CASE t.code WHEN 'gold' THEN 90 ELSE 95 END / 100
        FROM skus s JOIN price_lists pl ON pl.kind = 'tier' AND pl.valid_to IS NULL
        JOIN tiers t ON t.id = pl.tier_id
        WHERE s.code LIKE 'SC-%%' AND s.id %% 2 = 0
        ON CONFLICT DO NOTHING""")
    _step(conn, log, "dealers", """
        INSERT INTO dealers (code, name, tier_id, region_code, rep_id, status, contact_name, contact_phone, created_at,
                             payment_terms_days)
        SELECT 'DS' || lpad(i::text, 5, '0'), '规模经销商 ' || i, (SELECT min(id) FROM tiers) + i %% 3,
               (%(regions)s::text[])[1 + i %% array_length(%(regions)s::text[], 1)],
               (SELECT array_agg(id ORDER BY id) FROM staff WHERE role = 'sales')[1 + i %% 4],
               'active', '联系人' || i, '138' || lpad(i::text, 8, '0'), %(end)s - interval '800 days', 30
        FROM generate_series(1, greatest(%(nd)s - %(d0)s, 0)) AS i""", p)
    _step(conn, log, "credit accounts, addresses, buyers", """
        WITH d AS (SELECT id, code, region_code FROM dealers WHERE code LIKE 'DS%%'),
        a AS (INSERT INTO credit_accounts (dealer_id, credit_limit_fen, receivable_fen, held_fen, prepaid_fen, rebate_fen)
              SELECT id, 10000000000000, 0, 0, 0, 0 FROM d ON CONFLICT DO NOTHING),
        ad AS (INSERT INTO addresses (dealer_id, contact_name, phone, region_code, detail, is_default, created_at)
               SELECT id, '收货人' || code, '13900000000', region_code, '规模路 ' || id || ' 号', true,
                      %(end)s - interval '800 days' FROM d)
        INSERT INTO dealer_users (dealer_id, role, name, openid, active, created_at)
        SELECT id, 'buyer', '采购员' || code, 'scale-' || code, true, %(end)s - interval '800 days' FROM d""", p)

    # Orders: n = 1..no spread evenly over the 730 days before `end`, so ids follow time.
    _step(conn, log, "staging orders", """
        CREATE UNLOGGED TABLE scale_orders AS
        WITH d AS (SELECT array_agg(d.id ORDER BY d.id) AS ids, count(*) AS cnt FROM dealers d WHERE d.code LIKE 'DS%%'),
        base AS (SELECT coalesce(max(id), 0) AS o0 FROM orders),
        o AS (
          SELECT n, base.o0 + n AS id, d.ids[1 + ((n::bigint * 2654435761) %% d.cnt)] AS dealer_id,
                 %(end)s - make_interval(secs => (%(days)s * 86400.0) * (%(no)s - n + 0.5) / %(no)s) AS created_at,
                 (n::bigint * 40503) %% 100 AS h
          FROM generate_series(1, %(no)s) AS n, d, base)
        SELECT o.*, CASE
            WHEN o.created_at < %(end)s - interval '20 days' THEN
              CASE WHEN h < 92 THEN 'completed' WHEN h < 97 THEN 'cancelled' ELSE 'rejected' END
            WHEN o.created_at < %(end)s - interval '3 days' THEN
              CASE WHEN h < 50 THEN 'shipped' WHEN h < 60 THEN 'completed' WHEN h < 80 THEN 'approved'
                   WHEN h < 95 THEN 'pending_approval' ELSE 'cancelled' END
            ELSE CASE WHEN h < 60 THEN 'pending_approval' WHEN h < 95 THEN 'approved' ELSE 'cancelled' END
          END AS status
        FROM o""", p)
    _step(conn, log, "staging lines (1-5 per order)", """
        CREATE UNLOGGED TABLE scale_lines AS
        WITH s AS (SELECT array_agg(id ORDER BY id) AS ids, count(*) AS cnt FROM skus WHERE code LIKE 'SC-%%')
        SELECT o.id AS order_id, j, s.ids[1 + ((o.n::bigint * 31 + j * 7919) %% s.cnt)] AS sku_id,
               1 + (o.n + j) %% 5 AS mult
        FROM scale_orders o, s, generate_series(1, 5) AS j
        WHERE j <= 1 + o.n %% 5""")
    conn.execute("ANALYZE scale_orders")
    conn.execute("ANALYZE scale_lines")
    _step(conn, log, "order lines", """
        INSERT INTO order_lines (order_id, sku_id, sku_code, name, spec, unit, qty, list_price_fen, unit_price_fen,
                                 amount_fen, price_source, shipped_qty)
        SELECT l.order_id, l.sku_id, s.code, s.name, s.spec, s.unit, l.mult * s.moq, s.list_price_fen,
               coalesce(pi.price_fen, s.list_price_fen), l.mult * s.moq * coalesce(pi.price_fen, s.list_price_fen),
               CASE WHEN pi.price_fen IS NULL THEN 'list' ELSE 'tier' END,
               CASE WHEN o.status IN ('shipped', 'completed') THEN l.mult * s.moq ELSE 0 END
        FROM scale_lines l JOIN scale_orders o ON o.id = l.order_id JOIN skus s ON s.id = l.sku_id
        JOIN dealers d ON d.id = o.dealer_id
        LEFT JOIN price_lists pl ON pl.kind = 'tier' AND pl.tier_id = d.tier_id AND pl.valid_to IS NULL
        LEFT JOIN price_list_items pi ON pi.price_list_id = pl.id AND pi.sku_id = l.sku_id
        ORDER BY l.order_id, l.j""")
    _step(conn, log, "orders (totals = sums of their lines)", """
        INSERT INTO orders (id, order_no, dealer_id, placed_by_id, status, payment_method, subtotal_fen, discount_fen,
                            shipping_fen, total_fen, credit_held_fen, ship_contact, ship_phone, ship_region_code,
                            ship_address, remark, created_at, updated_at, rep_approved_by_id, rep_approved_at,
                            shipped_at, paid_fen, rebate_fen)
        SELECT o.id,
               'SO' || to_char(o.created_at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')
                    || lpad((coalesce(e.n, 0) + row_number() OVER (PARTITION BY (o.created_at AT TIME ZONE 'Asia/Shanghai')::date
                                                                ORDER BY o.id))::text, 4, '0'),
               o.dealer_id, u.id, o.status, 'credit', t.amount, 0, 0, t.amount,
               CASE WHEN o.status IN ('pending_approval', 'approved') THEN t.amount ELSE 0 END,
               a.contact_name, a.phone, a.region_code, a.detail, '', o.created_at,
               o.created_at + CASE o.status WHEN 'pending_approval' THEN interval '0' WHEN 'approved' THEN interval '1 hour'
                                 WHEN 'cancelled' THEN interval '30 minutes' WHEN 'rejected' THEN interval '2 hours'
                                 WHEN 'shipped' THEN interval '20 hours' ELSE interval '3 days' END,
               CASE WHEN o.status IN ('approved', 'shipped', 'completed') THEN d.rep_id END,
               CASE WHEN o.status IN ('approved', 'shipped', 'completed') THEN o.created_at + interval '1 hour' END,
               CASE WHEN o.status IN ('shipped', 'completed') THEN o.created_at + interval '20 hours' END, 0, 0
        FROM scale_orders o
        JOIN (SELECT order_id, sum(amount_fen) AS amount FROM order_lines WHERE order_id > (SELECT min(id) - 1 FROM scale_orders)
              GROUP BY order_id) t ON t.order_id = o.id
        JOIN dealers d ON d.id = o.dealer_id
        JOIN dealer_users u ON u.dealer_id = o.dealer_id AND u.openid = 'scale-' || d.code
        JOIN addresses a ON a.dealer_id = o.dealer_id AND a.is_default
        -- numbered after the orders the demo seed already placed that day (its past months)
        LEFT JOIN (SELECT substr(order_no, 3, 8) AS day, count(*) AS n FROM orders GROUP BY 1) e
               ON e.day = to_char(o.created_at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')""")
    _step(conn, log, "order number counters", """
        INSERT INTO order_no_counters (day, last)
        SELECT (created_at AT TIME ZONE 'Asia/Shanghai')::date, count(*) FROM scale_orders GROUP BY 1
        ON CONFLICT (day) DO UPDATE SET last = order_no_counters.last + excluded.last""")
    _step(conn, log, "order events", """
        INSERT INTO order_events (order_id, from_status, to_status, actor_type, actor_id, actor_name, reason, created_at)
        SELECT order_id, f, t, at, aid, an, r, c FROM (
          SELECT o.id, NULL::varchar, 'pending_approval'::varchar, 'dealer_user'::varchar, o.placed_by_id,
                 '采购员' || d.code, NULL::varchar, o.created_at, 1 AS k
          FROM orders o JOIN dealers d ON d.id = o.dealer_id WHERE o.id IN (SELECT id FROM scale_orders)
          UNION ALL
          SELECT o.id, 'pending_approval', 'approved', 'staff', o.rep_approved_by_id, st.name, NULL,
                 o.rep_approved_at, 2
          FROM orders o JOIN staff st ON st.id = o.rep_approved_by_id WHERE o.id IN (SELECT id FROM scale_orders)
          UNION ALL
          SELECT o.id, 'pending_approval', o.status, CASE o.status WHEN 'cancelled' THEN 'dealer_user' ELSE 'staff' END,
                 CASE o.status WHEN 'cancelled' THEN o.placed_by_id ELSE d.rep_id END,
                 CASE o.status WHEN 'cancelled' THEN '采购员' || d.code ELSE st.name END,
                 CASE o.status WHEN 'cancelled' THEN '经销商取消' ELSE '价格需重新确认' END, o.updated_at, 2
          FROM orders o JOIN dealers d ON d.id = o.dealer_id LEFT JOIN staff st ON st.id = d.rep_id
          WHERE o.status IN ('cancelled', 'rejected') AND o.id IN (SELECT id FROM scale_orders)
          UNION ALL
          SELECT o.id, 'approved', 'shipped', 'staff', w.id, w.name, NULL, o.shipped_at, 3
          FROM orders o, (SELECT id, name FROM staff WHERE role = 'warehouse' ORDER BY id LIMIT 1) w
          WHERE o.status IN ('shipped', 'completed') AND o.id IN (SELECT id FROM scale_orders)
          UNION ALL
          SELECT o.id, 'shipped', 'completed', 'dealer_user', o.placed_by_id, '采购员' || d.code, NULL, o.updated_at, 4
          FROM orders o JOIN dealers d ON d.id = o.dealer_id
          WHERE o.status = 'completed' AND o.id IN (SELECT id FROM scale_orders)
        ) AS e(order_id, f, t, at, aid, an, r, c, k) ORDER BY e.c, e.order_id, e.k""")
    _step(conn, log, "shipments", """
        INSERT INTO shipments (order_id, seq, carrier, tracking_no, shipped_by_id, shipped_by_name, created_at)
        SELECT o.id, 1, '顺丰速运', 'SF' || lpad(o.id::text, 12, '0'), w.id, w.name, o.shipped_at
        FROM orders o, (SELECT id, name FROM staff WHERE role = 'warehouse' ORDER BY id LIMIT 1) w
        WHERE o.status IN ('shipped', 'completed') AND o.id IN (SELECT id FROM scale_orders) ORDER BY o.id""")
    _step(conn, log, "shipment lines", """
        INSERT INTO shipment_lines (shipment_id, order_line_id, sku_id, warehouse_id, qty)
        SELECT sh.id, l.id, l.sku_id, (SELECT array_agg(id ORDER BY id) FROM warehouses)[1 + l.sku_id %% 5], l.qty
        FROM shipments sh JOIN order_lines l ON l.order_id = sh.order_id
        WHERE sh.order_id IN (SELECT id FROM scale_orders) ORDER BY sh.id, l.id""")
    _step(conn, log, "reservations of open orders", """
        INSERT INTO stock_reservations (order_id, sku_id, warehouse_id, qty)
        SELECT l.order_id, l.sku_id, (SELECT array_agg(id ORDER BY id) FROM warehouses)[1 + l.sku_id %% 5], l.qty
        FROM order_lines l JOIN orders o ON o.id = l.order_id
        WHERE o.status IN ('pending_approval', 'approved') AND o.id IN (SELECT id FROM scale_orders)""")
    _step(conn, log, "stock.reserved = Σ reservations", """
        UPDATE stock s SET reserved = r.qty
        FROM (SELECT sku_id, warehouse_id, sum(qty) AS qty FROM stock_reservations GROUP BY 1, 2) r
        WHERE s.sku_id = r.sku_id AND s.warehouse_id = r.warehouse_id""")
    # Repayments: on the 10th, 10:00 China time, what was shipped to the dealer the month before.
    _step(conn, log, "payments (monthly repayment of last month's shipments)", """
        INSERT INTO payments (dealer_id, order_id, method, amount_fen, applied_fen, paid_at, created_at)
        SELECT dealer_id, NULL, 'offline', amount, 0, at, at FROM (
          SELECT o.dealer_id,
                 ((date_trunc('month', sh.created_at AT TIME ZONE 'Asia/Shanghai') + interval '1 month 9 days 10 hours')
                   AT TIME ZONE 'Asia/Shanghai') AS at,
                 sum(o.total_fen) AS amount
          FROM shipments sh JOIN orders o ON o.id = sh.order_id
          WHERE o.id IN (SELECT id FROM scale_orders) GROUP BY 1, 2) m
        WHERE at < %(end)s ORDER BY at, dealer_id""", p)
    conn.execute("""
        CREATE UNLOGGED TABLE scale_moves AS
        SELECT o.dealer_id, sh.created_at AS at, o.total_fen AS amount, 'shipment'::varchar AS ref_type, sh.id AS ref_id,
               'staff'::varchar AS actor_type, sh.shipped_by_id AS actor_id, sh.shipped_by_name AS actor_name,
               '订单 ' || o.order_no || ' 第 1 次发货' AS note
        FROM shipments sh JOIN orders o ON o.id = sh.order_id WHERE o.id IN (SELECT id FROM scale_orders)
        UNION ALL
        SELECT p.dealer_id, p.created_at, -p.amount_fen, 'payment', p.id, 'staff', f.id, f.name, '线下转账：回款，冲减应收账款'
        FROM payments p, (SELECT id, name FROM staff WHERE role = 'finance' ORDER BY id LIMIT 1) f
        WHERE p.order_id IS NULL AND p.dealer_id IN (SELECT id FROM dealers WHERE code LIKE 'DS%%')""", {})
    conn.commit()
    _step(conn, log, "ledger entries (ids follow time, balances running per dealer)", """
        INSERT INTO ledger_entries (id, dealer_id, account, amount_fen, balance_after_fen, ref_type, ref_id, actor_type,
                                    actor_id, actor_name, note, created_at)
        SELECT (SELECT coalesce(max(id), 0) FROM ledger_entries) + row_number() OVER w_all, dealer_id, 'receivable',
               amount, sum(amount) OVER w_dealer, ref_type, ref_id, actor_type, actor_id, actor_name, note, at
        FROM scale_moves
        WINDOW w_all AS (ORDER BY at, ref_type DESC, ref_id),
               w_dealer AS (PARTITION BY dealer_id ORDER BY at, ref_type DESC, ref_id ROWS UNBOUNDED PRECEDING)""")
    conn.execute("SELECT setval('ledger_entries_id_seq', (SELECT max(id) FROM ledger_entries))")
    conn.execute("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))")
    _step(conn, log, "credit holds of open orders", """
        INSERT INTO credit_entries (dealer_id, kind, amount_fen, held_after_fen, receivable_after_fen, limit_after_fen,
                                    order_id, note, created_at)
        SELECT o.dealer_id, 'hold', o.total_fen,
               sum(o.total_fen) OVER (PARTITION BY o.dealer_id ORDER BY o.id ROWS UNBOUNDED PRECEDING), 0,
               10000000000000, o.id, '下单占用额度', o.created_at
        FROM orders o WHERE o.status IN ('pending_approval', 'approved') AND o.id IN (SELECT id FROM scale_orders)
        ORDER BY o.id""")
    _step(conn, log, "credit accounts: receivable = last ledger balance, held = Σ open holds", """
        UPDATE credit_accounts c SET
          receivable_fen = coalesce((SELECT balance_after_fen FROM ledger_entries e WHERE e.dealer_id = c.dealer_id
                                     AND e.account = 'receivable' ORDER BY e.id DESC LIMIT 1), 0),
          held_fen = coalesce((SELECT sum(credit_held_fen) FROM orders o WHERE o.dealer_id = c.dealer_id
                               AND o.status IN ('pending_approval', 'approved')), 0)
        WHERE c.dealer_id IN (SELECT id FROM dealers WHERE code LIKE 'DS%%')""")
    for table in ("scale_moves", "scale_lines", "scale_orders"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("SET session_replication_role = origin")
    conn.commit()


CHECKS = {
    "order totals = Σ lines": """
        SELECT count(*) FROM orders o JOIN (SELECT order_id, sum(amount_fen) s FROM order_lines GROUP BY 1) l
        ON l.order_id = o.id WHERE o.subtotal_fen <> l.s OR o.total_fen <> o.subtotal_fen - o.discount_fen + o.shipping_fen""",
    "orders without a first event": """
        SELECT count(*) FROM orders o WHERE NOT EXISTS (
          SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.from_status IS NULL)""",
    "orders whose last event is not their status": """
        SELECT count(*) FROM orders o JOIN LATERAL (SELECT to_status FROM order_events e WHERE e.order_id = o.id
          ORDER BY e.id DESC LIMIT 1) e ON true WHERE e.to_status <> o.status""",
    "ledger breaks (balance_after ≠ previous + amount)": """
        SELECT count(*) FROM (SELECT balance_after_fen - amount_fen AS before,
          lag(balance_after_fen, 1, 0::bigint) OVER (PARTITION BY dealer_id, account ORDER BY id) AS prev
          FROM ledger_entries) x WHERE before <> prev""",
    "credit accounts ≠ ledger / holds": """
        SELECT count(*) FROM credit_accounts c WHERE receivable_fen <> coalesce((SELECT balance_after_fen FROM ledger_entries e
          WHERE e.dealer_id = c.dealer_id AND e.account = 'receivable' ORDER BY e.id DESC LIMIT 1), 0)
          OR held_fen <> coalesce((SELECT sum(credit_held_fen) FROM orders o WHERE o.dealer_id = c.dealer_id
          AND o.status IN ('pending_approval', 'approved', 'partially_shipped')), 0)""",
    "stock reserved ≠ Σ reservations": """
        SELECT count(*) FROM stock s WHERE reserved <> coalesce((SELECT sum(qty) FROM stock_reservations r
          WHERE r.sku_id = s.sku_id AND r.warehouse_id = s.warehouse_id), 0)""",
    "dealers without a credit account": """
        SELECT count(*) FROM dealers d WHERE NOT EXISTS (SELECT 1 FROM credit_accounts c WHERE c.dealer_id = d.id)""",
    "SKUs missing a stock row": """
        SELECT count(*) FROM skus s CROSS JOIN warehouses w WHERE NOT EXISTS (
          SELECT 1 FROM stock t WHERE t.sku_id = s.id AND t.warehouse_id = w.id)""",
}


def check(conn):
    """{check: number of violating rows}; all zero on a good load."""
    return {name: conn.execute(sql).fetchone()[0] for name, sql in CHECKS.items()}


def counts(conn):
    tables = ("dealers", "skus", "stock", "orders", "order_lines", "order_events", "shipments", "shipment_lines",
              "payments", "ledger_entries", "credit_entries", "stock_reservations")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
