-- +goose Up
-- Events to publish (see the SQLite migration of the same number).
CREATE TABLE outbox (
    id           VARCHAR(64)  NOT NULL PRIMARY KEY,
    routing_key  VARCHAR(64)  NOT NULL,
    payload      MEDIUMBLOB   NOT NULL,
    created_at   BIGINT       NOT NULL,
    published_at BIGINT       NULL,
    lease_until  BIGINT       NOT NULL DEFAULT 0,
    KEY outbox_unpublished (published_at, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE outbox;
