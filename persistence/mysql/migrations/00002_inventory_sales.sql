-- +goose Up
-- The sales ledger of each SKU, one row per order that bought it (see the SQLite
-- migration of the same number for why it left the inventory snapshot).
CREATE TABLE inventory_sales (
    sku      VARCHAR(150) NOT NULL,
    order_id VARCHAR(64)  NOT NULL,
    quantity BIGINT       NOT NULL,
    PRIMARY KEY (sku, order_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE inventory_sales;
