package edge

import (
	"html/template"
	"net/http"

	"github.com/gofiber/fiber/v2"
)

// The unsubscribe links of campaign e-mail (RFC 8058): a mail client's one-click
// POST unsubscribes at once; a person following the link in a browser gets a page
// whose button POSTs, so a link scanner that GETs every URL unsubscribes nobody.
// The token is the link's only credential (account.UnsubscribeTokens): a token the
// shop did not sign is a page that does not exist.

var unsubscribePage = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe - phoneshop</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto">
{{if .Done}}<h1>You are unsubscribed</h1>
<p>phoneshop sends you no more campaign e-mail. Order e-mail still comes.</p>
{{else}}<h1>Unsubscribe from campaign e-mail?</h1>
<p>You will get no more campaign e-mail from phoneshop. Order e-mail still comes.</p>
<form method="post"><button type="submit">Unsubscribe</button></form>
{{end}}</body></html>
`))

// unsubscribeAccount reads the link's token; a token the shop did not sign is 404.
func (s *server) unsubscribeAccount(c *fiber.Ctx) (string, error) {
	if s.Unsubscribe == nil {
		return "", notFound("no such page")
	}
	id, ok := s.Unsubscribe.AccountID(c.Params("token"))
	if !ok {
		return "", notFound("no such page")
	}
	return id, nil
}

func (s *server) unsubscribeForm(c *fiber.Ctx) error {
	if _, err := s.unsubscribeAccount(c); err != nil {
		return err
	}
	return renderUnsubscribe(c, false)
}

// unsubscribe is the one-click POST: whatever its body (empty, form or
// multipart), the token says who; the answer is 200, never a redirect.
func (s *server) unsubscribe(c *fiber.Ctx) error {
	id, err := s.unsubscribeAccount(c)
	if err != nil {
		return err
	}
	if _, err := s.accounts.SetPromoEmails(c.UserContext(), id, false); err != nil {
		return err
	}
	return renderUnsubscribe(c, true)
}

func renderUnsubscribe(c *fiber.Ctx, done bool) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Referrer-Policy", "no-referrer") // the token stays out of other sites' logs
	c.Status(http.StatusOK)
	return unsubscribePage.Execute(c.Response().BodyWriter(), struct{ Done bool }{done})
}
