-- +goose Up
-- E-mail deliveries and campaign fan-outs (see the SQLite migration of the same
-- number).
CREATE TABLE deliveries (
    kind       VARCHAR(32)   NOT NULL,
    subject    VARCHAR(64)   NOT NULL,
    recipient  VARCHAR(64)   NOT NULL,
    status     VARCHAR(16)   NOT NULL,
    attempts   INT           NOT NULL,
    last_error VARCHAR(1000) NOT NULL,
    updated_at BIGINT        NOT NULL,
    PRIMARY KEY (kind, subject, recipient)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE fanouts (
    promo_id        VARCHAR(64) NOT NULL PRIMARY KEY,
    last_account_id VARCHAR(64) NOT NULL,
    recipients      BIGINT      NOT NULL,
    done            BOOLEAN     NOT NULL,
    updated_at      BIGINT      NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE fanouts;
DROP TABLE deliveries;
