// Package snapshot holds what every grain's persistence shares: a snapshot is the
// serialized state of one grain identity at a version, and every write is fenced on
// the version the activation loaded (DESIGN.md, invariant 3).
package snapshot

import "errors"

// ErrStale is returned by a fenced save when the stored version is not the one the
// writer loaded: another activation of the same identity moved on. The writer must
// discard its in-memory state and reload.
var ErrStale = errors.New("snapshot: stored version moved on (another activation wrote it)")

// Snapshot is one grain's persisted state. Version 0 with no State means the
// identity was never saved.
type Snapshot struct {
	Version int64
	State   []byte
}
