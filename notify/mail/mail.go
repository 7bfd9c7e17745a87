// Package mail sends the shop's e-mail: one rendered Message at a time, through an
// SMTP server in production (SMTP) or into a directory of .eml files on the
// embedded default (Files). Both build the message with go-mail, so a .eml file is
// byte for byte the kind of RFC 5322 message the SMTP adapter puts on the wire, and
// both classify what goes wrong the same way: ErrTemporary (try again later) or
// ErrPermanent (this message will never go).
//
// Sending is not idempotent by itself: the guard against sending one mail twice is
// the caller's delivery record (notify/delivery). What each adapter does with a
// repeated MessageID is documented on it.
package mail

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// Message is one e-mail, already rendered.
type Message struct {
	From    string // "phoneshop <shop@example.com>"
	To      string // one address
	Subject string
	Text    string // plain text part (required)
	HTML    string // optional HTML part: the mail is multipart/alternative when set
	// MessageID is the Message-ID without angle brackets, for instance
	// "promo.<campaign>.<account>@phoneshop". It is stable: the same logical mail
	// always has the same id, so every mail system on the way can tell a repeat.
	MessageID string
	// Headers are extra header fields written as given, for instance
	// List-Unsubscribe, List-Unsubscribe-Post and Precedence. They may not replace
	// the fields the package writes itself (see reservedHeaders).
	Headers map[string]string
}

// Sender sends one message. A nil error means the message was handed over: the
// SMTP server accepted it, or its file is on disk.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Errors that Send returns wrap exactly one of these, so callers decide with
// errors.Is whether to retry; the wrapped cause (a go-mail *SendError, a
// context error, an I/O error) stays reachable with errors.As and errors.Is.
var (
	// ErrTemporary: the message may go later. SMTP 4xx replies, connection
	// failures, timeouts, a cancelled context, a full disk.
	ErrTemporary = errors.New("mail: temporary failure")
	// ErrPermanent: this message will never go as it is. SMTP 5xx replies to the
	// message (MAIL FROM, RCPT TO, DATA) and an invalid Message.
	ErrPermanent = errors.New("mail: permanent failure")
)

// maxMessageIDLen bounds MessageID: a Message-ID header stays well inside the
// 998-character line limit of RFC 5322.
const maxMessageIDLen = 250

// reservedHeaders are the fields written from Message's own fields or by go-mail
// (lower case). Setting one in Headers would write it twice or contradict the
// envelope, so validate rejects it.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "sender": true, "subject": true,
	"message-id": true, "date": true, "mime-version": true, "content-type": true,
	"content-transfer-encoding": true,
}

// permanent wraps err as ErrPermanent.
func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrPermanent, fmt.Errorf(format, args...))
}

// temporary wraps err as ErrTemporary.
func temporary(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrTemporary, fmt.Errorf(format, args...))
}

// interrupted is the error of a Send that ctx stopped: temporary, and errors.Is
// also finds the context's error. cause is what the interrupted I/O reported, if
// anything.
func interrupted(ctx context.Context, cause error) error {
	if cause != nil {
		return fmt.Errorf("%w: %w (%v)", ErrTemporary, context.Cause(ctx), cause)
	}
	return fmt.Errorf("%w: %w", ErrTemporary, context.Cause(ctx))
}

// toMsg validates m and builds the go-mail message both adapters write. An
// invalid message is ErrPermanent: sending it again cannot succeed.
func toMsg(m Message) (*gomail.Msg, error) {
	from, err := parseAddress("From", m.From)
	if err != nil {
		return nil, err
	}
	to, err := parseAddress("To", m.To)
	if err != nil {
		return nil, err
	}
	if err := validateMessageID(m.MessageID); err != nil {
		return nil, err
	}
	if m.Text == "" {
		return nil, permanent("mail: message %s has no text part", m.MessageID)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, permanent("mail: message %s: subject has a line break", m.MessageID)
	}
	for name, value := range m.Headers {
		if err := validateHeader(name, value); err != nil {
			return nil, permanent("mail: message %s: %w", m.MessageID, err)
		}
	}

	// go-mail's default User-Agent names the library and its version: nothing a
	// recipient needs.
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.MessageID)
	msg.SetDate()
	for name, value := range m.Headers {
		msg.SetGenHeader(gomail.Header(name), value)
	}
	// UTF-8, quoted-printable (go-mail's defaults): readable in a .eml file and
	// 7-bit safe on the wire.
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// parseAddress parses one RFC 5322 address (with or without a display name).
func parseAddress(field, s string) (*netmail.Address, error) {
	if strings.TrimSpace(s) == "" {
		return nil, permanent("mail: no %s address", field)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, permanent("mail: %s address %q: %w", field, s, err)
	}
	return a, nil
}

// validateMessageID accepts the msg-id of RFC 5322 without its angle brackets
// and in its common form, id-left "@" id-right with both dot-atom-text. That
// keeps the header simple to parse for every mail system on the way; the
// no-fold-literal form ("a@[b]") is refused.
func validateMessageID(id string) error {
	if id == "" {
		return permanent("mail: no message id")
	}
	if len(id) > maxMessageIDLen {
		return permanent("mail: message id %.40q... is longer than %d bytes", id, maxMessageIDLen)
	}
	left, right, ok := strings.Cut(id, "@")
	if !ok || !isDotAtom(left) || !isDotAtom(right) {
		return permanent("mail: message id %q is not of the form left@right (dot-atoms, no angle brackets)", id)
	}
	return nil
}

// isDotAtom reports whether s is RFC 5322 dot-atom-text: atext runs joined by
// single dots.
func isDotAtom(s string) bool {
	if s == "" {
		return false
	}
	for atom := range strings.SplitSeq(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return false
			}
		}
	}
	return true
}

// isAtext reports whether c is an RFC 5322 atext character (ASCII only).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// validateHeader checks an extra header: an RFC 5322 field name that is not one
// the package writes itself, and a value on one line (go-mail folds long values
// and encodes non-ASCII ones).
func validateHeader(name, value string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("header name %q is not an RFC 5322 field name", name)
		}
	}
	if reservedHeaders[strings.ToLower(name)] {
		return fmt.Errorf("header %s is set from the message's own fields", name)
	}
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("header %s has a line break", name)
	}
	return nil
}
