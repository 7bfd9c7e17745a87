package main_test

import (
	"testing"
	"time"
)

// BenchmarkClusterCampaignMail measures a campaign's mail from its launch to the
// last of 10,000 mails in Mailpit, through the real processes: the launch's outbox
// event, the relay, RabbitMQ, the fan-out, the relay again, the mailer, SMTP. One
// iteration is one campaign: run it with -benchtime 1x.
//
//	go test -run '^$' -bench ClusterCampaignMail -benchtime 1x ./cmd/phoneshop/
func BenchmarkClusterCampaignMail(b *testing.B) {
	const shoppers = 10_000
	c := startCluster(b, clusterSpec{Nodes: 1, Edges: 1, Mailers: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s"}})
	in := seedShoppers(b, c, shoppers, 0)
	admin := c.Admin(c.Edge(0))
	b.ResetTimer()
	for b.Loop() {
		began := time.Now()
		id := launch(b, c, admin, "Bench")
		waitForRecipients(b, c.Mailpit, id, in, 10*time.Minute)
		elapsed := time.Since(began)
		b.ReportMetric(float64(shoppers)/elapsed.Seconds(), "mails/s")
		b.ReportMetric(elapsed.Seconds(), "s/campaign")
	}
}
