-- +goose Up
-- A delivery is claimed before its mail is sent: status 'sending', owner (the
-- claim's token) and lease_until (when another mailer may take over from one that
-- died mid-send). A temporary failure leaves it 'retrying' until next_attempt_at;
-- first_attempt_at is when it was first claimed (the mailer gives up on
-- temporary failures some time after). Times are Unix microseconds, UTC.
ALTER TABLE deliveries ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN first_attempt_at INTEGER NOT NULL DEFAULT 0;

-- What each mailer holds unacknowledged per queue, written every few seconds:
-- RabbitMQ does not tell a client a queue's unacknowledged count, and the ops view
-- shows it. A row not refreshed for a while is a mailer gone.
CREATE TABLE mailer_status (
    mailer_id  TEXT    NOT NULL,
    queue_name TEXT    NOT NULL,
    unacked    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (mailer_id, queue_name)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE mailer_status;
ALTER TABLE deliveries DROP COLUMN first_attempt_at;
ALTER TABLE deliveries DROP COLUMN next_attempt_at;
ALTER TABLE deliveries DROP COLUMN lease_until;
ALTER TABLE deliveries DROP COLUMN owner;
