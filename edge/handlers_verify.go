package edge

import (
	"errors"
	"html/template"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"phoneshop/account"
)

// The links of verification mail: a person who follows one gets a page whose
// button POSTs, so a link scanner that GETs every URL verifies nobody. The token is
// the link's only credential (account.VerificationTokens): a token the shop did not
// sign, that expired, or that names another address than the account's is a page
// that does not exist.

var verifyPage = template.Must(template.New("verify").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Confirm your e-mail address - phoneshop</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto">
{{if .Done}}<h1>Your e-mail address is confirmed</h1>
<p>Thank you. phoneshop may now send you the campaign e-mail you asked for.</p>
{{else}}<h1>Confirm your e-mail address?</h1>
<p>Confirm that {{.Email}} is yours.</p>
<form method="post"><button type="submit">Confirm</button></form>
{{end}}</body></html>
`))

// verifyForm shows the button of a verification link whose token is valid.
func (s *server) verifyForm(c *fiber.Ctx) error {
	if s.Verification == nil {
		return notFound("no such page")
	}
	token := c.Params("token")
	id, ok := s.Verification.AccountID(token)
	if !ok {
		return notFound("no such page")
	}
	a, err := s.accounts.ByID(c.UserContext(), id)
	if errors.Is(err, account.ErrNotFound) || (err == nil && !s.Verification.Valid(token, a, s.now())) {
		return notFound("no such page")
	}
	if err != nil {
		return err
	}
	return renderVerify(c, a.Email, a.EmailVerified)
}

// verify is the button's POST: it verifies the address (again: still 200).
func (s *server) verify(c *fiber.Ctx) error {
	if s.Verification == nil {
		return notFound("no such page")
	}
	a, err := s.accounts.VerifyEmail(c.UserContext(), s.Verification, c.Params("token"))
	if errors.Is(err, account.ErrBadLink) {
		return notFound("no such page")
	}
	if err != nil {
		return err
	}
	return renderVerify(c, a.Email, true)
}

func renderVerify(c *fiber.Ctx, email string, done bool) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Referrer-Policy", "no-referrer") // the token stays out of other sites' logs
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Status(http.StatusOK)
	return verifyPage.Execute(c.Response().BodyWriter(), struct {
		Email string
		Done  bool
	}{email, done})
}

// requestVerification mails the caller's verification link again: 202, or 429 with
// Retry-After within the wait between two mails, or 409 when the address is
// verified already.
func (s *server) requestVerification(c *fiber.Ctx) error {
	if len(rawBody(c)) > 0 {
		var empty struct{}
		if err := decodeStrict(c, &empty); err != nil {
			return err
		}
	}
	wait, err := s.accounts.RequestVerification(c.UserContext(), caller(c).ID, s.ResendVerificationAfter)
	switch {
	case errors.Is(err, account.ErrAlreadyVerified):
		return &apiError{Status: http.StatusConflict, Code: codeConflict, Message: "this e-mail address is verified already"}
	case err != nil:
		return err
	case wait > 0:
		return rateLimited(wait, "a verification mail was sent a moment ago; ask again after the time in Retry-After")
	}
	return c.Status(http.StatusAccepted).JSON(fiber.Map{"status": "sent"})
}
