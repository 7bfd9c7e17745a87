package mailer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"

	"phoneshop/account"
	"phoneshop/notify/delivery"
	"phoneshop/notify/mail"
	"phoneshop/notify/outbox"
)

// verificationMail sends the link that proves an address its owner's. The link is
// minted when the mail is sent, so it lasts its full life from then. A request whose
// address was verified meanwhile is skipped.
func (m *Mailer) verificationMail(ctx context.Context, msg Message) (Outcome, error) {
	var p outbox.AccountVerificationPayload
	if err := json.Unmarshal(msg.Body, &p); err != nil || p.AccountID == "" || p.RequestedAt == 0 {
		return DeadLetter, fmt.Errorf("%w: account.verification body %q", errMalformed, msg.Body)
	}
	if m.cfg.Verification == nil {
		return DeadLetter, fmt.Errorf("%w: this mailer cannot sign verification links (no secret)", errMalformed)
	}
	key := delivery.Key{Kind: outbox.AccountVerification, Subject: fmt.Sprint(p.RequestedAt), Recipient: p.AccountID}
	return m.deliver(ctx, msg, key, func() (mail.Message, delivery.Status, error) {
		a, skip, err := m.recipient(ctx, p.AccountID)
		if skip != "" || err != nil {
			return mail.Message{}, skip, err
		}
		if a.EmailVerified {
			return mail.Message{}, delivery.Skipped, nil
		}
		return verificationMessage(a, p.RequestedAt, m.cfg.Verification, m.cfg), "", nil
	})
}

var verificationHTML = template.Must(template.New("verification").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
<p>Someone, we hope you, signed up at phoneshop with this address.</p>
<p><a href="{{.Link}}">Confirm that this address is yours</a> (the link works until {{.Until}}).</p>
<p style="color: #666; font-size: small">If it was not you, ignore this mail: the address gets no campaign e-mail until it is confirmed.</p>
</body></html>
`))

// verificationMessage is the mail with a's verification link. It carries nothing
// the sign-up wrote (not even the name): whoever signs up an address that is not
// theirs cannot use the shop to mail their own words to it.
func verificationMessage(a account.Account, requestedAt int64, tokens *account.VerificationTokens, cfg Config) mail.Message {
	now := cfg.Now()
	link := strings.TrimRight(cfg.PublicURL, "/") + "/verify/" + tokens.Token(a, now)
	until := now.Add(tokens.TTL()).UTC().Format("2 January 2006 15:04 MST")
	text := "Someone, we hope you, signed up at phoneshop with this address.\n\n" +
		"Confirm that this address is yours: " + link + "\n(the link works until " + until + ")\n\n" +
		"If it was not you, ignore this mail: the address gets no campaign e-mail until it is confirmed.\n"
	var html bytes.Buffer
	_ = verificationHTML.Execute(&html, struct{ Link, Until string }{link, until})
	return mail.Message{
		From: cfg.From, To: a.Email, Subject: "Confirm your e-mail address for phoneshop",
		Text: text, HTML: html.String(),
		MessageID: fmt.Sprintf("verify.%s.%d@%s", a.ID, requestedAt, messageHost(cfg.PublicURL)),
		Headers:   map[string]string{"Auto-Submitted": "auto-generated"},
	}
}
