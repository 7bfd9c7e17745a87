package edge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"phoneshop/account"
	"phoneshop/actors/promo"
	"phoneshop/catalog"
	"phoneshop/fault"
	"phoneshop/grain/call"
	"phoneshop/protos/reasonpb"
)

// The API's error codes (API.md).
const (
	codeInvalidRequest      = "invalid_request"
	codeUnauthenticated     = "unauthenticated"
	codeForbidden           = "forbidden"
	codeNotFound            = "not_found"
	codeConflict            = "conflict"
	codeOutOfStock          = "out_of_stock"
	codeIdempotencyMismatch = "idempotency_mismatch"
	codePayloadTooLarge     = "payload_too_large"
	codeRateLimited         = "rate_limited"
	codeUnavailable         = "unavailable"
	codeInternal            = "internal"
	codeMethodNotAllowed    = "method_not_allowed"
	codePriceChanged        = "price_changed"
	codeUnsupportedEncoding = "unsupported_encoding"
	codeLimitExceeded       = "limit_exceeded"
)

// apiError is an error the client is told about as it is.
type apiError struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
	// RetryAfter is the wait sent in Retry-After with a 429 or a 503 (at least 1 s).
	RetryAfter time.Duration `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeInvalidRequest, Message: msg}
}

func notFound(msg string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: msg}
}

// grainReasons maps the reason of a grain's error response to the API's error.
var grainReasons = map[string]struct {
	status int
	code   string
}{
	reasonpb.ErrorReason_INVALID.String():              {http.StatusBadRequest, codeInvalidRequest},
	reasonpb.ErrorReason_NOT_FOUND.String():            {http.StatusNotFound, codeNotFound},
	reasonpb.ErrorReason_OUT_OF_STOCK.String():         {http.StatusConflict, codeOutOfStock},
	reasonpb.ErrorReason_CONFLICT.String():             {http.StatusConflict, codeConflict},
	reasonpb.ErrorReason_IDEMPOTENCY_MISMATCH.String(): {http.StatusUnprocessableEntity, codeIdempotencyMismatch},
	reasonpb.ErrorReason_UNAVAILABLE.String():          {http.StatusServiceUnavailable, codeUnavailable},
	reasonpb.ErrorReason_INTERNAL.String():             {http.StatusInternalServerError, codeInternal},
	reasonpb.ErrorReason_PRICE_CHANGED.String():        {http.StatusConflict, codePriceChanged},
	reasonpb.ErrorReason_LIMIT_EXCEEDED.String():       {http.StatusConflict, codeLimitExceeded},
}

// domainErrors maps the sentinels of the domains the edge calls directly.
var domainErrors = []struct {
	err    error
	status int
	code   string
}{
	{account.ErrInvalid, http.StatusBadRequest, codeInvalidRequest},
	{account.ErrEmailTaken, http.StatusConflict, codeConflict},
	{account.ErrBadCredentials, http.StatusUnauthorized, codeUnauthenticated},
	{account.ErrSessionNotFound, http.StatusUnauthorized, codeUnauthenticated},
	{account.ErrNotFound, http.StatusNotFound, codeNotFound},
	{account.ErrOwnAdmin, http.StatusConflict, codeConflict},
	{account.ErrLastAdmin, http.StatusConflict, codeConflict},
	{promo.ErrInvalid, http.StatusBadRequest, codeInvalidRequest},
	{catalog.ErrInvalidQuery, http.StatusBadRequest, codeInvalidRequest},
	{catalog.ErrNotFound, http.StatusNotFound, codeNotFound},
	{call.ErrDeadline, http.StatusServiceUnavailable, codeUnavailable},
}

// toAPIError is the one table from every error the edge meets to what the client sees.
// Anything not in it is internal: logged with its details, reported without them.
func toAPIError(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, true
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case http.StatusRequestEntityTooLarge:
			return &apiError{Status: fe.Code, Code: codePayloadTooLarge, Message: "request body too large"}, true
		case http.StatusNotFound:
			return notFound("no such route"), true
		case http.StatusMethodNotAllowed:
			return &apiError{Status: fe.Code, Code: codeMethodNotAllowed, Message: "method not allowed on this route"}, true
		case http.StatusTooManyRequests:
			return &apiError{Status: fe.Code, Code: codeRateLimited, Message: "too many requests"}, true
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return &apiError{Status: fe.Code, Code: codeInvalidRequest, Message: fe.Message}, true
		}
	}
	if errors.Is(err, call.ErrUnreachable) {
		// Expected while a member dies or rejoins: the handler logs it as a warning.
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: retryMessage}, true
	}
	if errors.Is(err, fault.ErrOverloaded) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, RetryAfter: fault.RetryAfter(err),
			Message: "the shop is too busy to serve this in time; retry after the time in Retry-After"}, true
	}
	if fault.Transient(err) || errors.Is(err, context.Canceled) {
		// A store that did not answer, or the request's own deadline: load, not a bug.
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: retryMessage}, true
	}
	for _, d := range domainErrors {
		if errors.Is(err, d.err) {
			return &apiError{Status: d.status, Code: d.code, Message: publicMessage(err)}, true
		}
	}
	var ge *cluster.GrainErrorResponse
	if errors.As(err, &ge) {
		if m, ok := grainReasons[ge.Reason]; ok {
			if m.code == codeInternal {
				// A bug behind a grain: its details go to the log, never to the client.
				return internalError(), false
			}
			ae := &apiError{Status: m.status, Code: m.code, Message: ge.Message}
			if m.code == codeUnavailable {
				ae.Message = retryMessage
			}
			if skus := ge.Metadata["skus"]; skus != "" {
				ae.Details = map[string]any{"skus": strings.Split(skus, ",")}
			}
			if total, err := strconv.ParseInt(ge.Metadata["total_cents"], 10, 64); err == nil && m.code == codePriceChanged {
				ae.Message = "the total at checkout is not the one expected: a campaign ended, was paused or ran out of units"
				ae.Details = map[string]any{"total_cents": total}
			}
			if m.code == codeLimitExceeded {
				remaining, err := strconv.ParseInt(ge.Metadata["remaining"], 10, 64)
				if err != nil || ge.Metadata["promo_id"] == "" {
					// A refusal that does not say what is left cannot be acted on.
					return internalError(), false
				}
				ae.Message = "the order would buy more units at a campaign's discount than it allows one customer"
				ae.Details = map[string]any{"promo_id": ge.Metadata["promo_id"], "remaining": remaining}
			}
			return ae, true
		}
		return internalError(), false
	}
	return internalError(), false
}

// retryMessage is what a client is told when a part of the shop did not answer.
const retryMessage = "a part of the shop did not answer in time; retry (with the same Idempotency-Key for checkout)"

func internalError() *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "internal error"}
}

// publicMessage strips the package prefix of a domain sentinel ("account: ...").
func publicMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 && !strings.Contains(s[:i], " ") {
		return s[i+2:]
	}
	return s
}

// errorHandler is fiber's error handler: every error response has the API's shape.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		if len(c.Response().Header.Peek(headerRequestID)) == 0 {
			// Fiber answers some errors (a body over the limit) before any
			// middleware ran: the response still carries a request id.
			id := c.Get(headerRequestID)
			if id == "" {
				id = utils.UUIDv4()
			}
			c.Set(headerRequestID, id)
		}
		ae, known := toAPIError(err)
		if ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable {
			retryAfterHeader(c, ae.RetryAfter)
		}
		switch {
		case !known:
			log.Error("request failed", "method", c.Method(), "path", loggedPath(c),
				"request_id", requestID(c), "err", err)
		case errors.Is(err, call.ErrUnreachable):
			log.Warn("a grain did not answer", "method", c.Method(), "path", loggedPath(c),
				"request_id", requestID(c), "err", err)
		case ae.Status == http.StatusServiceUnavailable && !errors.Is(err, fault.ErrOverloaded):
			log.Warn("a dependency did not answer in time", "method", c.Method(), "path", loggedPath(c),
				"request_id", requestID(c), "err", err)
		}
		return c.Status(ae.Status).JSON(fiber.Map{"error": ae})
	}
}
