-- +goose Up
-- Whether the account's owner proved the address theirs (a verification link), and
-- when the last verification mail was asked for (a resend waits a while).
ALTER TABLE accounts ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN verification_sent_at BIGINT NOT NULL DEFAULT 0;

-- A row to lock: a change of roles that takes admin away holds the 'admins' row for
-- its transaction, so two admins who demote each other at once are serialised, and
-- the second finds it would leave the shop without an admin.
CREATE TABLE shop_locks (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    n    BIGINT      NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT INTO shop_locks (name, n) VALUES ('admins', 0);

-- Ops list the orders of one status oldest first (orders to ship, parked sagas).
CREATE INDEX orders_status_created ON orders (status, created_at, id);

-- +goose Down
DROP INDEX orders_status_created ON orders;
DROP TABLE shop_locks;
ALTER TABLE accounts DROP COLUMN verification_sent_at, DROP COLUMN email_verified;
