-- +goose Up
-- Events to publish, each written in the transaction of the grain snapshot that
-- made it true (notify/outbox). published_at is set once the broker confirmed it;
-- lease_until lets several relays share the table without publishing a row twice
-- in normal operation. Times are Unix microseconds, UTC.
CREATE TABLE outbox (
    id           TEXT    NOT NULL PRIMARY KEY,
    routing_key  TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER,
    lease_until  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX outbox_unpublished ON outbox (published_at, created_at);

-- +goose Down
DROP TABLE outbox;
