package edge

import (
	"github.com/gofiber/fiber/v2"

	"phoneshop/edge/strictjson"
)

// decodeStrict reads the request body into v (strictjson's rules); every failure is a
// 400 that says what was wrong.
func decodeStrict(c *fiber.Ctx, v any) error {
	if err := strictjson.Decode(c.Get(fiber.HeaderContentType), rawBody(c), v); err != nil {
		return badRequest(err.Error())
	}
	return nil
}
