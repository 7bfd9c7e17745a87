-- +goose Up
-- Campaigns as listings and prices read them, written with each promo grain's
-- snapshot in the same transaction (the snapshot stays the truth). brands and skus
-- are JSON arrays; times are Unix microseconds, UTC.
CREATE TABLE promos (
    id                   TEXT    NOT NULL PRIMARY KEY,
    name                 TEXT    NOT NULL,
    stage                TEXT    NOT NULL,
    percent_off          INTEGER NOT NULL,
    brands               TEXT    NOT NULL,
    skus                 TEXT    NOT NULL,
    starts_at            INTEGER NOT NULL,
    ends_at              INTEGER NOT NULL,
    max_discounted_units INTEGER NOT NULL,
    email_subject        TEXT    NOT NULL,
    email_body           TEXT    NOT NULL,
    activated            INTEGER NOT NULL,
    discounted_units     INTEGER NOT NULL,
    orders               INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX promos_created ON promos (created_at DESC, id DESC);
CREATE INDEX promos_stage ON promos (stage, ends_at);

-- The discounted units each order holds of a campaign's cap, one row per order
-- (the grant ledger, kept beside the snapshot as an inventory item's sales are).
CREATE TABLE promo_grants (
    promo_id TEXT    NOT NULL,
    order_id TEXT    NOT NULL,
    units    INTEGER NOT NULL,
    PRIMARY KEY (promo_id, order_id)
) WITHOUT ROWID;

-- A shopper's consent to campaign e-mail: off until they opt in.
ALTER TABLE accounts ADD COLUMN promo_emails INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE accounts DROP COLUMN promo_emails;
DROP TABLE promo_grants;
DROP TABLE promos;
