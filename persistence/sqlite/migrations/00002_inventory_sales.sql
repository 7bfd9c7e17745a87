-- +goose Up
-- The sales ledger of each SKU, one row per order that bought it. It used to live in
-- the inventory snapshot, which then grew with every unit sold and was rewritten in
-- full on every write of a hot SKU; a write now adds and deletes only its own rows.
CREATE TABLE inventory_sales (
    sku      TEXT    NOT NULL,
    order_id TEXT    NOT NULL,
    quantity INTEGER NOT NULL,
    PRIMARY KEY (sku, order_id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE inventory_sales;
