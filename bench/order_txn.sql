-- The database-side ceiling: the raw SQL of one order submission, driven by pgbench.
--
--   pgbench -n -c 8 -j 2 -T 15 -f bench/order_txn.sql \
--     -D did0=<first bench dealer id> -D nd=<bench dealers> -D uid0=<first bench user id> \
--     -D smin=<min sku id> -D smax=<max sku id> -D wh=<warehouse id> <bench database>
--
-- bench/run.py passes the -D values (bench dealers and their users have consecutive ids;
-- run.py checks that). One transaction = what the brief calls the order transaction:
-- lock the dealer's credit row and 3 stock rows FOR UPDATE (sorted, like
-- app/inventory/service.py, so concurrent clients queue instead of deadlocking), insert
-- the order and its 3 lines (snapshotting SKU name/spec/unit/price, qty = MOQ, ship-to
-- from the dealer's default address), reserve the stock, hold the credit, commit.
-- Every NOT NULL column gets a value: the schema has no server defaults.
--
-- It deliberately leaves out what the app also writes per order (stock_reservations,
-- order_events, credit_entries, idempotency_keys, the daily order-number sequence,
-- the price/visibility lookups): it is the floor the database needs, not a replica.
\set i random(0, :nd - 1)
\set did :did0 + :i
\set uid :uid0 + :i
\set s1 random(:smin, :smax - 2)
\set s2 random(:s1 + 1, :smax - 1)
\set s3 random(:s2 + 1, :smax)
\set ono random(1, 999999999999999)
BEGIN;
SELECT credit_limit_fen, receivable_fen, held_fen FROM credit_accounts WHERE dealer_id = :did FOR UPDATE;
SELECT sku_id, on_hand - reserved AS available FROM stock WHERE warehouse_id = :wh AND sku_id IN (:s1, :s2, :s3) ORDER BY sku_id FOR UPDATE;
INSERT INTO orders (order_no, dealer_id, placed_by_id, status, payment_method, subtotal_fen, discount_fen, shipping_fen, total_fen, credit_held_fen, ship_contact, ship_phone, ship_region_code, ship_address, remark, created_at, updated_at) SELECT 'PB' || :ono, :did, :uid, 'pending_approval', 'credit', t.total, 0, 0, t.total, t.total, a.contact_name, a.phone, a.region_code, a.detail, '', now(), now() FROM (SELECT sum(list_price_fen * moq) AS total FROM skus WHERE id IN (:s1, :s2, :s3)) AS t, addresses AS a WHERE a.dealer_id = :did AND a.is_default LIMIT 1 RETURNING id AS oid, total_fen AS total \gset
INSERT INTO order_lines (order_id, sku_id, sku_code, name, spec, unit, qty, list_price_fen, unit_price_fen, amount_fen, price_source) SELECT :oid, id, code, name, spec, unit, moq, list_price_fen, list_price_fen, list_price_fen * moq, 'list' FROM skus WHERE id IN (:s1, :s2, :s3) ORDER BY id;
UPDATE stock SET reserved = stock.reserved + s.moq FROM skus AS s WHERE s.id = stock.sku_id AND stock.warehouse_id = :wh AND stock.sku_id IN (:s1, :s2, :s3);
UPDATE credit_accounts SET held_fen = held_fen + :total WHERE dealer_id = :did;
COMMIT;
