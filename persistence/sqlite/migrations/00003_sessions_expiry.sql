-- +goose Up
-- Expired sessions are purged in the background; the purge finds them by expiry.
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- +goose Down
DROP INDEX sessions_expiry;
