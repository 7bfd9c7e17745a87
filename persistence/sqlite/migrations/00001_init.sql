-- +goose Up
-- Grain snapshots: one row per (kind, identity); every write is fenced on version.
CREATE TABLE grain_snapshots (
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    state      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    roles         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT    NOT NULL REFERENCES accounts (id),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE categories (
    name TEXT PRIMARY KEY
);

CREATE TABLE phones (
    id               TEXT PRIMARY KEY,
    brand            TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    category         TEXT    NOT NULL REFERENCES categories (name),
    release_year     INTEGER NOT NULL,
    image_url        TEXT    NOT NULL,
    display_inches   REAL    NOT NULL,
    chipset          TEXT    NOT NULL,
    ram_gb           INTEGER NOT NULL,
    battery_mah      INTEGER NOT NULL,
    main_camera_mp   INTEGER NOT NULL,
    five_g           INTEGER NOT NULL,
    os               TEXT    NOT NULL,
    from_price_cents INTEGER NOT NULL,
    search_text      TEXT    NOT NULL
);
CREATE INDEX phones_brand ON phones (brand);
CREATE INDEX phones_price ON phones (from_price_cents, id);
CREATE INDEX phones_name ON phones (name, id);
CREATE INDEX phones_year ON phones (release_year, id);

CREATE TABLE phone_variants (
    sku           TEXT PRIMARY KEY,
    phone_id      TEXT    NOT NULL REFERENCES phones (id),
    position      INTEGER NOT NULL,
    storage_gb    INTEGER NOT NULL,
    color         TEXT    NOT NULL,
    price_cents   INTEGER NOT NULL,
    initial_stock INTEGER NOT NULL
);
CREATE INDEX phone_variants_phone ON phone_variants (phone_id, position);

-- Stock levels recorded by inventory grains with their snapshots (a query view).
CREATE TABLE stock_levels (
    sku        TEXT PRIMARY KEY,
    available  INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    sold       INTEGER NOT NULL,
    received   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Orders as listings need them, written with the order snapshot (a query view).
CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    account_id  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    total_cents INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX orders_account_created ON orders (account_id, created_at DESC, id DESC);
CREATE INDEX orders_status ON orders (status);

-- +goose Down
DROP TABLE orders;
DROP TABLE stock_levels;
DROP TABLE phone_variants;
DROP TABLE phones;
DROP TABLE categories;
DROP TABLE sessions;
DROP TABLE accounts;
DROP TABLE grain_snapshots;
