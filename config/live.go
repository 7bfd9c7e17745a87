package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Live holds the settings that may change while the shop runs (Consul KV overlays
// them on the values from defaults, environment and flags). Readers call its
// getters at every use, so a change applies at once, without a restart.
type Live struct {
	// shop is the current value of every setting: each Set swaps in a new one, so a
	// reader sees settings that were checked together (the lock-out and its max).
	// GrainIdleTimeout stays as it was at start: grain kinds are configured once.
	shop atomic.Pointer[Settings]
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

	KeyRateRegisterPerMin     = "rate_register_per_min"
	KeyRateRegisterBurst      = "rate_register_burst"
	KeyRateLoginPerMin        = "rate_login_per_min"
	KeyRateLoginBurst         = "rate_login_burst"
	KeyRateCheckoutPerMin     = "rate_checkout_per_min"
	KeyRateCheckoutBurst      = "rate_checkout_burst"
	KeyRateAccountPerMin      = "rate_account_per_min"
	KeyRateAccountBurst       = "rate_account_burst"
	KeyRatePreferencesPerMin  = "rate_preferences_per_min"
	KeyRatePreferencesBurst   = "rate_preferences_burst"
	KeyRateUnsubscribePerMin  = "rate_unsubscribe_per_min"
	KeyRateUnsubscribeBurst   = "rate_unsubscribe_burst"
	KeyRateLoginAccountPerMin = "rate_login_account_per_min"
	KeyLoginAccountFailures   = "login_account_failures"
	KeyLoginLockoutFailures   = "login_lockout_failures"
	KeyLoginLockout           = "login_lockout"
	KeyLoginLockoutMax        = "login_lockout_max"
)

// liveSetting is one live setting: where it sits in Settings and the range of its
// values, the one rule that start-up validation (Settings.Validate) and live updates
// (Live.Set) both apply.
type liveSetting struct {
	key string
	// field points at the setting in s: a *time.Duration, *int64, *int or *bool.
	field func(s *Settings) any
	// min and max bound the value, both included (nanoseconds for a duration;
	// unused for a bool). noMax: the setting has no upper bound of its own.
	min, max int64
	// minMeans says what the least value does, when it is special ("no pacing").
	minMeans string
}

const noMax = math.MaxInt64

// liveSettings is the table of the live settings and their ranges.
var liveSettings = []liveSetting{
	// Also under the grain idle timeout (liveRelations).
	{key: KeyReservationTTL, field: func(s *Settings) any { return &s.ReservationTTL }, min: int64(time.Second), max: noMax},
	{key: KeyMaxLineQuantity, field: func(s *Settings) any { return &s.MaxLineQuantity }, min: 1, max: 1000},
	{key: KeyLowStockThreshold, field: func(s *Settings) any { return &s.LowStockThreshold }, min: 0, max: 1_000_000},
	{key: KeyGrainCallTimeout, field: func(s *Settings) any { return &s.GrainCallTimeout }, min: int64(10 * time.Millisecond), max: int64(time.Minute)},
	{key: KeyMaintenanceMode, field: func(s *Settings) any { return &s.MaintenanceMode }},
	{key: KeyMailSendPerSec, field: func(s *Settings) any { return &s.MailSendPerSec }, min: 0, max: 100_000, minMeans: "no pacing"},
	{key: KeyLoginLockoutFailures, field: func(s *Settings) any { return &s.LoginLockoutFailures }, min: 1, max: 1000},
	// Also the lock-out at most its max (liveRelations).
	{key: KeyLoginLockout, field: func(s *Settings) any { return &s.LoginLockout }, min: int64(time.Second), max: int64(24 * time.Hour)},
	{key: KeyLoginLockoutMax, field: func(s *Settings) any { return &s.LoginLockoutMax }, min: int64(time.Second), max: int64(24 * time.Hour)},
	{key: KeyRateRegisterPerMin, field: func(s *Settings) any { return &s.RateRegisterPerMin }, min: 1, max: 1_000_000},
	{key: KeyRateRegisterBurst, field: func(s *Settings) any { return &s.RateRegisterBurst }, min: 1, max: 1_000_000},
	{key: KeyRateLoginPerMin, field: func(s *Settings) any { return &s.RateLoginPerMin }, min: 1, max: 1_000_000},
	{key: KeyRateLoginBurst, field: func(s *Settings) any { return &s.RateLoginBurst }, min: 1, max: 1_000_000},
	{key: KeyRateCheckoutPerMin, field: func(s *Settings) any { return &s.RateCheckoutPerMin }, min: 1, max: 1_000_000},
	{key: KeyRateCheckoutBurst, field: func(s *Settings) any { return &s.RateCheckoutBurst }, min: 1, max: 1_000_000},
	{key: KeyRateAccountPerMin, field: func(s *Settings) any { return &s.RateAccountPerMin }, min: 1, max: 1_000_000},
	{key: KeyRateAccountBurst, field: func(s *Settings) any { return &s.RateAccountBurst }, min: 1, max: 1_000_000},
	{key: KeyRatePreferencesPerMin, field: func(s *Settings) any { return &s.RatePreferencesPerMin }, min: 1, max: 1_000_000},
	{key: KeyRatePreferencesBurst, field: func(s *Settings) any { return &s.RatePreferencesBurst }, min: 1, max: 1_000_000},
	{key: KeyRateUnsubscribePerMin, field: func(s *Settings) any { return &s.RateUnsubscribePerMin }, min: 1, max: 1_000_000},
	{key: KeyRateUnsubscribeBurst, field: func(s *Settings) any { return &s.RateUnsubscribeBurst }, min: 1, max: 1_000_000},
	{key: KeyRateLoginAccountPerMin, field: func(s *Settings) any { return &s.RateLoginAccountPerMin }, min: 1, max: 1_000_000},
	{key: KeyLoginAccountFailures, field: func(s *Settings) any { return &s.LoginAccountFailures }, min: 1, max: 1_000_000},
}

// liveRelation is a rule between settings, checked with the range of each of them.
type liveRelation struct {
	keys []string // the live settings it binds
	// check says what is wrong with s, naming each setting by name(key).
	check func(s Settings, name func(key string) string) error
}

// keyGrainIdleTimeout names the grain idle timeout, not a live setting, in messages.
const keyGrainIdleTimeout = "grain_idle_timeout"

var liveRelations = []liveRelation{
	{keys: []string{KeyReservationTTL}, check: func(s Settings, name func(string) string) error {
		if s.ReservationTTL >= s.GrainIdleTimeout {
			return fmt.Errorf("%s (%s) must be under %s (%s): a grain's reservation timer only fires while the grain is active",
				name(KeyReservationTTL), shortDuration(s.ReservationTTL), name(keyGrainIdleTimeout), shortDuration(s.GrainIdleTimeout))
		}
		return nil
	}},
	{keys: []string{KeyLoginLockout, KeyLoginLockoutMax}, check: func(s Settings, name func(string) string) error {
		if s.LoginLockout > s.LoginLockoutMax {
			return fmt.Errorf("%s (%s) must not exceed %s (%s)",
				name(KeyLoginLockout), shortDuration(s.LoginLockout), name(KeyLoginLockoutMax), shortDuration(s.LoginLockoutMax))
		}
		return nil
	}},
}

// LiveKeys lists every live setting's key.
var LiveKeys = func() []string {
	keys := make([]string, len(liveSettings))
	for i, ls := range liveSettings {
		keys[i] = ls.key
	}
	return keys
}()

func findLiveSetting(key string) (liveSetting, bool) {
	for _, ls := range liveSettings {
		if ls.key == key {
			return ls, true
		}
	}
	return liveSetting{}, false
}

// envName names a setting in the messages of start-up validation: by its
// environment variable (PHONESHOP_MAX_LINE_QUANTITY).
func envName(key string) string { return Prefix + "_" + strings.ToUpper(key) }

// liveName names a setting in the messages of a live update: by its key, as in
// Consul KV (max_line_quantity).
func liveName(key string) string { return key }

// want says which values the setting takes, as the end of an error message.
func (ls liveSetting) want() string {
	from := func(v string) string {
		if ls.minMeans != "" {
			return v + " (" + ls.minMeans + ")"
		}
		return v
	}
	switch ls.field(&Settings{}).(type) {
	case *bool:
		return "want true or false"
	case *time.Duration:
		if ls.max == noMax {
			return "want a duration of at least " + from(shortDuration(time.Duration(ls.min)))
		}
		return fmt.Sprintf("want a duration from %s to %s", from(shortDuration(time.Duration(ls.min))), shortDuration(time.Duration(ls.max)))
	default:
		if ls.max == noMax {
			return fmt.Sprintf("want an integer of at least %s", from(strconv.FormatInt(ls.min, 10)))
		}
		return fmt.Sprintf("want an integer from %s to %d", from(strconv.FormatInt(ls.min, 10)), ls.max)
	}
}

// inRange reports whether the setting's value in s is within its range.
func (ls liveSetting) inRange(s *Settings) bool {
	var v int64
	switch p := ls.field(s).(type) {
	case *bool:
		return true
	case *time.Duration:
		v = int64(*p)
	case *int64:
		v = *p
	case *int:
		v = int64(*p)
	}
	return ls.min <= v && v <= ls.max
}

// parse sets the setting in s from its text form.
func (ls liveSetting) parse(s *Settings, value string) error {
	var err error
	switch p := ls.field(s).(type) {
	case *bool:
		*p, err = strconv.ParseBool(value)
	case *time.Duration:
		*p, err = time.ParseDuration(value)
	case *int64:
		*p, err = strconv.ParseInt(value, 10, 64)
	case *int:
		*p, err = strconv.Atoi(value)
	}
	return err
}

// format renders the setting's value in s in the form parse reads.
func (ls liveSetting) format(s *Settings) string {
	switch p := ls.field(s).(type) {
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return p.String()
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *int:
		return strconv.Itoa(*p)
	}
	return ""
}

// relationsOf lists the relations that bind key.
func relationsOf(key string) []liveRelation {
	var out []liveRelation
	for _, r := range liveRelations {
		if slices.Contains(r.keys, key) {
			out = append(out, r)
		}
	}
	return out
}

// validateLive checks every live setting of s at start, as Live.Set checks an update:
// each against its range, then each relation whose settings are all in range.
func validateLive(s Settings) error {
	var errs []error
	outOfRange := map[string]bool{}
	for _, ls := range liveSettings {
		if !ls.inRange(&s) {
			errs = append(errs, fmt.Errorf("%s=%s: %s", envName(ls.key), ls.format(&s), ls.want()))
			outOfRange[ls.key] = true
		}
	}
	for _, r := range liveRelations {
		if !slices.ContainsFunc(r.keys, func(key string) bool { return outOfRange[key] }) {
			errs = append(errs, r.check(s, envName))
		}
	}
	return errors.Join(errs...)
}

// NewLive starts the live settings at s (already validated).
func NewLive(s Settings) *Live {
	l := &Live{}
	l.shop.Store(&s)
	return l
}

// Rate is a rate-limit setting (one of the Key*PerMin and Key*Burst keys).
func (l *Live) Rate(key string) int {
	ls, _ := findLiveSetting(key)
	return *ls.field(l.shop.Load()).(*int)
}

// LoginLockout is the failed-login lock-out: failures in a row, first lock, longest lock.
func (l *Live) LoginLockout() (failures int, first, last time.Duration) {
	s := l.shop.Load()
	return s.LoginLockoutFailures, s.LoginLockout, s.LoginLockoutMax
}

// LoginAccountFailures is how many failed logins of one account, from anywhere,
// put it under attack (see Settings.LoginAccountFailures).
func (l *Live) LoginAccountFailures() int { return l.shop.Load().LoginAccountFailures }

// ReservationTTL is how long checkout holds stock.
func (l *Live) ReservationTTL() time.Duration { return l.shop.Load().ReservationTTL }

// MaxLineQuantity is the most units of one SKU per cart line.
func (l *Live) MaxLineQuantity() int64 { return l.shop.Load().MaxLineQuantity }

// LowStockThreshold is the level at or below which a SKU shows low_stock.
func (l *Live) LowStockThreshold() int64 { return l.shop.Load().LowStockThreshold }

// GrainCallTimeout bounds one grain-to-grain call.
func (l *Live) GrainCallTimeout() time.Duration { return l.shop.Load().GrainCallTimeout }

// MaintenanceMode reports whether the shop refuses changes (read-only).
func (l *Live) MaintenanceMode() bool { return l.shop.Load().MaintenanceMode }

// MailSendPerSec is the most e-mails a mailer sends per second (0: no pacing).
func (l *Live) MailSendPerSec() int { return l.shop.Load().MailSendPerSec }

// Value renders a setting's current value in the form Set accepts ("" for a key
// that is not a live setting).
func (l *Live) Value(key string) string {
	ls, ok := findLiveSetting(key)
	if !ok {
		return ""
	}
	return ls.format(l.shop.Load())
}

// Set validates value for key and applies it; an invalid value changes nothing and
// says why. The value is checked as Settings.Validate checks it at start: against the
// setting's range and the settings it must agree with.
func (l *Live) Set(key, value string) error {
	ls, ok := findLiveSetting(key)
	if !ok {
		return fmt.Errorf("%s: not a live setting", key)
	}
	value = strings.TrimSpace(value)
	for {
		old := l.shop.Load()
		next := *old
		if err := ls.parse(&next, value); err != nil || !ls.inRange(&next) {
			return fmt.Errorf("%s=%q: %s", key, value, ls.want())
		}
		for _, r := range relationsOf(key) {
			if err := r.check(next, liveName); err != nil {
				return fmt.Errorf("%s=%q: %w", key, value, err)
			}
		}
		if l.shop.CompareAndSwap(old, &next) {
			return nil
		}
	}
}

// shortDuration renders d without the zero units that Duration.String adds
// (1m rather than 1m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
