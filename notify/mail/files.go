package mail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files is the embedded default Sender: each message becomes one file,
// <dir>/<name>.eml, holding the RFC 5322 message the SMTP adapter would send
// (open it in any mail program). name is the MessageID made safe as a file name
// (see Path).
//
// The same MessageID sent again replaces the file: a repeat leaves one file, the
// latest rendering. A file is written under a temporary name, synced and renamed
// into place, so a reader never sees half a message and a crash leaves either the
// old file or the new one.
type Files struct {
	dir    string
	noSync bool
}

// NewFiles returns a Sender that writes into dir; dir is created (0755) on the
// first Send.
func NewFiles(dir string) *Files {
	return &Files{dir: dir}
}

// Unsynced returns f writing without syncing the files and the directory: a file
// is still renamed into place whole, but a crash of the machine (not of the
// process) may lose a mail whose delivery says it was sent. dev takes it: its
// mails share the disk with its store, and two syncs per mail took that disk from
// the checkouts of a sale.
func (f *Files) Unsynced() *Files {
	return &Files{dir: f.dir, noSync: true}
}

// Path is the file that Send writes for messageID.
func (f *Files) Path(messageID string) string {
	return filepath.Join(f.dir, fileName(messageID)+".eml")
}

// Send writes m to its file. Errors: an invalid message is ErrPermanent; a failed
// write (full disk, no permission) or a cancelled ctx is ErrTemporary, and then
// no file for m was changed.
func (f *Files) Send(ctx context.Context, m Message) error {
	if ctx.Err() != nil {
		return interrupted(ctx, nil)
	}
	msg, err := toMsg(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return temporary("mail: outbox %s: %w", f.dir, err)
	}
	tmp, err := os.CreateTemp(f.dir, ".sending-*.tmp")
	if err != nil {
		return temporary("mail: outbox %s: %w", f.dir, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := msg.WriteTo(tmp); err != nil {
		return temporary("mail: write %s: %w", m.MessageID, err)
	}
	// CreateTemp makes the file 0600; the outbox is for reading.
	if err := tmp.Chmod(0o644); err != nil {
		return temporary("mail: write %s: %w", m.MessageID, err)
	}
	// Synced before the rename: "sent" must not turn into an empty file on a crash.
	if !f.noSync {
		if err := tmp.Sync(); err != nil {
			return temporary("mail: write %s: %w", m.MessageID, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return temporary("mail: write %s: %w", m.MessageID, err)
	}
	if err := os.Rename(tmp.Name(), f.Path(m.MessageID)); err != nil {
		return temporary("mail: write %s: %w", m.MessageID, err)
	}
	committed = true
	if f.noSync {
		return nil
	}
	// The rename itself is durable once the directory is synced.
	if d, err := os.Open(f.dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return temporary("mail: sync %s: %w", f.dir, err)
		}
	}
	return nil
}

// maxFileNameLen keeps "<name>.eml" within the 255 bytes most file systems allow.
const maxFileNameLen = 200

// fileName makes a Message-ID safe as a file name: letters, digits and ". @ - _ +
// =" stay, every other byte (the '/' that atext allows, '%' itself, ...) becomes
// %XX. That is one-to-one, and a Message-ID always holds '@', so the name is never
// "." or "..". A name longer than maxFileNameLen is cut and made unique with a
// hash of the whole id ('~' never appears in an escaped name, so a hashed name
// cannot equal an unhashed one).
func fileName(messageID string) string {
	var b strings.Builder
	for i := 0; i < len(messageID); i++ {
		c := messageID[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '@', c == '-', c == '_', c == '+', c == '=':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	name := b.String()
	if len(name) <= maxFileNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(messageID))
	return name[:maxFileNameLen-65] + "~" + hex.EncodeToString(sum[:])
}
