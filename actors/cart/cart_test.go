package cart

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const maxPerLine = 5

// assertLines compares the cart's lines, treating nil and empty as the same.
func assertLines(t *testing.T, c *Cart, want []Line) {
	t.Helper()
	if diff := cmp.Diff(want, c.Lines(), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("lines (-want +got):\n%s", diff)
	}
}

func TestSetQuantity(t *testing.T) {
	abc := []Line{{"a", 1}, {"b", 2}, {"c", 3}}
	tests := []struct {
		name        string
		start       []Line
		sku         string
		qty         int64
		wantChanged bool
		wantErr     error
		want        []Line
	}{
		{
			name: "adds_line_to_empty_cart",
			sku:  "a", qty: 2, wantChanged: true,
			want: []Line{{"a", 2}},
		},
		{
			name:  "adds_new_line_at_the_end",
			start: abc, sku: "d", qty: 1, wantChanged: true,
			want: []Line{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 1}},
		},
		{
			name:  "updates_existing_line_in_place",
			start: abc, sku: "b", qty: 4, wantChanged: true,
			want: []Line{{"a", 1}, {"b", 4}, {"c", 3}},
		},
		{
			name:  "zero_removes_line_keeping_order_of_others",
			start: abc, sku: "b", qty: 0, wantChanged: true,
			want: []Line{{"a", 1}, {"c", 3}},
		},
		{
			name:  "zero_removes_last_remaining_line",
			start: []Line{{"a", 1}}, sku: "a", qty: 0, wantChanged: true,
			want: nil,
		},
		{
			name:  "zero_for_absent_sku_is_a_noop",
			start: abc, sku: "z", qty: 0, wantChanged: false,
			want: abc,
		},
		{
			name:  "same_quantity_is_a_noop",
			start: abc, sku: "c", qty: 3, wantChanged: false,
			want: abc,
		},
		{
			name:  "quantity_equal_to_max_is_accepted",
			start: abc, sku: "a", qty: maxPerLine, wantChanged: true,
			want: []Line{{"a", maxPerLine}, {"b", 2}, {"c", 3}},
		},
		{
			name:  "negative_fails_invalid_quantity_and_changes_nothing",
			start: abc, sku: "a", qty: -1, wantErr: ErrInvalidQuantity,
			want: abc,
		},
		{
			name:  "negative_for_absent_sku_fails_and_adds_nothing",
			start: abc, sku: "z", qty: -3, wantErr: ErrInvalidQuantity,
			want: abc,
		},
		{
			name:  "above_max_fails_invalid_quantity_and_changes_nothing",
			start: abc, sku: "b", qty: maxPerLine + 1, wantErr: ErrInvalidQuantity,
			want: abc,
		},
		{
			name:  "above_max_for_absent_sku_fails_and_adds_nothing",
			start: abc, sku: "z", qty: maxPerLine + 1, wantErr: ErrInvalidQuantity,
			want: abc,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.start, []string{"ord-1"}, 0)
			changed, err := c.SetQuantity(tc.sku, tc.qty, maxPerLine)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("SetQuantity() unexpected error %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetQuantity() error = %v, want %v", err, tc.wantErr)
			}
			if changed != tc.wantChanged {
				t.Fatalf("SetQuantity() changed = %v, want %v", changed, tc.wantChanged)
			}
			assertLines(t, c, tc.want)
			if diff := cmp.Diff([]string{"ord-1"}, c.CheckedOut()); diff != "" {
				t.Fatalf("checked out (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetQuantitySequenceKeepsFirstAddedOrder(t *testing.T) {
	type set struct {
		sku         string
		qty         int64
		wantChanged bool
		want        []Line
	}
	c := New(nil, nil, 0)
	for i, s := range []set{
		{"a", 1, true, []Line{{"a", 1}}},
		{"b", 1, true, []Line{{"a", 1}, {"b", 1}}},
		{"c", 1, true, []Line{{"a", 1}, {"b", 1}, {"c", 1}}},
		{"a", 3, true, []Line{{"a", 3}, {"b", 1}, {"c", 1}}},
		{"b", 0, true, []Line{{"a", 3}, {"c", 1}}},
		{"b", 2, true, []Line{{"a", 3}, {"c", 1}, {"b", 2}}},
		{"a", 3, false, []Line{{"a", 3}, {"c", 1}, {"b", 2}}},
		{"a", 0, true, []Line{{"c", 1}, {"b", 2}}},
		{"a", 0, false, []Line{{"c", 1}, {"b", 2}}},
	} {
		changed, err := c.SetQuantity(s.sku, s.qty, maxPerLine)
		if err != nil {
			t.Fatalf("step %d: SetQuantity(%s, %d) = %v", i, s.sku, s.qty, err)
		}
		if changed != s.wantChanged {
			t.Fatalf("step %d: SetQuantity(%s, %d) changed = %v, want %v", i, s.sku, s.qty, changed, s.wantChanged)
		}
		assertLines(t, c, s.want)
	}
}

func TestNewAndAccessorsCopy(t *testing.T) {
	lines := []Line{{"a", 1}, {"b", 2}}
	ids := []string{"ord-1"}
	c := New(lines, ids, 0)

	lines[0].Quantity = 99
	ids[0] = "changed"
	assertLines(t, c, []Line{{"a", 1}, {"b", 2}})
	if diff := cmp.Diff([]string{"ord-1"}, c.CheckedOut()); diff != "" {
		t.Fatalf("New did not copy checked-out ids (-want +got):\n%s", diff)
	}

	got := c.Lines()
	got[1].Quantity = 99
	out := c.CheckedOut()
	out[0] = "changed"
	assertLines(t, c, []Line{{"a", 1}, {"b", 2}})
	if diff := cmp.Diff([]string{"ord-1"}, c.CheckedOut()); diff != "" {
		t.Fatalf("CheckedOut did not return a copy (-want +got):\n%s", diff)
	}
}

func TestClear(t *testing.T) {
	tests := []struct {
		name        string
		start       []Line
		wantChanged bool
	}{
		{"clear_with_lines_empties_and_reports_change", []Line{{"a", 1}, {"b", 2}}, true},
		{"clear_of_empty_cart_is_a_noop", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.start, []string{"ord-1"}, 0)
			if got := c.Clear(); got != tc.wantChanged {
				t.Fatalf("Clear() = %v, want %v", got, tc.wantChanged)
			}
			assertLines(t, c, nil)
			if got := c.Clear(); got {
				t.Fatalf("second Clear() = true, want false")
			}
			// clearing is not a checkout: the history stays
			if diff := cmp.Diff([]string{"ord-1"}, c.CheckedOut()); diff != "" {
				t.Fatalf("checked out (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckedOutInto(t *testing.T) {
	type op struct {
		fill        []Line // set before the checkout
		order       string
		wantChanged bool
		wantLines   []Line
		wantIDs     []string
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"empties_the_cart_and_remembers_the_order", []op{
			{fill: []Line{{"a", 1}, {"b", 2}}, order: "ord-1", wantChanged: true, wantIDs: []string{"ord-1"}},
		}},
		{"empty_cart_is_still_marked_checked_out", []op{
			{order: "ord-1", wantChanged: true, wantIDs: []string{"ord-1"}},
			{order: "ord-1", wantChanged: false, wantIDs: []string{"ord-1"}},
		}},
		{"repeat_with_same_order_after_refilling_does_not_empty", []op{
			{fill: []Line{{"a", 1}}, order: "ord-1", wantChanged: true, wantIDs: []string{"ord-1"}},
			{fill: []Line{{"b", 2}}, order: "ord-1", wantChanged: false,
				wantLines: []Line{{"b", 2}}, wantIDs: []string{"ord-1"}},
		}},
		{"another_order_empties_again", []op{
			{fill: []Line{{"a", 1}}, order: "ord-1", wantChanged: true, wantIDs: []string{"ord-1"}},
			{fill: []Line{{"b", 2}}, order: "ord-2", wantChanged: true, wantIDs: []string{"ord-1", "ord-2"}},
			{fill: []Line{{"c", 3}}, order: "ord-1", wantChanged: false,
				wantLines: []Line{{"c", 3}}, wantIDs: []string{"ord-1", "ord-2"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(nil, nil, 0)
			for i, o := range tc.ops {
				for _, l := range o.fill {
					if _, err := c.SetQuantity(l.SKU, l.Quantity, maxPerLine); err != nil {
						t.Fatalf("op %d: fill: %v", i, err)
					}
				}
				if got := c.CheckedOutInto(o.order); got != o.wantChanged {
					t.Fatalf("op %d: CheckedOutInto(%s) = %v, want %v", i, o.order, got, o.wantChanged)
				}
				assertLines(t, c, o.wantLines)
				if diff := cmp.Diff(o.wantIDs, c.CheckedOut()); diff != "" {
					t.Fatalf("op %d: checked out (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestCheckedOutIntoWindow(t *testing.T) {
	c := New(nil, nil, 0)
	var want []string
	for i := range checkedOutWindow {
		id := fmt.Sprintf("ord-%d", i)
		if !c.CheckedOutInto(id) {
			t.Fatalf("CheckedOutInto(%s) = false, want true", id)
		}
		want = append(want, id)
	}
	if diff := cmp.Diff(want, c.CheckedOut()); diff != "" {
		t.Fatalf("after %d orders (-want +got):\n%s", checkedOutWindow, diff)
	}

	// all 16 are remembered: retries change nothing
	mustSet(t, c, "a", 1)
	if c.CheckedOutInto("ord-0") {
		t.Fatalf("CheckedOutInto(ord-0) with 16 remembered = true, want false")
	}
	assertLines(t, c, []Line{{"a", 1}})

	// a 17th order pushes the oldest out
	if !c.CheckedOutInto("ord-16") {
		t.Fatalf("CheckedOutInto(ord-16) = false, want true")
	}
	want = append(want[1:], "ord-16")
	if diff := cmp.Diff(want, c.CheckedOut()); diff != "" {
		t.Fatalf("after 17 orders (-want +got):\n%s", diff)
	}
	assertLines(t, c, nil)

	mustSet(t, c, "b", 2)
	if c.CheckedOutInto("ord-1") {
		t.Fatalf("CheckedOutInto(ord-1), still in the window, = true, want false")
	}
	assertLines(t, c, []Line{{"b", 2}})
	// ord-0 fell out of the window, so it is treated as new
	if !c.CheckedOutInto("ord-0") {
		t.Fatalf("CheckedOutInto(ord-0), forgotten, = false, want true")
	}
	assertLines(t, c, nil)
	want = append(want[1:], "ord-0")
	if diff := cmp.Diff(want, c.CheckedOut()); diff != "" {
		t.Fatalf("after forgotten order again (-want +got):\n%s", diff)
	}
	if got := len(c.CheckedOut()); got != checkedOutWindow {
		t.Fatalf("remembers %d ids, want %d", got, checkedOutWindow)
	}
}

func mustSet(t *testing.T, c *Cart, sku string, qty int64) {
	t.Helper()
	if _, err := c.SetQuantity(sku, qty, maxPerLine); err != nil {
		t.Fatalf("SetQuantity(%s, %d) = %v", sku, qty, err)
	}
}

// TestRecover: a cart empties itself from the confirmed order placed from its
// revision (or a later one), and keeps lines changed since.
func TestRecover(t *testing.T) {
	filled := func() *Cart {
		c := New(nil, nil, 0)
		if _, err := c.SetQuantity("a", 1, 5); err != nil {
			t.Fatal(err)
		}
		return c // revision 1
	}
	for _, tc := range []struct {
		name  string
		cart  func() *Cart
		last  Checkout
		empty bool
	}{
		{"placed_from_this_revision", filled, Checkout{OrderID: "o1", Revision: 1}, true},
		{"no_order", filled, Checkout{}, false},
		{"order_from_an_older_revision", func() *Cart {
			c := filled()
			_, _ = c.SetQuantity("b", 1, 5)
			return c
		}, Checkout{OrderID: "o1", Revision: 1}, false},
		{"order_from_no_revision", func() *Cart { return New([]Line{{SKU: "a", Quantity: 1}}, nil, 0) }, Checkout{OrderID: "o1"}, false},
		{"already_emptied_into_it", func() *Cart {
			c := filled()
			c.CheckedOutInto("o1")
			return c
		}, Checkout{OrderID: "o1", Revision: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cart()
			before := c.Revision()
			changed := c.Recover(tc.last)
			if changed != tc.empty || (len(c.Lines()) == 0) != (tc.empty || len(tc.cart().Lines()) == 0) {
				t.Fatalf("Recover(%+v) = %v, lines %v", tc.last, changed, c.Lines())
			}
			if changed && (c.Revision() != before+1 || !slices.Contains(c.CheckedOut(), tc.last.OrderID)) {
				t.Fatalf("recovered cart: revision %d (was %d), checked out %v", c.Revision(), before, c.CheckedOut())
			}
		})
	}
}
