package config

import (
	"strings"
	"testing"
	"time"
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

// TestClusterTLSIsAllOrNothing: every role with a cluster remote takes the CA,
// certificate and key together or none of them, and says which are missing.
func TestClusterTLSIsAllOrNothing(t *testing.T) {
	t.Setenv("PHONESHOP_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/phoneshop")
	t.Setenv("PHONESHOP_UNSUBSCRIBE_SECRET", strings.Repeat("s", 32))
	roles := []struct {
		name  string
		parse func([]string) error
	}{
		{"dev", devParse},
		{"node", func(args []string) error { _, _, err := ParseNode(args); return err }},
		{"edge", edgeParse},
	}
	all := []string{"--cluster-tls-ca", "ca.pem", "--cluster-tls-cert", "member.pem", "--cluster-tls-key", "member-key.pem"}
	for _, r := range roles {
		for _, tc := range []struct {
			name    string
			args    []string
			wantErr string
		}{
			{"none_is_plaintext", nil, ""},
			{"all_three", all, ""},
			{"no_key", all[:4], "PHONESHOP_CLUSTER_TLS_KEY unset"},
			{"only_a_certificate", all[2:4], "PHONESHOP_CLUSTER_TLS_CA, PHONESHOP_CLUSTER_TLS_KEY unset"},
			{"only_a_CA", all[:2], "PHONESHOP_CLUSTER_TLS_CERT, PHONESHOP_CLUSTER_TLS_KEY unset"},
			{"an_empty_name", append(append([]string{}, all...), "--cluster-tls-name", ""), "PHONESHOP_CLUSTER_TLS_NAME is empty"},
		} {
			t.Run(r.name+"/"+tc.name, func(t *testing.T) {
				err := r.parse(tc.args)
				switch {
				case tc.wantErr == "" && err != nil:
					t.Fatalf("err = %v, want none", err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
			})
		}
	}
}

// TestMailDefaults: the shipped mail settings: SMTP over TLS or not at all, retries
// backing off from 30 s to an hour for three days, holds below RabbitMQ's consumer
// timeout, and published outbox events kept a week.
func TestMailDefaults(t *testing.T) {
	t.Setenv("PHONESHOP_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/phoneshop")
	mailer, _, err := ParseMailer([]string{"--unsubscribe-secret", strings.Repeat("s", 32)})
	if err != nil {
		t.Fatal(err)
	}
	if mailer.SMTPTLSPolicy != "mandatory" {
		t.Errorf("SMTP TLS policy = %q, want mandatory", mailer.SMTPTLSPolicy)
	}
	want := MailRetry{MailRetryFirst: 30 * time.Second, MailRetryMax: time.Hour, MailRetryFor: 72 * time.Hour, MailMaxHold: 15 * time.Minute}
	if mailer.MailRetry != want {
		t.Errorf("mailer retries = %+v, want %+v", mailer.MailRetry, want)
	}
	dev, _, err := ParseDev(nil)
	if err != nil {
		t.Fatal(err)
	}
	node, _, err := ParseNode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if dev.MailRetry != want || dev.OutboxRetention != 7*24*time.Hour || node.OutboxRetention != 7*24*time.Hour {
		t.Errorf("dev retries %+v, retention %s; node retention %s", dev.MailRetry, dev.OutboxRetention, node.OutboxRetention)
	}
	if _, _, err := ParseMailer([]string{"--unsubscribe-secret", strings.Repeat("s", 32), "--mail-retry-first", "2h"}); err == nil {
		t.Error("a first retry longer than the longest was accepted")
	}
}
