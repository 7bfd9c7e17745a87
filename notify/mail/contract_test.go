package mail_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/mailpittest"
	"phoneshop/notify/mail"
)

// harness is one adapter under the contract: the sender, and what it handed over.
type harness struct {
	sender mail.Sender
	// delivered returns the raw RFC 5322 messages handed over so far, oldest first.
	delivered func(t *testing.T) [][]byte
	// copiesOfRepeat is how many messages two Sends of one MessageID leave: the
	// adapter's documented behaviour (Files: 1, the file is replaced; SMTP: 2).
	copiesOfRepeat int
}

// adapters are the Senders the contract runs against, each with a fresh
// outbox or server per test.
var adapters = []struct {
	name  string
	start func(t *testing.T) harness
}{
	{"Files", func(t *testing.T) harness {
		dir := filepath.Join(t.TempDir(), "outbox")
		return harness{sender: mail.NewFiles(dir), delivered: func(t *testing.T) [][]byte { return readOutbox(t, dir) }, copiesOfRepeat: 1}
	}},
	{"FilesUnsynced", func(t *testing.T) harness {
		dir := filepath.Join(t.TempDir(), "outbox")
		return harness{sender: mail.NewFiles(dir).Unsynced(), delivered: func(t *testing.T) [][]byte { return readOutbox(t, dir) }, copiesOfRepeat: 1}
	}},
	{"SMTP", func(t *testing.T) harness {
		mp := mailpittest.Start(t)
		s := mail.NewSMTP(smtpConfig(mp))
		t.Cleanup(func() { s.Close() })
		return harness{sender: s, delivered: func(t *testing.T) [][]byte { return delivered(t, mp) }, copiesOfRepeat: 2}
	}},
}

func TestContract(t *testing.T) {
	for _, a := range adapters {
		t.Run(a.name, func(t *testing.T) { runContract(t, a.start) })
	}
}

// longUnsubscribe is longer than go-mail's 76-column fold: the header must still
// arrive verbatim once unfolded.
const longUnsubscribe = "<https://shop.example.com/u/eyJhIjoiYWNjLTEyMzQ1Njc4OTAiLCJjIjoicHJvbW8tc3VtbWVyIn0.c2lnbmF0dXJlLWJ5dGVz>, <mailto:unsubscribe@shop.example.com?subject=unsubscribe>"

// promoMessage is a campaign mail with everything the shop sets.
func promoMessage() mail.Message {
	return mail.Message{
		From:    "phoneshop <shop@example.com>",
		To:      "Jürgen Groß <juergen@example.net>",
		Subject: "Größe € — 20 % auf alle Phones",
		Text: "Hallo Jürgen,\n\nGröße € zählt: alle Phones 20 % günstiger, nur diese Woche. " +
			"Diese Zeile ist absichtlich länger als sechsundsiebzig Zeichen, damit quoted-printable umbricht.\n\n-- \nphoneshop\n",
		HTML:      "<!doctype html>\n<html><body><p>Hallo Jürgen,</p><p>Größe € zählt: <b>20 %</b> günstiger.</p></body></html>\n",
		MessageID: "promo.summer-2026.acc-1234567890@phoneshop",
		Headers: map[string]string{
			"List-Unsubscribe":      longUnsubscribe,
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"Precedence":            "bulk",
		},
	}
}

func runContract(t *testing.T, start func(t *testing.T) harness) {
	t.Run("delivers_once_with_headers_and_utf8_parts", func(t *testing.T) {
		h := start(t)
		m := promoMessage()
		if err := h.sender.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := onlyMessage(t, h.delivered(t))
		if diff := cmp.Diff(expect(m), got.view()); diff != "" {
			t.Errorf("delivered message (-want +got):\n%s", diff)
		}
		if _, err := got.header.Date(); err != nil {
			t.Errorf("Date: %v", err)
		}
		if v := got.header.Get("MIME-Version"); v != "1.0" {
			t.Errorf("MIME-Version = %q, want 1.0", v)
		}
		if got.mediaType != "multipart/alternative" {
			t.Errorf("Content-Type %s, want multipart/alternative", got.mediaType)
		}
	})

	t.Run("text_only_is_one_text_plain_part", func(t *testing.T) {
		h := start(t)
		m := promoMessage()
		m.HTML, m.Headers = "", nil
		if err := h.sender.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := onlyMessage(t, h.delivered(t))
		if diff := cmp.Diff(expect(m), got.view()); diff != "" {
			t.Errorf("delivered message (-want +got):\n%s", diff)
		}
		if got.mediaType != "text/plain" {
			t.Errorf("Content-Type %s, want text/plain", got.mediaType)
		}
	})

	t.Run("message_id_with_path_characters_arrives_verbatim", func(t *testing.T) {
		h := start(t)
		m := promoMessage()
		m.MessageID = "order/confirmed%2F?#~ord-1@phoneshop" // '/', '%', '?', '#', '~' are atext
		if err := h.sender.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := onlyMessage(t, h.delivered(t)).view().MessageID; got != "<"+m.MessageID+">" {
			t.Errorf("Message-ID = %s, want <%s>", got, m.MessageID)
		}
	})

	t.Run("same_message_id_twice_follows_the_adapter", func(t *testing.T) {
		h := start(t)
		first, second := promoMessage(), promoMessage()
		second.Subject = "Größe € — zweiter Versuch"
		for _, m := range []mail.Message{first, second} {
			if err := h.sender.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
		raws := h.delivered(t)
		if len(raws) != h.copiesOfRepeat {
			t.Fatalf("%d messages after two Sends of one MessageID, want %d", len(raws), h.copiesOfRepeat)
		}
		if diff := cmp.Diff(expect(second), parseMessage(t, raws[len(raws)-1]).view()); diff != "" {
			t.Errorf("latest message (-want +got):\n%s", diff)
		}
	})

	t.Run("invalid_message_is_permanent_and_sends_nothing", func(t *testing.T) {
		h := start(t)
		for _, tc := range []struct {
			name  string
			spoil func(m *mail.Message)
		}{
			{"no_to", func(m *mail.Message) { m.To = "" }},
			{"to_without_domain", func(m *mail.Message) { m.To = "juergen" }},
			{"to_is_two_addresses", func(m *mail.Message) { m.To = "a@example.net, b@example.net" }},
			{"no_from", func(m *mail.Message) { m.From = "" }},
			{"from_malformed", func(m *mail.Message) { m.From = "phoneshop <shop@>" }},
			{"no_message_id", func(m *mail.Message) { m.MessageID = "" }},
			{"message_id_in_angle_brackets", func(m *mail.Message) { m.MessageID = "<promo.1@phoneshop>" }},
			{"message_id_without_at", func(m *mail.Message) { m.MessageID = "promo.1" }},
			{"message_id_with_space", func(m *mail.Message) { m.MessageID = "promo 1@phoneshop" }},
			{"message_id_with_empty_atom", func(m *mail.Message) { m.MessageID = "a/../b@phoneshop" }},
			{"message_id_too_long", func(m *mail.Message) { m.MessageID = strings.Repeat("x", 300) + "@phoneshop" }},
			{"no_text", func(m *mail.Message) { m.Text = "" }},
			{"subject_with_line_break", func(m *mail.Message) { m.Subject = "Hi\r\nBcc: victim@example.net" }},
			{"header_with_line_break", func(m *mail.Message) { m.Headers["Precedence"] = "bulk\r\nBcc: victim@example.net" }},
			{"header_name_with_colon", func(m *mail.Message) { m.Headers["X-A:B"] = "c" }},
			{"header_replaces_subject", func(m *mail.Message) { m.Headers["subject"] = "other" }},
			{"header_adds_bcc", func(m *mail.Message) { m.Headers["Bcc"] = "victim@example.net" }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := promoMessage()
				tc.spoil(&m)
				err := h.sender.Send(context.Background(), m)
				if !errors.Is(err, mail.ErrPermanent) || errors.Is(err, mail.ErrTemporary) {
					t.Errorf("Send = %v, want ErrPermanent only", err)
				}
			})
		}
		if n := len(h.delivered(t)); n != 0 {
			t.Errorf("%d messages delivered, want none", n)
		}
	})

	t.Run("cancelled_context_is_temporary_and_sends_nothing", func(t *testing.T) {
		h := start(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := h.sender.Send(ctx, promoMessage())
		if !errors.Is(err, mail.ErrTemporary) || !errors.Is(err, context.Canceled) {
			t.Errorf("Send = %v, want ErrTemporary and context.Canceled", err)
		}
		if n := len(h.delivered(t)); n != 0 {
			t.Errorf("%d messages delivered, want none", n)
		}
	})
}

// view is what the contract compares of a delivered message: decoded, unfolded,
// with CRLF line ends made "\n".
type view struct {
	From, To, Subject, MessageID string
	Headers                      map[string]string
	Text, HTML                   string
}

// expect is the view of m as it must arrive.
func expect(m mail.Message) view {
	v := view{MessageID: "<" + m.MessageID + ">", Subject: m.Subject, Text: m.Text, HTML: m.HTML, Headers: map[string]string{}}
	from, _ := netmail.ParseAddress(m.From)
	to, _ := netmail.ParseAddress(m.To)
	v.From, v.To = from.String(), to.String()
	for name, value := range m.Headers {
		v.Headers[name] = value
	}
	return v
}

// parsed is a delivered message read with net/mail and mime/multipart.
type parsed struct {
	header    netmail.Header
	mediaType string
	text      string
	html      string
}

func (p parsed) view() view {
	v := view{
		From: p.address("From"), To: p.address("To"), MessageID: p.header.Get("Message-ID"),
		Text: p.text, HTML: p.html, Headers: map[string]string{},
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
	if err != nil {
		subject = "undecodable: " + err.Error()
	}
	v.Subject = subject
	for _, name := range []string{"List-Unsubscribe", "List-Unsubscribe-Post", "Precedence"} {
		if values := p.header[name]; len(values) > 0 {
			v.Headers[name] = strings.Join(values, " | ")
		}
	}
	return v
}

func (p parsed) address(field string) string {
	list, err := p.header.AddressList(field)
	if err != nil || len(list) != 1 {
		return field + ": " + strings.Join(p.header[field], " | ")
	}
	return list[0].String()
}

// parseMessage reads one raw message: its header, and its text and HTML parts
// decoded (multipart/alternative, or a single text/plain body).
func parseMessage(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	p := parsed{header: msg.Header}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	p.mediaType = mediaType
	if !strings.HasPrefix(mediaType, "multipart/") {
		p.text = decodePart(t, mediaType, params, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		return p
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := parts.NextPart() // undoes quoted-printable itself
		if err == io.EOF {
			return p
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		partType, partParams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type: %v", err)
		}
		body := decodePart(t, partType, partParams, part.Header.Get("Content-Transfer-Encoding"), part)
		switch partType {
		case "text/plain":
			p.text = body
		case "text/html":
			p.html = body
		default:
			t.Errorf("unexpected part %s", partType)
		}
	}
}

func decodePart(t *testing.T, mediaType string, params map[string]string, encoding string, body io.Reader) string {
	t.Helper()
	if cs := params["charset"]; !strings.EqualFold(cs, "utf-8") {
		t.Errorf("%s part has charset %q, want UTF-8", mediaType, cs)
	}
	if strings.EqualFold(encoding, "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read %s part: %v", mediaType, err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func onlyMessage(t *testing.T, raws [][]byte) parsed {
	t.Helper()
	if len(raws) != 1 {
		t.Fatalf("%d messages delivered, want exactly 1", len(raws))
	}
	return parseMessage(t, raws[0])
}

// readOutbox returns the .eml files in dir (none if dir does not exist), by name.
func readOutbox(t *testing.T, dir string) [][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	var raws [][]byte
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	return raws
}
