package edge

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/account"
)

// TestLogsKeepNoLinkTokens: the token of an e-mailed link is its only credential,
// so neither the access log nor an error's log line may hold it.
func TestLogsKeepNoLinkTokens(t *testing.T) {
	var logs bytes.Buffer
	tokens, err := account.NewUnsubscribeTokens(strings.Repeat("s", account.MinUnsubscribeSecret))
	if err != nil {
		t.Fatal(err)
	}
	app := New(Deps{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: NewMetrics(prometheus.NewRegistry()), Unsubscribe: tokens, RequestTimeout: 5 * time.Second, BodyLimit: 1 << 16})
	secret := tokens.Token("acc_0123456789abcdef01234567")
	for _, path := range []string{"/u/" + secret, "/u/" + secret + "x", "/verify/" + secret} {
		for _, method := range []string{"GET", "POST"} {
			resp, err := app.Test(httptest.NewRequest(method, path, nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	if !strings.Contains(logs.String(), `path=/u/-`) {
		t.Fatalf("no access log line for the links: %s", logs.String())
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), strings.Split(secret, ".")[1]) {
		t.Errorf("the logs hold a link's token:\n%s", logs.String())
	}
}
