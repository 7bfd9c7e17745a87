-- +goose Up
-- Ledger windows, durable receipts and limits per customer (see the SQLite
-- migration of the same number).
ALTER TABLE inventory_sales
    ADD COLUMN sold_at BIGINT NOT NULL DEFAULT 0,
    ADD KEY inventory_sales_recent (sku, sold_at);

CREATE TABLE inventory_receipts (
    sku         VARCHAR(150) NOT NULL,
    request_id  VARCHAR(200) NOT NULL,
    quantity    BIGINT       NOT NULL,
    received_at BIGINT       NOT NULL,
    PRIMARY KEY (sku, request_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

ALTER TABLE promo_grants
    ADD COLUMN account_id VARCHAR(64) NOT NULL DEFAULT '',
    ADD COLUMN granted_at BIGINT NOT NULL DEFAULT 0,
    ADD KEY promo_grants_recent (promo_id, granted_at);

ALTER TABLE promos ADD COLUMN max_units_per_customer BIGINT NOT NULL DEFAULT 0;

CREATE TABLE promo_customers (
    promo_id   VARCHAR(64) NOT NULL,
    account_id VARCHAR(64) NOT NULL,
    units      BIGINT      NOT NULL,
    PRIMARY KEY (promo_id, account_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE promo_customers;
ALTER TABLE promos DROP COLUMN max_units_per_customer;
ALTER TABLE promo_grants DROP KEY promo_grants_recent, DROP COLUMN granted_at, DROP COLUMN account_id;
DROP TABLE inventory_receipts;
ALTER TABLE inventory_sales DROP KEY inventory_sales_recent, DROP COLUMN sold_at;
