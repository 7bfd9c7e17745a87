package mailer

import (
	"bytes"
	"fmt"
	"html/template"
	"net/url"
	"strings"

	"phoneshop/account"
	"phoneshop/actors/order"
	"phoneshop/actors/promo"
	"phoneshop/notify/mail"
	"phoneshop/notify/outbox"
)

// messageHost is the right-hand side of the shop's Message-IDs: the public URL's
// host, so ids are unique to the shop that sent them.
func messageHost(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "phoneshop"
}

// PromoMessageID is the Message-ID of a campaign's mail to an account: stable, so
// the same mail sent twice is recognisable as one by every mail system on the way.
func PromoMessageID(promoID, accountID, publicURL string) string {
	return fmt.Sprintf("promo.%s.%s@%s", promoID, accountID, messageHost(publicURL))
}

// OrderMessageID is the Message-ID of an order's mail for one event.
func OrderMessageID(event, orderID, publicURL string) string {
	return fmt.Sprintf("%s.%s@%s", event, orderID, messageHost(publicURL))
}

var promoHTML = template.Must(template.New("promo").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
{{range .Paragraphs}}<p>{{.}}</p>
{{end}}<p style="color: #666; font-size: small">You get this because you asked for phoneshop's campaign e-mail.
<a href="{{.Unsubscribe}}">Unsubscribe</a>.</p>
</body></html>
`))

// promoMessage is a campaign's mail to one shopper (RFC 8058 one-click unsubscribe).
func promoMessage(l promo.Listing, a account.Account, cfg Config) mail.Message {
	unsubscribe := strings.TrimRight(cfg.PublicURL, "/") + "/u/" + cfg.Unsubscribe.Token(a.ID)
	subject := l.EmailSubject
	if strings.TrimSpace(subject) == "" {
		subject = l.Name
	}
	body := l.EmailBody
	if strings.TrimSpace(body) == "" {
		body = fmt.Sprintf("%s: %d%% off, until %s.", l.Name, l.PercentOff, l.EndsAt.UTC().Format("2 January 2006 15:04 MST"))
	}
	text := body + "\n\n--\nYou get this because you asked for phoneshop's campaign e-mail.\nUnsubscribe: " + unsubscribe + "\n"
	var paragraphs []string
	for _, p := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			paragraphs = append(paragraphs, p)
		}
	}
	var html bytes.Buffer
	_ = promoHTML.Execute(&html, struct {
		Paragraphs  []string
		Unsubscribe string
	}{paragraphs, unsubscribe})
	return mail.Message{
		From: cfg.From, To: a.Email, Subject: subject, Text: text, HTML: html.String(),
		MessageID: PromoMessageID(l.ID, a.ID, cfg.PublicURL),
		Headers: map[string]string{
			"List-Unsubscribe":      "<" + unsubscribe + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"Precedence":            "bulk",
		},
	}
}

var orderSubjects = map[string]string{
	outbox.OrderConfirmed: "Your phoneshop order %s is confirmed",
	outbox.OrderCancelled: "Your phoneshop order %s is cancelled",
	outbox.OrderShipped:   "Your phoneshop order %s has shipped",
}

var orderHTML = template.Must(template.New("order").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
<p>{{.Intro}}</p>
<table cellpadding="4">
{{range .Lines}}<tr><td>{{.Name}}</td><td>{{.Quantity}} x {{.Unit}}</td><td>{{if .Discount}}-{{.Discount}}{{end}}</td></tr>
{{end}}</table>
<p>Subtotal {{.Subtotal}}{{if .Discount}}, discount -{{.Discount}}{{end}}. <strong>Total {{.Total}}</strong></p>
<p>Shipping to: {{.Address}}</p>
<p>Order {{.OrderID}}</p>
</body></html>
`))

// orderMessage is an order's mail for one event: transactional, sent whatever the
// shopper's campaign e-mail preference says.
func orderMessage(event string, p order.EventPayload, a account.Account, cfg Config) mail.Message {
	money := func(cents int64) string { return formatMoney(cents, p.Currency) }
	intro := map[string]string{
		outbox.OrderConfirmed: "Thank you: your order is confirmed.",
		outbox.OrderCancelled: "Your order is cancelled; nothing is charged for it.",
		outbox.OrderShipped:   "Your order is on its way.",
	}[event]
	addr := p.ShippingAddress
	address := strings.Join(nonEmpty(addr.Name, addr.Line1, addr.Line2, addr.PostalCode+" "+addr.City, addr.Country), ", ")
	type line struct {
		Name, Unit, Discount string
		Quantity             int64
	}
	var lines []line
	var text strings.Builder
	fmt.Fprintf(&text, "%s\n\n", intro)
	for _, l := range p.Lines {
		ln := line{Name: l.Name, Quantity: l.Quantity, Unit: money(l.UnitPriceCents)}
		fmt.Fprintf(&text, "%s  %d x %s", l.Name, l.Quantity, ln.Unit)
		if l.DiscountCents > 0 {
			ln.Discount = money(l.DiscountCents)
			fmt.Fprintf(&text, "  (discount -%s)", ln.Discount)
		}
		text.WriteString("\n")
		lines = append(lines, ln)
	}
	fmt.Fprintf(&text, "\nSubtotal %s", money(p.SubtotalCents))
	discount := ""
	if p.DiscountCents > 0 {
		discount = money(p.DiscountCents)
		fmt.Fprintf(&text, ", discount -%s", discount)
	}
	fmt.Fprintf(&text, "\nTotal %s\n\nShipping to: %s\nOrder %s\n", money(p.TotalCents), address, p.OrderID)
	var html bytes.Buffer
	_ = orderHTML.Execute(&html, struct {
		Intro, Subtotal, Discount, Total, Address, OrderID string
		Lines                                              []line
	}{intro, money(p.SubtotalCents), discount, money(p.TotalCents), address, p.OrderID, lines})
	return mail.Message{
		From: cfg.From, To: a.Email, Subject: fmt.Sprintf(orderSubjects[event], p.OrderID),
		Text: text.String(), HTML: html.String(), MessageID: OrderMessageID(event, p.OrderID, cfg.PublicURL),
	}
}

func nonEmpty(parts ...string) []string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// formatMoney writes integer minor units as the amount and its currency.
func formatMoney(cents int64, currency string) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	if currency == "USD" {
		return fmt.Sprintf("%s$%d.%02d", sign, cents/100, cents%100)
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, cents/100, cents%100, currency)
}
