-- +goose Up
-- Delivery claims and attempts, and the mailers' in-flight counts (see the SQLite
-- migration of the same number).
ALTER TABLE deliveries
    ADD COLUMN owner            VARCHAR(128) NOT NULL DEFAULT '',
    ADD COLUMN lease_until      BIGINT       NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at  BIGINT       NOT NULL DEFAULT 0,
    ADD COLUMN first_attempt_at BIGINT       NOT NULL DEFAULT 0;

CREATE TABLE mailer_status (
    mailer_id  VARCHAR(128) NOT NULL,
    queue_name VARCHAR(255) NOT NULL,
    unacked    BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL,
    PRIMARY KEY (mailer_id, queue_name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE mailer_status;
ALTER TABLE deliveries DROP COLUMN first_attempt_at, DROP COLUMN next_attempt_at, DROP COLUMN lease_until, DROP COLUMN owner;
