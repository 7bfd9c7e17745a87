package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// mailStatus is GET /api/v1/ops/mail.
type mailStatus struct {
	OutboxPending          int64   `json:"outbox_pending"`
	OutboxOldestAgeSeconds float64 `json:"outbox_oldest_age_seconds"`
	Queues                 []struct {
		Name    string `json:"name"`
		Ready   int64  `json:"ready"`
		Unacked int64  `json:"unacked"`
		Dead    int64  `json:"dead"`
	} `json:"queues"`
}

// The shop's mail queues, for help texts (the shop refuses others).
const mailQueues = "phoneshop.promo.activated, phoneshop.promo.email, phoneshop.order.email, phoneshop.account.email"

// Bounds of one redrive, as the shop checks them.
const (
	defaultRedriveLimit = 100
	maxRedriveLimit     = 10_000
)

func (a *app) mailCommand() *cobra.Command {
	return group("mail", "Watch the mail pipeline and send dead letters back",
		`Watch the mail pipeline: the outbox's backlog (events written with their orders
and campaigns, not yet handed to the message broker) and, per mail queue, the
messages ready, unacknowledged (in a mailer's hands: being sent, or waiting for
their next attempt while the SMTP server is away) and dead (failed for good,
malformed, or given up after days of retries). Send dead letters back to their
queue once their cause is fixed. Needs the ops or admin role.`,
		`  shopctl mail status
  shopctl mail redrive --queue phoneshop.promo.email --limit 500`,
		a.mailStatusCommand(), a.mailRedriveCommand(),
	)
}

func (a *app) mailStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the outbox backlog and the mail queues' counts",
		Long: `Show the outbox's backlog and, per mail queue, the messages ready, unacknowledged
and dead (GET /api/v1/ops/mail). A growing dead count wants a look at the mailers'
logs, then 'shopctl mail redrive'.`,
		Example: `  shopctl mail status
  shopctl -o json mail status | jq '.queues[] | select(.dead > 0)'`,
		Args: noArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), request{method: "GET", path: "/api/v1/ops/mail"})
			if err != nil {
				return err
			}
			return show(a, raw, mailStatusTable)
		}),
	}
}

func mailStatusTable(w io.Writer, s mailStatus) {
	oldest := "-"
	if s.OutboxPending > 0 {
		oldest = (time.Duration(s.OutboxOldestAgeSeconds * float64(time.Second))).Round(time.Second).String()
	}
	row(w, "OUTBOX PENDING", "OLDEST")
	row(w, s.OutboxPending, oldest)
	row(w)
	row(w, "QUEUE", "READY", "UNACKED", "DEAD")
	for _, q := range s.Queues {
		row(w, q.Name, q.Ready, q.Unacked, q.Dead)
	}
}

func (a *app) mailRedriveCommand() *cobra.Command {
	var queue string
	var limit int
	cmd := &cobra.Command{
		Use:   "redrive --queue QUEUE [--limit N]",
		Short: "Send a mail queue's dead letters back to it",
		Long: `Send up to --limit messages of a mail queue's dead letters, oldest first, back to
that queue (POST /api/v1/ops/mail/dead-letters/redrive), and print how many went.
The mailers handle them again: a mail that failed for good is tried once more, a
mail sent meanwhile is not sent twice. A message leaves the dead letters only once
its queue holds it again, so a redrive that fails halfway loses nothing; run it
again for the rest.

The queues: ` + mailQueues + `.`,
		Example: `  shopctl mail redrive --queue phoneshop.order.email
  shopctl mail redrive --queue phoneshop.promo.email --limit 5000`,
		Args: noArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > maxRedriveLimit {
				return usagef("invalid --limit %d: want 1 to %d", limit, maxRedriveLimit)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), request{method: "POST", path: "/api/v1/ops/mail/dead-letters/redrive",
				body: map[string]any{"queue": queue, "limit": limit}})
			if err != nil {
				return err
			}
			return show(a, raw, func(w io.Writer, r struct {
				Redriven int `json:"redriven"`
			}) {
				fmt.Fprintf(w, "%d dead letters of %s sent back\n", r.Redriven, queue)
			})
		}),
	}
	cmd.Flags().StringVar(&queue, "queue", "", "the mail queue: "+mailQueues)
	cmd.Flags().IntVar(&limit, "limit", defaultRedriveLimit, fmt.Sprintf("most messages to send back, 1-%d", maxRedriveLimit))
	_ = cmd.MarkFlagRequired("queue")
	return cmd
}
