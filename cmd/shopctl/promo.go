package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"
)

// promo is a campaign as the API returns it; table output reads these fields.
type promo struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	PercentOff         int      `json:"percent_off"`
	Brands             []string `json:"brands"`
	SKUs               []string `json:"skus"`
	StartsAt           string   `json:"starts_at"`
	EndsAt             string   `json:"ends_at"`
	MaxDiscountedUnits *int64   `json:"max_discounted_units"`
	// MaxUnitsPerCustomer is absent when the campaign has no limit per customer.
	MaxUnitsPerCustomer *int64 `json:"max_units_per_customer"`
	EmailSubject        string `json:"email_subject"`
	EmailBody           string `json:"email_body"`
	Status              string `json:"status"`
	CreatedAt           string `json:"created_at"`
	UpdatedAt           string `json:"updated_at"`
	Stats               struct {
		Recipients      int64 `json:"recipients"`
		Sent            int64 `json:"sent"`
		Failed          int64 `json:"failed"`
		DiscountedUnits int64 `json:"discounted_units"`
		Orders          int64 `json:"orders"`
	} `json:"stats"`
}

// perCustomer is the limit per customer, '-' standing for none.
func (p promo) perCustomer() string {
	if p.MaxUnitsPerCustomer == nil {
		return "-"
	}
	return strconv.FormatInt(*p.MaxUnitsPerCustomer, 10)
}

// units is discounted/max, '-' standing for no cap.
func (p promo) units() string {
	limit := "-"
	if p.MaxDiscountedUnits != nil {
		limit = strconv.FormatInt(*p.MaxDiscountedUnits, 10)
	}
	return fmt.Sprintf("%d/%s", p.Stats.DiscountedUnits, limit)
}

func (a *app) promoCommand() *cobra.Command {
	return group("promo", "Create, edit, launch, pause and end discount campaigns",
		`A campaign ("promo") takes percent_off off the list price of every phone variant
of its brands and SKUs between starts_at and ends_at (end exclusive), optionally for
at most max_discounted_units units and at most max_units_per_customer units to any
one account over its life, and may e-mail the shoppers who opted in.

Its life: create makes a draft; edit changes a draft; launch makes it scheduled
(before starts_at) or active; pause stops the discount; launch again resumes it;
end finishes it for good (it also ends by itself at ends_at). The shop answers a
move it does not allow with "conflict" (exit 1).

Every promo command needs the marketing or admin role.`,
		`  shopctl promo create --name "Black Friday" --percent-off 20 --brand Apple \
      --starts-at 2026-11-27T00:00:00Z --ends-at 2026-11-30T00:00:00Z --max-units 500
  shopctl promo list --status active
  shopctl promo launch promo_0123456789abcdef01234567`,
		a.promoCreateCommand(), a.promoListCommand(), a.promoGetCommand(), a.promoEditCommand(),
		a.promoMoveCommand("launch", "Launch a draft or resume a paused campaign",
			"Launch the campaign: a draft or a paused campaign becomes scheduled (before its\nstart) or active. The shop answers any other move with \"conflict\"."),
		a.promoMoveCommand("pause", "Pause a scheduled or active campaign",
			"Pause the campaign: a scheduled or active campaign stops discounting until it\nis launched again. The shop answers any other move with \"conflict\"."),
		a.promoMoveCommand("end", "End a campaign for good",
			"End the campaign: it stops discounting and can never be launched again."),
	)
}

// promoFlags are the campaign fields as flags, shared by create and edit.
type promoFlags struct {
	name                    string
	percentOff, maxUnits    int
	maxPerCustomer          int
	brands, skus            []string
	startsAt, endsAt        string
	emailSubject, emailBody string
	emailBodyFile           string
	noCap, noLimit          bool
}

func (f *promoFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.name, "name", "", "campaign name, 1-100 characters")
	fs.IntVar(&f.percentOff, "percent-off", 0, "discount in percent, 1-90")
	fs.StringArrayVar(&f.brands, "brand", nil, "a brand the campaign covers (repeat for more; --brand= for none)")
	fs.StringArrayVar(&f.skus, "sku", nil, "a SKU the campaign covers (repeat for more; --sku= for none)")
	fs.StringVar(&f.startsAt, "starts-at", "", "when the discount starts: RFC 3339 or now, +2h, +30m, +7d")
	fs.StringVar(&f.endsAt, "ends-at", "", "when it ends (exclusive): RFC 3339 or now, +2h, +30m, +7d")
	fs.IntVar(&f.maxUnits, "max-units", 0, "at most this many units sold at the discount (no cap when absent)")
	fs.StringVar(&f.emailSubject, "email-subject", "", "subject of the campaign e-mail")
	fs.StringVar(&f.emailBody, "email-body", "", "body of the campaign e-mail")
	fs.StringVar(&f.emailBodyFile, "email-body-file", "", "read the e-mail body from this file ('-' for stdin)")
	cmd.MarkFlagsMutuallyExclusive("email-body", "email-body-file")
	fs.BoolVar(&f.noCap, "no-cap", false, "no cap on the discounted units (removes one set before)")
	cmd.MarkFlagsMutuallyExclusive("max-units", "no-cap")
	fs.IntVar(&f.maxPerCustomer, "max-per-customer", 0,
		"at most this many units to one customer at the discount over the campaign's life, 1-100 (no limit when absent)")
	fs.BoolVar(&f.noLimit, "no-max-per-customer", false, "no limit per customer (removes one set before)")
	cmd.MarkFlagsMutuallyExclusive("max-per-customer", "no-max-per-customer")
}

// body returns the fields given on the command line under the API's names, so an
// edit sends exactly what was asked to change.
func (a *app) promoBody(cmd *cobra.Command, f *promoFlags) (map[string]any, error) {
	given := cmd.Flags().Changed
	body := map[string]any{}
	if given("name") {
		body["name"] = f.name
	}
	if given("percent-off") {
		body["percent_off"] = f.percentOff
	}
	if given("brand") {
		body["brands"] = nonEmpty(f.brands)
	}
	if given("sku") {
		body["skus"] = nonEmpty(f.skus)
	}
	for _, t := range []struct{ flag, field, value string }{
		{"starts-at", "starts_at", f.startsAt}, {"ends-at", "ends_at", f.endsAt},
	} {
		if !given(t.flag) {
			continue
		}
		ts, err := parseTime(t.value, a.now())
		if err != nil {
			return nil, usagef("invalid --%s: %v", t.flag, err)
		}
		body[t.field] = ts
	}
	if given("max-units") {
		body["max_discounted_units"] = f.maxUnits
	}
	if given("no-cap") && f.noCap {
		body["max_discounted_units"] = nil // JSON null: no cap
	}
	if given("max-per-customer") {
		// The shop checks the range (1-100) and says so: one rule, in one place.
		body["max_units_per_customer"] = f.maxPerCustomer
	}
	if given("no-max-per-customer") && f.noLimit {
		body["max_units_per_customer"] = nil // JSON null: no limit
	}
	if given("email-subject") {
		body["email_subject"] = f.emailSubject
	}
	if given("email-body") {
		body["email_body"] = f.emailBody
	}
	if given("email-body-file") {
		text, err := a.readFileOrStdin(f.emailBodyFile)
		if err != nil {
			return nil, err
		}
		body["email_body"] = text
	}
	return body, nil
}

func (a *app) readFileOrStdin(path string) (string, error) {
	if path == "-" {
		raw, err := io.ReadAll(a.stdin)
		if err != nil {
			return "", fmt.Errorf("read stdin: %w", err)
		}
		return string(raw), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return string(raw), nil
}

// nonEmpty drops empty entries, so that --brand= clears the list.
func nonEmpty(values []string) []string {
	out := []string{} // [] rather than null: the API wants a list
	for _, v := range values {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (a *app) promoCreateCommand() *cobra.Command {
	var f promoFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a draft campaign",
		Long: `Create a campaign (POST /api/v1/promos). It starts as a draft: nothing is
discounted until 'shopctl promo launch'.

Required: --name, --percent-off (1-90), --starts-at, --ends-at, and at least one
--brand or --sku. Every brand and SKU must exist in the catalog; the shop lists
unknown ones in the error's details. --ends-at must be after --starts-at and in
the future.

Times are ` + timeHelp + `.
They are sent as RFC 3339 in UTC.`,
		Example: `  # 20% off every Apple phone for the next two days, e-mail from a file
  shopctl promo create --name "Apple week" --percent-off 20 --brand Apple \
      --starts-at now --ends-at +2d --email-subject "20% off Apple" --email-body-file mail.txt

  # Two SKUs, a fixed window, at most 50 discounted units and 2 to any one customer
  shopctl promo create --name "Flash sale" --percent-off 35 \
      --sku apple-iphone-16-128-black --sku samsung-galaxy-s24-128-onyx-black \
      --starts-at 2026-11-27T18:00:00Z --ends-at 2026-11-27T20:00:00Z --max-units 50 --max-per-customer 2`,
		Args: noArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			body, err := a.promoBody(cmd, &f)
			if err != nil {
				return err
			}
			for _, list := range []string{"brands", "skus"} {
				if _, ok := body[list]; !ok {
					body[list] = []string{}
				}
			}
			return a.callAndShowPromo(cmd, request{method: "POST", path: "/api/v1/promos", body: body})
		}),
	}
	f.register(cmd)
	for _, name := range []string{"name", "percent-off", "starts-at", "ends-at"} {
		_ = cmd.MarkFlagRequired(name) // fails only for an undefined flag
	}
	cmd.MarkFlagsOneRequired("brand", "sku")
	return cmd
}

func (a *app) promoEditCommand() *cobra.Command {
	var f promoFlags
	cmd := &cobra.Command{
		Use:   "edit ID",
		Short: "Change fields of a draft campaign",
		Long: `Change a draft campaign (PATCH /api/v1/promos/{id}). Only the flags given are
sent; every other field keeps its value. --brand and --sku replace the whole list
(--brand= empties it); --no-cap and --no-max-per-customer remove the cap and the
limit per customer. Once launched a campaign can no longer be edited: the shop
answers "conflict".

Times are ` + timeHelp + `.`,
		Example: `  shopctl promo edit promo_0123456789abcdef01234567 --percent-off 25
  shopctl promo edit promo_0123456789abcdef01234567 --brand Apple --brand Samsung --ends-at +3d
  shopctl promo edit promo_0123456789abcdef01234567 --max-per-customer 2`,
		Args: exactArgs("ID"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			body, err := a.promoBody(cmd, &f)
			if err != nil {
				return err
			}
			if len(body) == 0 {
				return usagef("nothing to change: give at least one field flag")
			}
			return a.callAndShowPromo(cmd, request{method: "PATCH", path: "/api/v1/promos/" + escape(args[0]), body: body})
		}),
	}
	f.register(cmd)
	return cmd
}

func (a *app) promoGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one campaign with its statistics",
		Long: `Show a campaign (GET /api/v1/promos/{id}): its fields (MAX PER CUSTOMER is the
limit per customer, '-' when there is none), its status and its statistics
(e-mails sent and failed, discounted units, orders).`,
		Example: `  shopctl promo get promo_0123456789abcdef01234567
  shopctl -o json promo get promo_0123456789abcdef01234567 | jq .stats`,
		Args: exactArgs("ID"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.callAndShowPromo(cmd, request{method: "GET", path: "/api/v1/promos/" + escape(args[0])})
		}),
	}
}

func (a *app) promoMoveCommand(move, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:     move + " ID",
		Short:   short,
		Long:    long + "\n\nPOST /api/v1/promos/{id}/" + move + "; shows the campaign as it is afterwards.",
		Example: "  shopctl promo " + move + " promo_0123456789abcdef01234567",
		Args:    exactArgs("ID"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.callAndShowPromo(cmd, request{method: "POST", path: "/api/v1/promos/" + escape(args[0]) + "/" + move})
		}),
	}
}

func (a *app) callAndShowPromo(cmd *cobra.Command, req request) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	raw, err := c.do(cmd.Context(), req)
	if err != nil {
		return err
	}
	return show(a, raw, promoDetail)
}

// promoDetail draws one campaign as field/value lines.
func promoDetail(w io.Writer, p promo) {
	row(w, "ID", p.ID)
	row(w, "NAME", p.Name)
	row(w, "STATUS", p.Status)
	row(w, "PERCENT OFF", fmt.Sprintf("%d%%", p.PercentOff))
	row(w, "BRANDS", list(p.Brands))
	row(w, "SKUS", list(p.SKUs))
	row(w, "STARTS", p.StartsAt)
	row(w, "ENDS", p.EndsAt)
	row(w, "UNITS (discounted/max)", p.units())
	row(w, "MAX PER CUSTOMER", p.perCustomer())
	row(w, "ORDERS", p.Stats.Orders)
	row(w, "E-MAILS (sent/failed of recipients)", fmt.Sprintf("%d/%d of %d", p.Stats.Sent, p.Stats.Failed, p.Stats.Recipients))
	row(w, "E-MAIL SUBJECT", p.EmailSubject)
	row(w, "E-MAIL BODY", fmt.Sprintf("%d characters (see -o json)", len([]rune(p.EmailBody))))
	row(w, "CREATED", p.CreatedAt)
	row(w, "UPDATED", p.UpdatedAt)
}

func (a *app) promoListCommand() *cobra.Command {
	var (
		status, pageToken string
		pageSize          int
		all               bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List campaigns, newest first",
		Long: `List campaigns, newest first (GET /api/v1/promos), one page at a time.

The table shows ID, NAME, STATUS, PERCENT, STARTS, ENDS, UNITS and ORDERS; UNITS is
discounted/max units ('-' when there is no cap). When there are more pages, the
command to get the next one is printed to stderr; --all fetches every page (with
-o json they are merged into one {"items": [...]}).`,
		Example: `  shopctl promo list
  shopctl promo list --status active
  shopctl promo list --all -o json | jq -r '.items[] | select(.status == "draft") | .id'`,
		Args: noArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			query := url.Values{}
			if status != "" {
				query.Set("status", status)
			}
			if pageSize > 0 {
				query.Set("page_size", strconv.Itoa(pageSize))
			}
			if pageToken != "" {
				query.Set("page_token", pageToken)
			}
			return a.listPromos(cmd, c, query, all)
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&status, "status", "", "only campaigns in this status: draft, scheduled, active, paused or ended")
	fs.IntVar(&pageSize, "page-size", 0, "campaigns per page, 1-100 (default: the shop's, 20)")
	fs.StringVar(&pageToken, "page-token", "", "the page to start at, from an earlier list")
	fs.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

// promoPage is one page of GET /api/v1/promos, items kept raw for -o json.
type promoPage struct {
	Items         []json.RawMessage `json:"items"`
	NextPageToken string            `json:"next_page_token"`
}

func (a *app) listPromos(cmd *cobra.Command, c *apiClient, query url.Values, all bool) error {
	var merged promoPage
	merged.Items = []json.RawMessage{}
	seen := map[string]bool{}
	for {
		raw, err := c.do(cmd.Context(), request{method: "GET", path: "/api/v1/promos", query: query})
		if err != nil {
			return err
		}
		if !all && a.output == "json" {
			return printJSON(a.stdout, raw)
		}
		var page promoPage
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		merged.Items = append(merged.Items, page.Items...)
		merged.NextPageToken = page.NextPageToken
		if !all || page.NextPageToken == "" {
			break
		}
		if seen[page.NextPageToken] { // a shop that loops must not hang the command
			return fmt.Errorf("the shop returned page token %q twice", page.NextPageToken)
		}
		seen[page.NextPageToken] = true
		query.Set("page_token", page.NextPageToken)
	}
	raw, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	if err := show(a, raw, promoTable); err != nil {
		return err
	}
	if merged.NextPageToken != "" && a.output == "table" {
		fmt.Fprintf(a.stderr, "more: repeat with --page-token %s, or use --all\n", merged.NextPageToken)
	}
	return nil
}

func promoTable(w io.Writer, page struct {
	Items []promo `json:"items"`
}) {
	row(w, "ID", "NAME", "STATUS", "PERCENT", "STARTS", "ENDS", "UNITS", "ORDERS")
	for _, p := range page.Items {
		row(w, p.ID, p.Name, p.Status, fmt.Sprintf("%d%%", p.PercentOff), p.StartsAt, p.EndsAt, p.units(), p.Stats.Orders)
	}
}
