package shop

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/notify/queue"
)

// mailStatusInterval is how often a mailer reports what it holds unacknowledged
// (the ops view adds up the reports of the last mailStatusFresh) and every process
// with mail queues refreshes its dead-letter gauge.
const (
	mailStatusInterval = 5 * time.Second
	mailStatusFresh    = 3 * mailStatusInterval
	// mailStatusForget: reports of a mailer not heard of for this long are
	// deleted (a mailer that stopped cleanly deletes its own at once).
	mailStatusForget = time.Hour
)

// mailGauges are the mail queues' series: the dead-letter depth ops alert on, and
// the ready messages beside it.
type mailGauges struct {
	dead, ready *prometheus.GaugeVec
}

func newMailGauges(reg prometheus.Registerer) *mailGauges {
	g := &mailGauges{
		dead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "phoneshop_mail_dead_letters",
			Help: "Messages in the dead letters of each mail queue (failed for good, malformed, or given up after retrying): they wait for ops to redrive them."},
			[]string{"queue"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "phoneshop_mail_queue_ready",
			Help: "Messages waiting in each mail queue to be delivered to a mailer."}, []string{"queue"}),
	}
	reg.MustRegister(g.dead, g.ready)
	return g
}

func (g *mailGauges) set(stats []queue.Stats) {
	for _, st := range stats {
		g.dead.WithLabelValues(st.Name).Set(float64(st.Dead))
		g.ready.WithLabelValues(st.Name).Set(float64(st.Ready))
	}
}

// watchMailQueues refreshes the gauges from ops every mailStatusInterval, after
// running report (nil: none) on each tick, until ctx ends.
func watchMailQueues(ctx context.Context, ops queue.Ops, g *mailGauges, report func(context.Context), log *slog.Logger) {
	names := queue.Names(queue.MailBindings)
	t := time.NewTicker(mailStatusInterval)
	defer t.Stop()
	for {
		if report != nil {
			report(ctx)
		}
		sctx, cancel := context.WithTimeout(ctx, mailStatusInterval)
		stats, err := ops.Stats(sctx, names)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Debug("mail queues not counted", "err", err)
		default:
			g.set(stats)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
