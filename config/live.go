package config

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Live holds the settings that may change while the shop runs (Consul KV overlays
// them on the values from defaults, environment and flags). Readers call its
// getters at every use, so a change applies at once, without a restart.
type Live struct {
	idleTimeout      time.Duration // fixed at start: grain kinds are configured once
	reservationTTL   atomic.Int64
	maxLineQuantity  atomic.Int64
	lowStock         atomic.Int64
	grainCallTimeout atomic.Int64
	maintenance      atomic.Bool
}

// The keys of the live settings: each setting's environment name without the
// PHONESHOP_ prefix, in lower case (as Consul KV stores them under phoneshop/config/).
const (
	KeyReservationTTL    = "reservation_ttl"
	KeyMaxLineQuantity   = "max_line_quantity"
	KeyLowStockThreshold = "low_stock_threshold"
	KeyGrainCallTimeout  = "grain_call_timeout"
	KeyMaintenanceMode   = "maintenance_mode"
)

// LiveKeys lists every live setting's key.
var LiveKeys = []string{KeyReservationTTL, KeyMaxLineQuantity, KeyLowStockThreshold, KeyGrainCallTimeout, KeyMaintenanceMode}

// NewLive starts the live settings at s (already validated).
func NewLive(s Shop) *Live {
	l := &Live{idleTimeout: s.GrainIdleTimeout}
	l.reservationTTL.Store(int64(s.ReservationTTL))
	l.maxLineQuantity.Store(s.MaxLineQuantity)
	l.lowStock.Store(s.LowStockThreshold)
	l.grainCallTimeout.Store(int64(s.GrainCallTimeout))
	l.maintenance.Store(s.MaintenanceMode)
	return l
}

// ReservationTTL is how long checkout holds stock.
func (l *Live) ReservationTTL() time.Duration { return time.Duration(l.reservationTTL.Load()) }

// MaxLineQuantity is the most units of one SKU per cart line.
func (l *Live) MaxLineQuantity() int64 { return l.maxLineQuantity.Load() }

// LowStockThreshold is the level at or below which a SKU shows low_stock.
func (l *Live) LowStockThreshold() int64 { return l.lowStock.Load() }

// GrainCallTimeout bounds one grain-to-grain call.
func (l *Live) GrainCallTimeout() time.Duration { return time.Duration(l.grainCallTimeout.Load()) }

// MaintenanceMode reports whether the shop refuses changes (read-only).
func (l *Live) MaintenanceMode() bool { return l.maintenance.Load() }

// Value renders a setting's current value in the form Set accepts.
func (l *Live) Value(key string) string {
	switch key {
	case KeyReservationTTL:
		return l.ReservationTTL().String()
	case KeyMaxLineQuantity:
		return strconv.FormatInt(l.MaxLineQuantity(), 10)
	case KeyLowStockThreshold:
		return strconv.FormatInt(l.LowStockThreshold(), 10)
	case KeyGrainCallTimeout:
		return l.GrainCallTimeout().String()
	case KeyMaintenanceMode:
		return strconv.FormatBool(l.MaintenanceMode())
	}
	return ""
}

// Set validates value for key and applies it; an invalid value changes nothing and
// says why.
func (l *Live) Set(key, value string) error {
	value = strings.TrimSpace(value)
	switch key {
	case KeyReservationTTL:
		d, err := time.ParseDuration(value)
		if err != nil || d < time.Second || d >= l.idleTimeout {
			return fmt.Errorf("%s=%q: want a duration from 1s up to the grain idle timeout %s", key, value, l.idleTimeout)
		}
		l.reservationTTL.Store(int64(d))
	case KeyMaxLineQuantity:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%s=%q: want an integer from 1 to 1000", key, value)
		}
		l.maxLineQuantity.Store(n)
	case KeyLowStockThreshold:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > 1_000_000 {
			return fmt.Errorf("%s=%q: want an integer from 0 to 1000000", key, value)
		}
		l.lowStock.Store(n)
	case KeyGrainCallTimeout:
		d, err := time.ParseDuration(value)
		if err != nil || d < 10*time.Millisecond || d > time.Minute {
			return fmt.Errorf("%s=%q: want a duration from 10ms to 1m", key, value)
		}
		l.grainCallTimeout.Store(int64(d))
	case KeyMaintenanceMode:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s=%q: want true or false", key, value)
		}
		l.maintenance.Store(b)
	default:
		return fmt.Errorf("%s: not a live setting", key)
	}
	return nil
}
