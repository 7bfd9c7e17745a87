package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// stockLevel is an inventory level as the ops API returns it.
type stockLevel struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
	Received  int64  `json:"received"`
}

func (a *app) stockCommand() *cobra.Command {
	return group("stock", "Read and receive stock of a SKU",
		`Read a SKU's stock level and record deliveries. Needs the ops or admin role.

A level has available (on sale), reserved (held by checkouts in progress), sold
and received (every unit ever delivered): available + reserved + sold = received.`,
		`  shopctl stock get apple-iphone-16-pro-128-black-titanium
  shopctl stock receive apple-iphone-16-pro-128-black-titanium 40`,
		a.stockGetCommand(), a.stockReceiveCommand(),
	)
}

func (a *app) stockGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get SKU",
		Short:   "Show a SKU's stock level",
		Long:    "Show a SKU's stock level (GET /api/v1/ops/inventory/{sku}). An unknown SKU is \"not_found\".",
		Example: "  shopctl stock get apple-iphone-16-pro-128-black-titanium",
		Args:    exactArgs("SKU"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), request{method: "GET", path: "/api/v1/ops/inventory/" + escape(args[0])})
			if err != nil {
				return err
			}
			return show(a, raw, stockTable)
		}),
	}
}

func (a *app) stockReceiveCommand() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "receive SKU N",
		Short: "Record a delivery of N units of a SKU",
		Long: `Add N units (1 to 1000000) to a SKU's stock (PUT /api/v1/ops/inventory/{sku}) and
show the level afterwards.

Each delivery is sent with an Idempotency-Key, so that the shop counts it once
however often it is sent with that key. shopctl makes a new key for each run; when
a run fails without a clear answer (the shop was unreachable, timed out or failed),
it prints the key, and the same command with --key KEY is safe to repeat.`,
		Example: `  shopctl stock receive apple-iphone-16-pro-128-black-titanium 40

  # Name the delivery after the supplier's note, so a repeat is harmless
  shopctl stock receive apple-iphone-16-pro-128-black-titanium 40 --key delivery-2026-11-20-0042`,
		Args: exactArgs("SKU", "N"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			units, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || units < 1 {
				return usagef("N must be a whole number of units from 1, got %q", args[1])
			}
			if key == "" {
				if key, err = newIdempotencyKey(); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), request{method: "PUT", path: "/api/v1/ops/inventory/" + escape(args[0]),
				body: map[string]int64{"received": units}, header: map[string]string{"Idempotency-Key": key}})
			if err != nil {
				if outcomeUnknown(err) {
					fmt.Fprintf(a.stderr, "the shop may have recorded this delivery; repeat it safely with: --key %s\n", key)
				}
				return err
			}
			return show(a, raw, stockTable)
		}),
	}
	cmd.Flags().StringVar(&key, "key", "", "Idempotency-Key of this delivery, 1-128 printable ASCII characters (default: a new random one)")
	return cmd
}

// outcomeUnknown tells whether a request may have taken effect although it failed:
// the shop was not reached, or failed itself. A 4xx answer is a clear refusal.
func outcomeUnknown(err error) bool {
	var apiErr *apiError
	return !errors.As(err, &apiErr) || apiErr.Status >= 500
}

func newIdempotencyKey() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make an Idempotency-Key: %w", err)
	}
	return "shopctl-" + hex.EncodeToString(b), nil
}

func stockTable(w io.Writer, l stockLevel) {
	row(w, "SKU", "AVAILABLE", "RESERVED", "SOLD", "RECEIVED")
	row(w, l.SKU, l.Available, l.Reserved, l.Sold, l.Received)
}

// order is the part of an order that the ops table shows.
type order struct {
	ID         string            `json:"id"`
	Status     string            `json:"status"`
	Items      []json.RawMessage `json:"items"`
	TotalCents int64             `json:"total_cents"`
	Currency   string            `json:"currency"`
	Address    map[string]string `json:"shipping_address"`
	CreatedAt  string            `json:"created_at"`
	UpdatedAt  string            `json:"updated_at"`
}

func (a *app) orderCommand() *cobra.Command {
	return group("order", "Move orders through shipping and delivery",
		`Move an order on: a confirmed order is shipped, a shipped order delivered. Needs
the ops or admin role. An unknown order is "not_found"; a move the order's status
does not allow is "conflict".`,
		`  shopctl order ship ord_0123456789abcdef01234567
  shopctl order deliver ord_0123456789abcdef01234567`,
		a.orderMoveCommand("ship", "Mark a confirmed order shipped"),
		a.orderMoveCommand("deliver", "Mark a shipped order delivered"),
	)
}

func (a *app) orderMoveCommand(move, short string) *cobra.Command {
	return &cobra.Command{
		Use:     move + " ID",
		Short:   short,
		Long:    short + " (POST /api/v1/ops/orders/{id}/" + move + ") and show the order afterwards.",
		Example: "  shopctl order " + move + " ord_0123456789abcdef01234567",
		Args:    exactArgs("ID"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), request{method: "POST", path: "/api/v1/ops/orders/" + escape(args[0]) + "/" + move})
			if err != nil {
				return err
			}
			return show(a, raw, orderTable)
		}),
	}
}

func orderTable(w io.Writer, o order) {
	row(w, "ID", "STATUS", "ITEMS", "TOTAL", "SHIP TO", "UPDATED")
	shipTo := strings.TrimSpace(o.Address["name"] + ", " + o.Address["city"] + " " + o.Address["country"])
	row(w, o.ID, o.Status, len(o.Items), money(o.TotalCents, o.Currency), strings.Trim(shipTo, ", "), o.UpdatedAt)
}

// clusterView is the part of GET /api/v1/ops/cluster that the table shows.
type clusterView struct {
	Members []struct {
		ID          string           `json:"id"`
		Address     string           `json:"address"`
		Status      string           `json:"status"`
		Kinds       []string         `json:"kinds"`
		Activations map[string]int64 `json:"activations"`
	} `json:"members"`
}

func (a *app) clusterCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster's members and their grain activations",
		Long: `Show every cluster member the edge knows of (GET /api/v1/ops/cluster): its id,
address, status (up, or unreachable when it did not answer in time), the grain
kinds it hosts, and one column per kind with its activations there ('-' when the
member did not answer). Needs the ops or admin role.

-o json prints the whole view, with totals, the edge's counters and the health of
the shop's dependencies.`,
		Example: `  shopctl cluster
  shopctl -o json cluster | jq .health`,
		Args: noArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), request{method: "GET", path: "/api/v1/ops/cluster"})
			if err != nil {
				return err
			}
			return show(a, raw, clusterTable)
		}),
	}
}

func clusterTable(w io.Writer, v clusterView) {
	// A column per kind any member hosts or reports, in a stable order.
	var kinds []string
	for _, m := range v.Members {
		kinds = append(kinds, m.Kinds...)
		for k := range m.Activations {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	kinds = slices.Compact(kinds)

	header := []any{"MEMBER", "ADDRESS", "STATUS", "KINDS"}
	for _, k := range kinds {
		header = append(header, strings.ToUpper(k))
	}
	row(w, header...)
	for _, m := range v.Members {
		cells := []any{m.ID, m.Address, m.Status, list(m.Kinds)}
		for _, k := range kinds {
			n, ok := m.Activations[k]
			if !ok {
				cells = append(cells, "-")
				continue
			}
			cells = append(cells, n)
		}
		row(w, cells...)
	}
}
