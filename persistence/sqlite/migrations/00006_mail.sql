-- +goose Up
-- One row per e-mail the shop means to send: a campaign's to one account
-- (kind 'promo', subject the campaign, recipient the account), an order's per event
-- (kind 'order.confirmed' ..., subject the order). The mailer writes it before it
-- acknowledges the message, so a redelivered message whose mail is sent is not sent
-- again. status: sending, sent, failed.
CREATE TABLE deliveries (
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, subject, recipient)
) WITHOUT ROWID;

-- How far a campaign's fan-out (one promo.email event per opted-in account) has
-- come: it pages through the accounts by id and resumes after the last page a
-- crash left written.
CREATE TABLE fanouts (
    promo_id        TEXT    NOT NULL PRIMARY KEY,
    last_account_id TEXT    NOT NULL,
    recipients      INTEGER NOT NULL,
    done            INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE fanouts;
DROP TABLE deliveries;
