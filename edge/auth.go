package edge

import (
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"phoneshop/account"
)

const localAccount = "account"

// authenticate requires a live bearer token and puts its account in the context.
func (s *server) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return &apiError{Status: http.StatusUnauthorized, Code: codeUnauthenticated, Message: "missing bearer token"}
	}
	a, err := s.accounts.Authenticate(c.UserContext(), token)
	if err != nil {
		return err
	}
	c.Locals(localAccount, a)
	if lim := s.Limits.Account; lim != nil {
		// Every request of an account counts, reads as much as writes: a
		// logged-in client cannot make the shop look ids up without end.
		if ok, wait := lim.Allow(c.UserContext(), a.ID); !ok {
			return rateLimited(wait, "too many requests from this account; retry after the time in Retry-After")
		}
	}
	return c.Next()
}

// requireRole lets through accounts that hold one of roles (admin holds them all).
func requireRole(roles ...account.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		a := caller(c)
		for _, r := range roles {
			if a.Has(r) {
				return c.Next()
			}
		}
		return &apiError{Status: http.StatusForbidden, Code: codeForbidden, Message: "this needs the role " + string(roles[0])}
	}
}

func caller(c *fiber.Ctx) account.Account {
	a, _ := c.Locals(localAccount).(account.Account)
	return a
}
