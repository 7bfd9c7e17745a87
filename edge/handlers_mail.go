package edge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"phoneshop/fault"
	"phoneshop/notify/queue"
)

// MailQueues is what the ops view reads of the mail queues and does with their dead
// letters: the in-process queue in dev, RabbitMQ in a cluster (queue.Ops).
type MailQueues interface {
	queue.Ops
}

// OutboxReader tells the backlog of events not yet published (the store).
type OutboxReader interface {
	OutboxBacklog(ctx context.Context) (pending int64, oldest time.Time, err error)
}

// mailStatusResponse is GET /api/v1/ops/mail.
type mailStatusResponse struct {
	OutboxPending          int64               `json:"outbox_pending"`
	OutboxOldestAgeSeconds float64             `json:"outbox_oldest_age_seconds"`
	Queues                 []mailQueueResponse `json:"queues"`
}

type mailQueueResponse struct {
	Name    string `json:"name"`
	Ready   int64  `json:"ready"`
	Unacked int64  `json:"unacked"`
	Dead    int64  `json:"dead"`
}

// maxRedrive bounds one redrive: an operator sends a large backlog back in steps
// that each end well inside the request's deadline.
const maxRedrive = 10_000

func (s *server) mailStatus(c *fiber.Ctx) error {
	ctx := c.UserContext()
	pending, oldest, err := s.Outbox.OutboxBacklog(ctx)
	if err != nil {
		return err
	}
	resp := mailStatusResponse{OutboxPending: pending, Queues: []mailQueueResponse{}}
	if !oldest.IsZero() {
		resp.OutboxOldestAgeSeconds = max(s.now().Sub(oldest).Seconds(), 0)
	}
	stats, err := s.mailQueues().Stats(ctx, queue.Names(queue.MailBindings))
	if err != nil {
		return mailQueuesError(err)
	}
	for _, st := range stats {
		resp.Queues = append(resp.Queues, mailQueueResponse{Name: st.Name, Ready: st.Ready, Unacked: st.Unacked, Dead: st.Dead})
	}
	return c.JSON(resp)
}

func (s *server) redriveDeadLetters(c *fiber.Ctx) error {
	var req struct {
		Queue *string `json:"queue"`
		Limit *int64  `json:"limit"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if req.Queue == nil || !isMailQueue(*req.Queue) {
		return &apiError{Status: fiber.StatusBadRequest, Code: codeInvalidRequest,
			Message: "queue must name a mail queue", Details: map[string]any{"queues": queue.Names(queue.MailBindings)}}
	}
	if req.Limit == nil || *req.Limit < 1 || *req.Limit > maxRedrive {
		return badRequest(fmt.Sprintf("limit must be an integer from 1 to %d", maxRedrive))
	}
	n, err := s.mailQueues().Redrive(c.UserContext(), *req.Queue, int(*req.Limit))
	if err != nil && n == 0 {
		return mailQueuesError(err)
	}
	if err != nil {
		// Some went back before the broker failed: say how many; the rest
		// stays in the dead letters for the next redrive.
		s.log.Warn("redrive stopped early", "queue", *req.Queue, "redriven", n, "err", err)
	}
	return c.JSON(fiber.Map{"redriven": n})
}

func isMailQueue(name string) bool {
	for _, b := range queue.MailBindings {
		if b.Queue == name {
			return true
		}
	}
	return false
}

// mailQueues is the configured adapter, or noMailQueues.
func (s *server) mailQueues() MailQueues {
	if s.MailQueues == nil {
		return noMailQueues{}
	}
	return s.MailQueues
}

// noMailQueues stands for the queues of a shop that sends no mail (dev with
// --dev-mail=false: the events wait in the outbox): it lists none and redrives
// nothing.
type noMailQueues struct{}

func (noMailQueues) Stats(context.Context, []string) ([]queue.Stats, error) { return nil, nil }
func (noMailQueues) Redrive(_ context.Context, name string, _ int) (int, error) {
	return 0, fmt.Errorf("%w: %s (this shop sends no mail: its events wait in the outbox)", queue.ErrUnknownQueue, name)
}

// mailQueuesError is the API's error for a failed call to the queues: an unknown
// queue is the client's mistake (400); anything else is the broker not answering
// (503, retry).
func mailQueuesError(err error) error {
	if errors.Is(err, queue.ErrUnknownQueue) {
		return badRequest(err.Error())
	}
	return fault.Unavailable(err)
}
