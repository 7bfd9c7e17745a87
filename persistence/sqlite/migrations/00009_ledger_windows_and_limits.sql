-- +goose Up
-- When each sale was made (Unix microseconds; 0 for the sales stored before this
-- migration, which count as old). An inventory grain loads only the recent sales
-- and looks an older one up by its order when a command names it, so an activation
-- no longer loads every sale a SKU ever made.
ALTER TABLE inventory_sales ADD COLUMN sold_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX inventory_sales_recent ON inventory_sales (sku, sold_at);

-- Every delivery a SKU received, by the request id that makes it idempotent (a
-- restock's Idempotency-Key): a repeated one adds nothing, however many others
-- came between. The snapshot keeps only the most recent ones.
CREATE TABLE inventory_receipts (
    sku         TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    quantity    INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (sku, request_id)
) WITHOUT ROWID;

-- A campaign's grants as an inventory item's sales: when each was made (0 for the
-- grants stored before, which count as old), and the account of its order.
ALTER TABLE promo_grants ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
ALTER TABLE promo_grants ADD COLUMN granted_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX promo_grants_recent ON promo_grants (promo_id, granted_at);

-- The most units one account may buy at a campaign's discount (0: no limit).
ALTER TABLE promos ADD COLUMN max_units_per_customer INTEGER NOT NULL DEFAULT 0;

-- The units each account holds at the discount of a campaign with a limit per
-- customer, written with the grant that changes them, in the same transaction. The
-- grain reads an account's row when the account's order asks for a grant, instead
-- of loading every customer's at activation.
CREATE TABLE promo_customers (
    promo_id   TEXT    NOT NULL,
    account_id TEXT    NOT NULL,
    units      INTEGER NOT NULL,
    PRIMARY KEY (promo_id, account_id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE promo_customers;
ALTER TABLE promos DROP COLUMN max_units_per_customer;
DROP INDEX promo_grants_recent;
ALTER TABLE promo_grants DROP COLUMN granted_at;
ALTER TABLE promo_grants DROP COLUMN account_id;
DROP TABLE inventory_receipts;
DROP INDEX inventory_sales_recent;
ALTER TABLE inventory_sales DROP COLUMN sold_at;
