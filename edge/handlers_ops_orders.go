package edge

import (
	"errors"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"

	"phoneshop/account"
	"phoneshop/actors/order"
	"phoneshop/grain/call"
	"phoneshop/protos/orderpb"
)

// opsOrderResponse is an order as ops see it: its account and, for a parked saga,
// where it stopped and why.
type opsOrderResponse struct {
	orderResponse
	AccountID  string `json:"account_id"`
	Email      string `json:"email"`
	ParkedFrom string `json:"parked_from,omitempty"`
	Attention  string `json:"attention,omitempty"`
}

// opsStatuses are the statuses ops may list by (?status=), as the API names them.
var opsStatuses = map[string]order.Status{
	"pending": order.StatusCommitting, "confirmed": order.StatusConfirmed, "cancelling": order.StatusCancelling,
	"cancelled": order.StatusCancelled, "shipped": order.StatusShipped, "delivered": order.StatusDelivered,
	"needs_attention": order.StatusNeedsAttention,
}

// listAllOrders lists the orders of every account: of one status oldest first (a
// work queue: ?status=confirmed is the orders to ship, needs_attention the parked
// sagas), else newest first; ?email= narrows them to one account.
func (s *server) listAllOrders(c *fiber.Ctx) error {
	size, err := pageSize(c)
	if err != nil {
		return err
	}
	q := order.OpsQuery{Limit: size}
	if raw := c.Query("status"); raw != "" {
		st, ok := opsStatuses[raw]
		if !ok {
			return badRequest("status must be one of pending, confirmed, cancelling, cancelled, shipped, delivered, needs_attention")
		}
		q.Status, q.OldestFirst = st, true
	}
	if email := c.Query("email"); email != "" {
		a, err := s.accounts.ByEmail(c.UserContext(), email)
		switch {
		case err == nil:
			q.AccountID = a.ID
		case errors.Is(err, account.ErrNotFound):
			return c.JSON(fiber.Map{"items": []opsOrderResponse{}, "next_page_token": ""})
		default:
			return err // a malformed address is 400
		}
	}
	if token := c.Query("page_token"); token != "" {
		if q.After, err = parseOrderPageToken(token); err != nil {
			return err
		}
	}
	page, err := s.Orders.ListAllOrders(c.UserContext(), q)
	if err != nil {
		return err
	}
	items := make([]opsOrderResponse, len(page.Orders))
	for i, o := range page.Orders {
		r := opsOrderResponse{orderResponse: toOrderResponseFromDomain(o.Order), AccountID: o.AccountID, Email: o.Email}
		if o.Status == order.StatusNeedsAttention {
			r.Status = string(order.StatusNeedsAttention)
			r.ParkedFrom, r.Attention = string(o.ParkedFrom), o.Attention
		}
		items[i] = r
	}
	next := ""
	if page.Next != nil {
		if next, err = encodeOrderPageToken(*page.Next); err != nil {
			return err
		}
	}
	return c.JSON(fiber.Map{"items": items, "next_page_token": next})
}

// resumeOrder puts a parked saga back where it stopped and runs it again (once ops
// fixed its cause); for any other order it only resumes a saga that is unfinished.
func (s *server) resumeOrder(c *fiber.Ctx) error {
	o, err := s.knownOrder(c, "")
	if err != nil {
		return err
	}
	client := orderpb.GetOrderGrainClient(s.Cluster, o.ID)
	view, err := call.Do(c.UserContext(), s.Calls, "order", "Resume", func(opts ...cluster.GrainCallOption) (*orderpb.OrderView, error) {
		return client.Resume(&orderpb.ResumeRequest{Unpark: true, DeadlineUnixMs: call.Deadline(c.UserContext())}, opts...)
	})
	if err != nil {
		return err
	}
	return c.JSON(toOrderResponse(view.Order))
}
