package config

import (
	"strings"
	"testing"
)

// TestTheUnsubscribeSecret: every edge must have one (they read each other's links);
// dev makes its own; a short one is refused everywhere.
func TestTheUnsubscribeSecret(t *testing.T) {
	t.Setenv("PHONESHOP_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/phoneshop")
	secret := strings.Repeat("s", 32)
	for _, tc := range []struct {
		name    string
		parse   func([]string) error
		args    []string
		wantErr string
	}{
		{"edge_without_a_secret", edgeParse, nil, "PHONESHOP_UNSUBSCRIBE_SECRET is required"},
		{"edge_with_a_short_secret", edgeParse, []string{"--unsubscribe-secret", "short"}, "at least 32 characters"},
		{"edge_with_a_secret", edgeParse, []string{"--unsubscribe-secret", secret}, ""},
		{"dev_without_a_secret", devParse, nil, ""},
		{"dev_with_a_short_secret", devParse, []string{"--unsubscribe-secret", "short"}, "at least 32 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.args)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

func edgeParse(args []string) error { _, _, err := ParseEdge(args); return err }
func devParse(args []string) error  { _, _, err := ParseDev(args); return err }
