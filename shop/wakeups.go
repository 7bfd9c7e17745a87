package shop

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/grain/call"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/promopb"
)

// What the members do beside answering grain calls: receive the initial stock, and
// wake the grains whose work a crash or a clock left unfinished.

// seedRequestID marks the receipt of a variant's initial stock.
const seedRequestID = "seed:initial-stock"

func (s *Shop) seedStock(ctx context.Context, c *cluster.Cluster) error {
	variants, err := s.Store.UnstockedVariants(ctx)
	if err != nil {
		return err
	}
	for _, v := range variants {
		client := inventorypb.GetInventoryGrainClient(c, v.SKU)
		cctx, cancel := context.WithTimeout(ctx, s.calls.CallTimeout())
		receive := &inventorypb.ReceiveRequest{RequestId: seedRequestID, Quantity: v.InitialStock, DeadlineUnixMs: call.Deadline(cctx)}
		_, err := call.Do(cctx, s.calls, "inventory", "Receive", func(o ...cluster.GrainCallOption) (*inventorypb.StockLevel, error) {
			return client.Receive(receive, o...)
		})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", v.SKU, err)
		}
	}
	if len(variants) > 0 {
		s.log.Info("initial stock received", "skus", len(variants))
	}
	return nil
}

// seedStockUntilDone retries seedStock until it succeeds or ctx ends.
func (s *Shop) seedStockUntilDone(ctx context.Context, c *cluster.Cluster) {
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		err := s.seedStock(ctx, c)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("receiving the initial stock failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// resumeUnfinished wakes every order whose saga a crash interrupted. It serves no
// request: each wake-up has a deadline of its own (the grain-call timeout), and
// what one attempt cannot finish the order grain retries on its own timer.
func (s *Shop) resumeUnfinished(ctx context.Context, c *cluster.Cluster) {
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	ids, err := s.Store.UnfinishedOrders(lctx)
	cancel()
	if err != nil {
		s.log.Error("listing unfinished orders failed", "err", err)
		return
	}
	for _, id := range ids {
		client := orderpb.GetOrderGrainClient(c, id)
		rctx, cancel := context.WithTimeout(ctx, s.calls.CallTimeout())
		resume := &orderpb.ResumeRequest{DeadlineUnixMs: call.Deadline(rctx)}
		_, err := call.Do(rctx, s.calls, "order", "Resume", func(o ...cluster.GrainCallOption) (*orderpb.OrderView, error) {
			return client.Resume(resume, o...)
		})
		cancel()
		if err != nil {
			// Woken all the same: the grain goes on retrying on its own timer.
			s.log.Warn("unfinished order woken, not finished yet", "order", id, "err", err)
			continue
		}
		s.log.Info("resumed unfinished order", "order", id)
	}
}

// settleDuePromos wakes, every campaignRefresh until ctx ends, the campaigns whose
// clock decided something no write has recorded: one that started (its activation
// is the event the launch e-mails hang on) or ended while its grain was
// passivated or its member gone. Reads never depend on it (a status follows the
// clock), and a woken grain settles on its own; several members may wake the same
// campaign, which is harmless.
func (s *Shop) settleDuePromos(ctx context.Context, c *cluster.Cluster) {
	t := time.NewTicker(campaignRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, storeTimeout)
		ids, err := s.Store.DuePromos(lctx, time.Now())
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("listing campaigns due to settle failed; trying again", "err", err)
			}
			continue
		}
		for _, id := range ids {
			client := promopb.GetPromoGrainClient(c, id)
			wctx, cancel := context.WithTimeout(ctx, s.calls.CallTimeout())
			get := &promopb.GetPromoRequest{DeadlineUnixMs: call.Deadline(wctx)}
			_, err := call.Do(wctx, s.calls, "promo", "Get", func(o ...cluster.GrainCallOption) (*promopb.PromoView, error) {
				return client.Get(get, o...)
			})
			cancel()
			if err != nil && ctx.Err() == nil {
				s.log.Warn("waking a campaign due to settle failed; trying again", "promo", id, "err", err)
			}
		}
	}
}

// resumeWhenMembersLeave wakes the unfinished orders each time members leave the
// cluster: the sagas a dead member was running would otherwise wait for their
// shopper to come back (their reservations expire meanwhile, so no stock is lost
// either way). It returns when ctx ends (the member's incarnation leaves).
func (s *Shop) resumeWhenMembersLeave(ctx context.Context, c *cluster.Cluster) {
	left := make(chan struct{}, 1)
	sub := c.ActorSystem.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*cluster.ClusterTopology); ok && len(t.Left) > 0 {
			select {
			case left <- struct{}{}:
			default: // one wake-up pending covers this one
			}
		}
	})
	defer c.ActorSystem.EventStream.Unsubscribe(sub)
	for {
		select {
		case <-ctx.Done():
			return
		case <-left:
			s.resumeUnfinished(ctx, c)
		}
	}
}
