package mail_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/mailpittest"
	"phoneshop/notify/mail"
)

func TestFiles(t *testing.T) {
	t.Run("writes_message_id_eml_0644_in_a_new_dir_0755", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "outbox")
		f := mail.NewFiles(dir)
		m := promoMessage()
		if err := f.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		path := filepath.Join(dir, "promo.summer-2026.acc-1234567890@phoneshop.eml")
		if f.Path(m.MessageID) != path {
			t.Errorf("Path = %s, want %s", f.Path(m.MessageID), path)
		}
		assertMode(t, path, 0o644)
		assertMode(t, dir, 0o755&^umask())
	})

	t.Run("path_characters_are_escaped_in_the_file_name", func(t *testing.T) {
		dir := t.TempDir()
		f := mail.NewFiles(dir)
		m := promoMessage()
		m.MessageID = "order/confirmed%2F?#~ord-1@phoneshop"
		if err := f.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		want := filepath.Join(dir, "order%2Fconfirmed%252F%3F%23%7Eord-1@phoneshop.eml")
		if got := f.Path(m.MessageID); got != want {
			t.Errorf("Path = %s, want %s", got, want)
		}
		if diff := cmp.Diff([]string{filepath.Base(want)}, dirNames(t, dir)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
	})

	t.Run("long_message_ids_get_distinct_names_that_fit", func(t *testing.T) {
		dir := t.TempDir()
		f := mail.NewFiles(dir)
		// 240 bytes of '/' escape to 720: the name must be cut, and stay unique.
		long := strings.Repeat("/", 236) + "@a"
		for _, id := range []string{long + "b", long + "c"} {
			m := promoMessage()
			m.MessageID = id
			if err := f.Send(context.Background(), m); err != nil {
				t.Fatalf("Send %s: %v", id, err)
			}
			if n := len(filepath.Base(f.Path(id))); n > 255 {
				t.Errorf("file name of %d bytes", n)
			}
		}
		if n := len(dirNames(t, dir)); n != 2 {
			t.Errorf("%d files for two long ids, want 2", n)
		}
	})

	t.Run("leaves_only_eml_files", func(t *testing.T) {
		dir := t.TempDir()
		f := mail.NewFiles(dir)
		for range 3 { // the same id again: replaced in place
			if err := f.Send(context.Background(), promoMessage()); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
		_ = f.Send(context.Background(), mail.Message{MessageID: "broken@phoneshop"})
		if diff := cmp.Diff([]string{"promo.summer-2026.acc-1234567890@phoneshop.eml"}, dirNames(t, dir)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
	})

	t.Run("unwritable_outbox_is_temporary", func(t *testing.T) {
		// A file where the directory should be: the disk's fault, not the message's.
		dir := filepath.Join(t.TempDir(), "outbox")
		if err := os.WriteFile(dir, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		err := mail.NewFiles(dir).Send(context.Background(), promoMessage())
		if !errors.Is(err, mail.ErrTemporary) || errors.Is(err, mail.ErrPermanent) {
			t.Errorf("Send = %v, want ErrTemporary only", err)
		}
	})
}

// TestFilesWriteWhatSMTPSends: the .eml file and what reaches the SMTP server are
// the same message, header for header and part for part (only Date, the MIME
// boundary and the fields the receiving server adds may differ).
func TestFilesWriteWhatSMTPSends(t *testing.T) {
	mp := mailpittest.Start(t)
	files := mail.NewFiles(t.TempDir())
	m := promoMessage()
	for _, s := range []mail.Sender{files, mail.NewSMTP(smtpConfig(mp))} {
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	raw, err := os.ReadFile(files.Path(m.MessageID))
	if err != nil {
		t.Fatal(err)
	}
	eml, wire := parseMessage(t, raw), onlyMessage(t, delivered(t, mp))
	if diff := cmp.Diff(eml.view(), wire.view()); diff != "" {
		t.Errorf("message (-eml +smtp):\n%s", diff)
	}
	added := map[string]bool{"Return-Path": true, "Received": true} // by Mailpit
	for name, values := range wire.header {
		if added[name] || name == "Date" || name == "Content-Type" {
			continue
		}
		if diff := cmp.Diff(eml.header[name], values); diff != "" {
			t.Errorf("%s (-eml +smtp):\n%s", name, diff)
		}
	}
	for name := range eml.header {
		if wire.header[name] == nil {
			t.Errorf("%s is in the .eml file but not on the wire", name)
		}
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

// umask is the process's file mode creation mask, which MkdirAll's 0755 passes
// through.
func umask() os.FileMode {
	mask := syscall.Umask(0)
	syscall.Umask(mask)
	return os.FileMode(mask)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
