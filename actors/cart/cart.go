// Package cart is one shopper's cart: an ordered list of SKU lines, each with a
// quantity from 1 to a configured maximum. Adding to a cart reserves nothing; stock
// is taken only at checkout, by the order. grain.go adapts it to a protoactor grain.
package cart

import (
	"errors"
	"fmt"
	"slices"
)

// Sentinel errors of the cart domain.
var (
	ErrInvalidQuantity = errors.New("cart: quantity out of range")
)

// checkedOutWindow is how many order ids a cart remembers having been emptied into.
// A retried checkout arrives soon after the first, so a short window suffices.
const checkedOutWindow = 16

// Line is one SKU in the cart.
type Line struct {
	SKU      string
	Quantity int64
}

// Cart holds lines in the order they were first added.
type Cart struct {
	lines      []Line
	checkedOut []string
	// revision counts the changes: an order remembers the revision its lines
	// came from.
	revision uint64
}

// Checkout is the confirmed order a cart's lines went into, and the revision of
// the cart they came from.
type Checkout struct {
	OrderID  string
	Revision uint64
}

// New rebuilds a cart from its persisted lines, checkout history and revision.
func New(lines []Line, checkedOut []string, revision uint64) *Cart {
	return &Cart{lines: slices.Clone(lines), checkedOut: slices.Clone(checkedOut), revision: revision}
}

// Revision counts the cart's changes; 0 for a cart that has none since it was
// written by a release that did not count them.
func (c *Cart) Revision() uint64 { return c.revision }

// Lines returns a copy of the lines.
func (c *Cart) Lines() []Line { return slices.Clone(c.lines) }

// CheckedOut returns the ids of the orders the cart was recently emptied into.
func (c *Cart) CheckedOut() []string { return slices.Clone(c.checkedOut) }

// SetQuantity sets the quantity of sku to qty, adding the line if needed; 0 removes
// it. qty above maxPerLine or below 0 is refused and changes nothing.
func (c *Cart) SetQuantity(sku string, qty int64, maxPerLine int64) (changed bool, err error) {
	if qty < 0 || qty > maxPerLine {
		return false, fmt.Errorf("%w: %d not in 0..%d", ErrInvalidQuantity, qty, maxPerLine)
	}
	i := slices.IndexFunc(c.lines, func(l Line) bool { return l.SKU == sku })
	switch {
	case i < 0 && qty == 0:
		return false, nil
	case i < 0:
		c.lines = append(c.lines, Line{SKU: sku, Quantity: qty})
	case qty == 0:
		c.lines = slices.Delete(c.lines, i, i+1)
	case c.lines[i].Quantity == qty:
		return false, nil
	default:
		c.lines[i].Quantity = qty
	}
	c.revision++
	return true, nil
}

// Clear removes every line.
func (c *Cart) Clear() (changed bool) {
	changed = len(c.lines) > 0
	c.lines = nil
	if changed {
		c.revision++
	}
	return changed
}

// CheckedOutInto empties the cart because orderID was confirmed from it, unless the
// cart already did so for that order (a retried checkout must not empty a cart that
// was filled again since).
func (c *Cart) CheckedOutInto(orderID string) (changed bool) {
	if slices.Contains(c.checkedOut, orderID) {
		return false
	}
	c.lines = nil
	c.checkedOut = append(c.checkedOut, orderID)
	if n := len(c.checkedOut); n > checkedOutWindow {
		c.checkedOut = slices.Clone(c.checkedOut[n-checkedOutWindow:])
	}
	c.revision++
	return true
}

// Recover empties the cart when its lines went into a confirmed order: the latest
// order placed from this cart came from the revision the cart holds (or a later
// one). That is a cart whose emptying was not durable yet when a crash came; the
// order was, and says so. A cart changed since the order was placed keeps its
// lines: they are not the ones bought.
func (c *Cart) Recover(last Checkout) (changed bool) {
	if last.OrderID == "" || last.Revision == 0 || last.Revision < c.revision || len(c.lines) == 0 {
		return false
	}
	return c.CheckedOutInto(last.OrderID)
}
