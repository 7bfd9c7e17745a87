-- +goose Up
-- The revision of the cart an order was placed from: a cart whose emptying was
-- lost in a crash finds the confirmed order of its lines and empties itself again.
ALTER TABLE orders ADD COLUMN cart_revision BIGINT NOT NULL DEFAULT 0;
CREATE INDEX orders_cart_revision ON orders (account_id, cart_revision);

-- +goose Down
DROP INDEX orders_cart_revision;
ALTER TABLE orders DROP COLUMN cart_revision;
