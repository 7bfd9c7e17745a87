package deploy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestHAProxyLogsNoLinkTokens: haproxy's log must not keep the tokens of the links
// the shop mails. Its default request log (option httplog) has the whole request
// line; the shipped configuration logs a path with the token cut off instead.
func TestHAProxyLogsNoLinkTokens(t *testing.T) {
	raw, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var logFormat string
	rules := map[string]bool{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "log-format "):
			logFormat = line
		case strings.HasPrefix(line, "http-request set-var(txn.logpath)"):
			rules[line] = true
		}
	}
	if logFormat == "" {
		t.Fatal("no log-format: option httplog logs the whole request line, tokens included")
	}
	// %r is the request line, %HU the URI, %HP the path, %HQ the query string.
	if leak := regexp.MustCompile(`%\{[^}]*\}r|%r\b|%HU|%HP|%HQ`).FindString(logFormat); leak != "" {
		t.Errorf("log-format logs %s, which holds the tokens: %s", leak, logFormat)
	}
	if !strings.Contains(logFormat, "%[var(txn.logpath)]") {
		t.Errorf("log-format does not log the redacted path: %s", logFormat)
	}
	for _, want := range []string{
		"http-request set-var(txn.logpath) path",
		"http-request set-var(txn.logpath) str(/u/-) if { path_beg /u/ }",
		"http-request set-var(txn.logpath) str(/verify/-) if { path_beg /verify/ }",
	} {
		if !rules[want] {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
}
