package edge

import (
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"phoneshop/grain/call"
	"phoneshop/protos/inventorypb"
)

type stockResponse struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
	Received  int64  `json:"received"`
}

func (s *server) stockLevel(c *fiber.Ctx) error {
	sku, err := s.knownSKU(c)
	if err != nil {
		return err
	}
	return s.inventoryCall(c, sku, "Level", func(cl *inventorypb.InventoryGrainClient, o []cluster.GrainCallOption) (*inventorypb.StockLevel, error) {
		return cl.Level(&inventorypb.LevelRequest{DeadlineUnixMs: call.Deadline(c.UserContext())}, o...)
	})
}

// maxReceive bounds one delivery, so that a typo cannot add a billion units.
const maxReceive = 1_000_000

func (s *server) receiveStock(c *fiber.Ctx) error {
	sku, err := s.knownSKU(c)
	if err != nil {
		return err
	}
	var req struct {
		Received *int64 `json:"received"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if req.Received == nil || *req.Received < 1 || *req.Received > maxReceive {
		return badRequest("received must be an integer from 1 to 1000000")
	}
	// The receipt id makes the grain call idempotent: a retried grain call adds
	// nothing. A client that may resend the same delivery names it with an
	// Idempotency-Key; without one, each HTTP request is a delivery of its own.
	receipt := "receipt:" + utils.UUIDv4()
	if key := c.Get("Idempotency-Key"); key != "" {
		if !idempotencyKeyPattern.MatchString(key) {
			return badRequest("header Idempotency-Key must be 1 to 128 printable ASCII characters")
		}
		receipt = "receipt-key:" + key
	}
	receive := &inventorypb.ReceiveRequest{RequestId: receipt, Quantity: *req.Received, DeadlineUnixMs: call.Deadline(c.UserContext())}
	return s.inventoryCall(c, sku, "Receive", func(cl *inventorypb.InventoryGrainClient, o []cluster.GrainCallOption) (*inventorypb.StockLevel, error) {
		return cl.Receive(receive, o...)
	})
}

func (s *server) inventoryCall(c *fiber.Ctx, sku, method string, f func(*inventorypb.InventoryGrainClient, []cluster.GrainCallOption) (*inventorypb.StockLevel, error)) error {
	client := inventorypb.GetInventoryGrainClient(s.Cluster, sku)
	l, err := call.Do(c.UserContext(), s.Calls, "inventory", method, func(o ...cluster.GrainCallOption) (*inventorypb.StockLevel, error) {
		return f(client, o)
	})
	if err != nil {
		return err
	}
	return c.JSON(stockResponse{SKU: l.Sku, Available: l.Available, Reserved: l.Reserved, Sold: l.Sold, Received: l.Received})
}
