-- +goose Up
-- The schema of persistence/sqlite/migrations/00001_init.sql in MySQL 8 / MariaDB 10.11
-- types. Times are Unix microseconds (BIGINT) in both, so the shared SQL compares them alike.
CREATE TABLE grain_snapshots (
    kind       VARCHAR(32)  NOT NULL,
    id         VARCHAR(191) NOT NULL,
    version    BIGINT       NOT NULL,
    state      LONGBLOB     NOT NULL,
    updated_at BIGINT       NOT NULL,
    PRIMARY KEY (kind, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE accounts (
    id            VARCHAR(64)  NOT NULL PRIMARY KEY,
    email         VARCHAR(254) NOT NULL,
    name          VARCHAR(400) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    roles         VARCHAR(255) NOT NULL,
    created_at    BIGINT       NOT NULL,
    UNIQUE KEY accounts_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE sessions (
    token_hash CHAR(64)    NOT NULL PRIMARY KEY,
    account_id VARCHAR(64) NOT NULL,
    expires_at BIGINT      NOT NULL,
    created_at BIGINT      NOT NULL,
    KEY sessions_account (account_id),
    CONSTRAINT sessions_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE categories (
    name VARCHAR(64) NOT NULL PRIMARY KEY
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Display text sorts and compares case-insensitively (name sort, brand filter); ids are binary.
CREATE TABLE phones (
    id               VARCHAR(100) NOT NULL PRIMARY KEY,
    brand            VARCHAR(50)  NOT NULL COLLATE utf8mb4_unicode_ci,
    model            VARCHAR(100) NOT NULL COLLATE utf8mb4_unicode_ci,
    name             VARCHAR(160) NOT NULL COLLATE utf8mb4_unicode_ci,
    category         VARCHAR(64)  NOT NULL,
    release_year     INT          NOT NULL,
    image_url        VARCHAR(255) NOT NULL,
    display_inches   DOUBLE       NOT NULL,
    chipset          VARCHAR(100) NOT NULL,
    ram_gb           INT          NOT NULL,
    battery_mah      INT          NOT NULL,
    main_camera_mp   INT          NOT NULL,
    five_g           BOOLEAN      NOT NULL,
    os               VARCHAR(50)  NOT NULL,
    from_price_cents BIGINT       NOT NULL,
    search_text      VARCHAR(400) NOT NULL,
    KEY phones_brand (brand),
    KEY phones_price (from_price_cents, id),
    KEY phones_name (name, id),
    KEY phones_year (release_year, id),
    CONSTRAINT phones_category_fk FOREIGN KEY (category) REFERENCES categories (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE phone_variants (
    sku           VARCHAR(150) NOT NULL PRIMARY KEY,
    phone_id      VARCHAR(100) NOT NULL,
    position      INT          NOT NULL,
    storage_gb    INT          NOT NULL,
    color         VARCHAR(64)  NOT NULL,
    price_cents   BIGINT       NOT NULL,
    initial_stock BIGINT       NOT NULL,
    KEY phone_variants_phone (phone_id, position),
    CONSTRAINT phone_variants_phone_fk FOREIGN KEY (phone_id) REFERENCES phones (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE stock_levels (
    sku        VARCHAR(150) NOT NULL PRIMARY KEY,
    available  BIGINT       NOT NULL,
    reserved   BIGINT       NOT NULL,
    sold       BIGINT       NOT NULL,
    received   BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE orders (
    id          VARCHAR(64) NOT NULL PRIMARY KEY,
    account_id  VARCHAR(64) NOT NULL,
    status      VARCHAR(16) NOT NULL,
    total_cents BIGINT      NOT NULL,
    created_at  BIGINT      NOT NULL,
    updated_at  BIGINT      NOT NULL,
    KEY orders_account_created (account_id, created_at DESC, id DESC),
    KEY orders_status (status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE orders;
DROP TABLE stock_levels;
DROP TABLE phone_variants;
DROP TABLE phones;
DROP TABLE categories;
DROP TABLE sessions;
DROP TABLE accounts;
DROP TABLE grain_snapshots;
