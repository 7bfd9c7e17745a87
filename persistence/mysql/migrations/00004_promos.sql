-- +goose Up
-- Campaigns as listings and prices read them (see the SQLite migration of the same
-- number).
CREATE TABLE promos (
    id                   VARCHAR(64)   NOT NULL PRIMARY KEY,
    name                 VARCHAR(400)  NOT NULL,
    stage                VARCHAR(16)   NOT NULL,
    percent_off          INT           NOT NULL,
    brands               TEXT          NOT NULL,
    skus                 MEDIUMTEXT    NOT NULL,
    starts_at            BIGINT        NOT NULL,
    ends_at              BIGINT        NOT NULL,
    max_discounted_units BIGINT        NOT NULL,
    email_subject        VARCHAR(800)  NOT NULL,
    email_body           MEDIUMTEXT    NOT NULL,
    activated            BOOLEAN       NOT NULL,
    discounted_units     BIGINT        NOT NULL,
    orders               BIGINT        NOT NULL,
    created_at           BIGINT        NOT NULL,
    updated_at           BIGINT        NOT NULL,
    KEY promos_created (created_at DESC, id DESC),
    KEY promos_stage (stage, ends_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE promo_grants (
    promo_id VARCHAR(64) NOT NULL,
    order_id VARCHAR(64) NOT NULL,
    units    BIGINT      NOT NULL,
    PRIMARY KEY (promo_id, order_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

ALTER TABLE accounts ADD COLUMN promo_emails BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE accounts DROP COLUMN promo_emails;
DROP TABLE promo_grants;
DROP TABLE promos;
