package mail_test

import (
	"testing"
	"time"

	"phoneshop/internal/mailpittest"
	"phoneshop/notify/mail"
)

// smtpConfig is an SMTP adapter configuration for mp: no TLS (it has no
// certificate), no auth.
func smtpConfig(mp *mailpittest.Server) mail.SMTPConfig {
	return mail.SMTPConfig{
		Host: mp.SMTPHost, Port: mp.SMTPPort, TLSPolicy: "none",
		Timeout: 10 * time.Second, HELO: "phoneshop.test",
	}
}

// delivered returns the raw messages mp received, oldest first.
func delivered(t *testing.T, mp *mailpittest.Server) [][]byte {
	t.Helper()
	var raws [][]byte
	for _, m := range mp.Messages(t) {
		raws = append(raws, m.Raw)
	}
	return raws
}
