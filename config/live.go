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
	mailSendPerSec   atomic.Int64
	rates            map[string]*atomic.Int64 // by key: the rate limits
	lockout          atomic.Pointer[lockout]
}

type lockout struct {
	failures    int
	first, last time.Duration
}

// The keys of the live settings: each setting's environment name without the
// PHONESHOP_ prefix, in lower case (as Consul KV stores them under phoneshop/config/).
const (
	KeyReservationTTL    = "reservation_ttl"
	KeyMaxLineQuantity   = "max_line_quantity"
	KeyLowStockThreshold = "low_stock_threshold"
	KeyGrainCallTimeout  = "grain_call_timeout"
	KeyMaintenanceMode   = "maintenance_mode"
	KeyMailSendPerSec    = "mail_send_per_sec"

	KeyRateRegisterPerMin   = "rate_register_per_min"
	KeyRateRegisterBurst    = "rate_register_burst"
	KeyRateLoginPerMin      = "rate_login_per_min"
	KeyRateLoginBurst       = "rate_login_burst"
	KeyRateCheckoutPerMin   = "rate_checkout_per_min"
	KeyRateCheckoutBurst    = "rate_checkout_burst"
	KeyLoginLockoutFailures = "login_lockout_failures"
	KeyLoginLockout         = "login_lockout"
	KeyLoginLockoutMax      = "login_lockout_max"
)

// LiveKeys lists every live setting's key.
var LiveKeys = []string{KeyReservationTTL, KeyMaxLineQuantity, KeyLowStockThreshold, KeyGrainCallTimeout, KeyMaintenanceMode, KeyMailSendPerSec,
	KeyLoginLockoutFailures, KeyLoginLockout, KeyLoginLockoutMax,
	KeyRateRegisterPerMin, KeyRateRegisterBurst, KeyRateLoginPerMin, KeyRateLoginBurst, KeyRateCheckoutPerMin, KeyRateCheckoutBurst}

// checkRate is the one rule of a rate-limit setting.
func checkRate(key string, v int) error {
	if v < 1 || v > 1_000_000 {
		return fmt.Errorf("%s=%d: want an integer from 1 to 1000000", key, v)
	}
	return nil
}

// checkSendRate is the one rule of the mail send rate.
func checkSendRate(v int) error {
	if v < 0 || v > 100_000 {
		return fmt.Errorf("%s=%d: want an integer from 0 (no pacing) to 100000", KeyMailSendPerSec, v)
	}
	return nil
}

// checkLockout is the one rule of the failed-login lock-out settings.
func checkLockout(failures int, first, last time.Duration) error {
	if failures < 1 || failures > 1000 || first < time.Second || last < first || last > 24*time.Hour {
		return fmt.Errorf("login lock-out after %d failures for %s up to %s: want 1 to 1000 failures and 1s <= lock-out <= max <= 24h",
			failures, first, last)
	}
	return nil
}

// NewLive starts the live settings at s (already validated).
func NewLive(s Shop) *Live {
	l := &Live{idleTimeout: s.GrainIdleTimeout}
	l.reservationTTL.Store(int64(s.ReservationTTL))
	l.maxLineQuantity.Store(s.MaxLineQuantity)
	l.lowStock.Store(s.LowStockThreshold)
	l.grainCallTimeout.Store(int64(s.GrainCallTimeout))
	l.maintenance.Store(s.MaintenanceMode)
	l.mailSendPerSec.Store(int64(s.MailSendPerSec))
	l.rates = map[string]*atomic.Int64{}
	for key, v := range s.rates() {
		l.rates[key] = new(atomic.Int64)
		l.rates[key].Store(int64(v))
	}
	l.lockout.Store(&lockout{failures: s.LoginLockoutFailures, first: s.LoginLockout, last: s.LoginLockoutMax})
	return l
}

// Rate is a rate-limit setting (one of the Key*PerMin and Key*Burst keys).
func (l *Live) Rate(key string) int { return int(l.rates[key].Load()) }

// LoginLockout is the failed-login lock-out: failures in a row, first lock, longest lock.
func (l *Live) LoginLockout() (failures int, first, last time.Duration) {
	lo := l.lockout.Load()
	return lo.failures, lo.first, lo.last
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

// MailSendPerSec is the most e-mails a mailer sends per second (0: no pacing).
func (l *Live) MailSendPerSec() int { return int(l.mailSendPerSec.Load()) }

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
	case KeyMailSendPerSec:
		return strconv.Itoa(l.MailSendPerSec())
	case KeyLoginLockoutFailures:
		return strconv.Itoa(l.lockout.Load().failures)
	case KeyLoginLockout:
		return l.lockout.Load().first.String()
	case KeyLoginLockoutMax:
		return l.lockout.Load().last.String()
	}
	if r, ok := l.rates[key]; ok {
		return strconv.FormatInt(r.Load(), 10)
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
	case KeyMailSendPerSec:
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%s=%q: want an integer from 0 (no pacing) to 100000", key, value)
		}
		if err := checkSendRate(n); err != nil {
			return err
		}
		l.mailSendPerSec.Store(int64(n))
	case KeyLoginLockoutFailures, KeyLoginLockout, KeyLoginLockoutMax:
		return l.setLockout(key, value)
	default:
		r, ok := l.rates[key]
		if !ok {
			return fmt.Errorf("%s: not a live setting", key)
		}
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%s=%q: want an integer from 1 to 1000000", key, value)
		}
		if err := checkRate(key, n); err != nil {
			return err
		}
		r.Store(int64(n))
	}
	return nil
}

// setLockout changes one of the lock-out settings; the three are checked together.
func (l *Live) setLockout(key, value string) error {
	for {
		old := l.lockout.Load()
		next := *old
		var err error
		switch key {
		case KeyLoginLockoutFailures:
			next.failures, err = strconv.Atoi(value)
		case KeyLoginLockout:
			next.first, err = time.ParseDuration(value)
		case KeyLoginLockoutMax:
			next.last, err = time.ParseDuration(value)
		}
		if err != nil {
			return fmt.Errorf("%s=%q: %w", key, value, err)
		}
		if err := checkLockout(next.failures, next.first, next.last); err != nil {
			return fmt.Errorf("%s=%q: %w", key, value, err)
		}
		if l.lockout.CompareAndSwap(old, &next) {
			return nil
		}
	}
}
