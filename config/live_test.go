package config

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultsAreValidLiveValues(t *testing.T) {
	cfg, _, err := ParseDev(nil)
	if err != nil {
		t.Fatalf("the shipped defaults: %v", err)
	}
	l := NewLive(cfg.Settings)
	for _, key := range LiveKeys {
		if l.Value(key) == "" {
			t.Errorf("live setting %s has no value", key)
		}
		if err := l.Set(key, l.Value(key)); err != nil {
			t.Errorf("the shipped %s=%s is refused as a live value: %v", key, l.Value(key), err)
		}
	}
}

func TestLiveSet(t *testing.T) {
	base := Settings{ReservationTTL: time.Minute, MaxLineQuantity: 5, LowStockThreshold: 5, GrainCallTimeout: 5 * time.Second, GrainIdleTimeout: 5 * time.Minute,
		RateRegisterPerMin: 300, RateRegisterBurst: 300, RateLoginPerMin: 600, RateLoginBurst: 300, RateCheckoutPerMin: 1200, RateCheckoutBurst: 400,
		LoginLockoutFailures: 10, LoginLockout: time.Minute, LoginLockoutMax: 15 * time.Minute}
	tests := []struct {
		name, key, value string
		ok               bool
		want             string // the value after Set
	}{
		{"max_line_quantity_applied", KeyMaxLineQuantity, "3", true, "3"},
		{"max_line_quantity_zero_refused", KeyMaxLineQuantity, "0", false, "5"},
		{"max_line_quantity_not_a_number_refused", KeyMaxLineQuantity, "three", false, "5"},
		{"max_line_quantity_huge_refused", KeyMaxLineQuantity, "1001", false, "5"},
		{"reservation_ttl_applied", KeyReservationTTL, "90s", true, "1m30s"},
		{"reservation_ttl_under_a_second_refused", KeyReservationTTL, "500ms", false, "1m0s"},
		{"reservation_ttl_beyond_idle_timeout_refused", KeyReservationTTL, "5m", false, "1m0s"},
		{"low_stock_threshold_zero_applied", KeyLowStockThreshold, "0", true, "0"},
		{"low_stock_threshold_negative_refused", KeyLowStockThreshold, "-1", false, "5"},
		{"grain_call_timeout_applied", KeyGrainCallTimeout, "2s", true, "2s"},
		{"grain_call_timeout_too_short_refused", KeyGrainCallTimeout, "1ms", false, "5s"},
		{"grain_call_timeout_over_a_minute_refused", KeyGrainCallTimeout, "61s", false, "5s"},
		{"low_stock_threshold_over_a_million_refused", KeyLowStockThreshold, "1000001", false, "5"},
		{"maintenance_mode_applied", KeyMaintenanceMode, "true", true, "true"},
		{"maintenance_mode_garbage_refused", KeyMaintenanceMode, "maybe", false, "false"},
		{"value_with_spaces_applied", KeyMaxLineQuantity, " 4\n", true, "4"},
		{"unknown_key_refused", "body_limit", "1", false, ""},
		{"mail_send_rate_applied", KeyMailSendPerSec, "200", true, "200"},
		{"mail_send_rate_zero_is_no_pacing", KeyMailSendPerSec, "0", true, "0"},
		{"mail_send_rate_negative_refused", KeyMailSendPerSec, "-1", false, "0"},
		{"rate_applied", KeyRateLoginBurst, "50", true, "50"},
		{"rate_zero_refused", KeyRateCheckoutPerMin, "0", false, "1200"},
		{"rate_not_a_number_refused", KeyRateRegisterPerMin, "lots", false, "300"},
		{"lockout_failures_applied", KeyLoginLockoutFailures, "5", true, "5"},
		{"lockout_applied", KeyLoginLockout, "30s", true, "30s"},
		{"lockout_over_its_max_refused", KeyLoginLockout, "20m", false, "1m0s"},
		{"lockout_max_under_the_first_refused", KeyLoginLockoutMax, "30s", false, "15m0s"},
		{"lockout_max_over_a_day_refused", KeyLoginLockoutMax, "25h", false, "15m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLive(base)
			err := l.Set(tc.key, tc.value)
			if (err == nil) != tc.ok {
				t.Fatalf("Set(%s, %q) err = %v, want ok=%v", tc.key, tc.value, err, tc.ok)
			}
			if got := l.Value(tc.key); got != tc.want {
				t.Fatalf("after Set: %s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

// TestLiveRangesAreTheDocumentedOnes pins the table: a range changes on purpose,
// with this list, never by accident.
func TestLiveRangesAreTheDocumentedOnes(t *testing.T) {
	want := map[string]string{
		KeyReservationTTL:         "want a duration of at least 1s",
		KeyMaxLineQuantity:        "want an integer from 1 to 1000",
		KeyLowStockThreshold:      "want an integer from 0 to 1000000",
		KeyGrainCallTimeout:       "want a duration from 10ms to 1m",
		KeyMaintenanceMode:        "want true or false",
		KeyMailSendPerSec:         "want an integer from 0 (no pacing) to 100000",
		KeyLoginLockoutFailures:   "want an integer from 1 to 1000",
		KeyLoginLockout:           "want a duration from 1s to 24h",
		KeyLoginLockoutMax:        "want a duration from 1s to 24h",
		KeyRateRegisterPerMin:     "want an integer from 1 to 1000000",
		KeyRateRegisterBurst:      "want an integer from 1 to 1000000",
		KeyRateLoginPerMin:        "want an integer from 1 to 1000000",
		KeyRateLoginBurst:         "want an integer from 1 to 1000000",
		KeyRateCheckoutPerMin:     "want an integer from 1 to 1000000",
		KeyRateCheckoutBurst:      "want an integer from 1 to 1000000",
		KeyRateAccountPerMin:      "want an integer from 1 to 1000000",
		KeyRateAccountBurst:       "want an integer from 1 to 1000000",
		KeyRatePreferencesPerMin:  "want an integer from 1 to 1000000",
		KeyRatePreferencesBurst:   "want an integer from 1 to 1000000",
		KeyRateUnsubscribePerMin:  "want an integer from 1 to 1000000",
		KeyRateUnsubscribeBurst:   "want an integer from 1 to 1000000",
		KeyRateLoginAccountPerMin: "want an integer from 1 to 1000000",
		KeyLoginAccountFailures:   "want an integer from 1 to 1000000",
	}
	got := map[string]string{}
	for _, ls := range liveSettings {
		got[ls.key] = ls.want()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("live setting ranges (-want +got):\n%s", diff)
	}
}

// probe is a value of one setting and whether it is valid.
type probe struct {
	key, value string
	ok         bool
}

// boundProbes are the values just inside and just outside each bound of the table.
func boundProbes(t *testing.T) []probe {
	t.Helper()
	var out []probe
	for _, ls := range liveSettings {
		render := func(v int64) string { return strconv.FormatInt(v, 10) }
		switch ls.field(&Settings{}).(type) {
		case *bool:
			out = append(out, probe{ls.key, "true", true}, probe{ls.key, "false", true}, probe{ls.key, "maybe", false})
			continue
		case *time.Duration:
			render = func(v int64) string { return time.Duration(v).String() }
			out = append(out, probe{ls.key, "soon", false})
		default:
			out = append(out, probe{ls.key, "many", false})
		}
		out = append(out, probe{ls.key, render(ls.min - 1), false}, probe{ls.key, render(ls.min), true})
		if ls.max != noMax {
			out = append(out, probe{ls.key, render(ls.max), true}, probe{ls.key, render(ls.max + 1), false})
		}
	}
	return out
}

// TestLiveRangesAreOneRule walks the table of live settings: a value just inside or
// just outside each bound, and each relation between settings, is accepted or
// refused alike at start (an environment variable, through ParseDev) and live
// (Live.Set, what a Consul KV change calls).
func TestLiveRangesAreOneRule(t *testing.T) {
	// The base: the defaults, with the relations loosened so that they do not hide
	// a bound (the lock-out may go up to 24h only under a max of 24h).
	base := map[string]string{KeyLoginLockout: "1s", KeyLoginLockoutMax: "24h"}
	probes := append(boundProbes(t),
		// reservation_ttl must be under the grain idle timeout (5m by default).
		probe{KeyReservationTTL, "4m59.999999999s", true},
		probe{KeyReservationTTL, "5m", false},
		// login_lockout must not exceed login_lockout_max.
		probe{KeyLoginLockout, "24h", true},
		probe{KeyLoginLockoutMax, "1s", true},
	)
	for _, pr := range probes {
		t.Run(pr.key+"="+pr.value, func(t *testing.T) {
			for key, value := range base {
				t.Setenv(envName(key), value)
			}
			cfg, _, err := ParseDev(nil)
			if err != nil {
				t.Fatalf("the base: %v", err)
			}
			live := NewLive(cfg.Settings)
			liveErr := live.Set(pr.key, pr.value)

			t.Setenv(envName(pr.key), pr.value)
			_, _, startErr := ParseDev(nil)

			if (startErr == nil) != pr.ok || (liveErr == nil) != pr.ok {
				t.Fatalf("%s=%q: at start %v, live %v; want ok=%v for both", pr.key, pr.value, startErr, liveErr, pr.ok)
			}
			if pr.ok && live.Value(pr.key) != mustParse(t, pr.key, pr.value) {
				t.Fatalf("live %s = %s after Set(%q)", pr.key, live.Value(pr.key), pr.value)
			}
		})
	}
	// The relations the other way round: lowering the max under the lock-out, or
	// raising the lock-out over the max, is refused too.
	for _, pr := range []probe{{KeyLoginLockout, "16m", false}, {KeyLoginLockoutMax, "59s", false}} {
		t.Run("relation_"+pr.key+"="+pr.value, func(t *testing.T) {
			cfg, _, err := ParseDev(nil) // lock-out 1m up to 15m
			if err != nil {
				t.Fatal(err)
			}
			liveErr := NewLive(cfg.Settings).Set(pr.key, pr.value)
			t.Setenv(envName(pr.key), pr.value)
			_, _, startErr := ParseDev(nil)
			if startErr == nil || liveErr == nil {
				t.Fatalf("%s=%q: at start %v, live %v; want both refused", pr.key, pr.value, startErr, liveErr)
			}
		})
	}
}

// mustParse renders value as Live.Value renders the setting key.
func mustParse(t *testing.T, key, value string) string {
	t.Helper()
	ls, _ := findLiveSetting(key)
	var s Settings
	if err := ls.parse(&s, value); err != nil {
		t.Fatal(err)
	}
	return ls.format(&s)
}

// TestLiveErrorsNameTheSetting: an operator reads which setting, which value and
// what would do, at start by its environment variable, live by its Consul key.
func TestLiveErrorsNameTheSetting(t *testing.T) {
	t.Setenv("PHONESHOP_GRAIN_CALL_TIMEOUT", "2m")
	_, _, err := ParseDev(nil)
	if want := "PHONESHOP_GRAIN_CALL_TIMEOUT=2m0s: want a duration from 10ms to 1m"; err == nil || err.Error() != want {
		t.Errorf("at start: %v, want %q", err, want)
	}
	cfg := Settings{ReservationTTL: time.Minute, MaxLineQuantity: 5, GrainCallTimeout: 5 * time.Second, GrainIdleTimeout: 5 * time.Minute,
		RateRegisterPerMin: 1, RateRegisterBurst: 1, RateLoginPerMin: 1, RateLoginBurst: 1, RateCheckoutPerMin: 1, RateCheckoutBurst: 1,
		LoginLockoutFailures: 1, LoginLockout: time.Minute, LoginLockoutMax: time.Hour}
	l := NewLive(cfg)
	for _, tc := range []struct{ key, value, want string }{
		{KeyGrainCallTimeout, "2m", `grain_call_timeout="2m": want a duration from 10ms to 1m`},
		{KeyMailSendPerSec, "fast", `mail_send_per_sec="fast": want an integer from 0 (no pacing) to 100000`},
		{KeyReservationTTL, "5m", `reservation_ttl="5m": reservation_ttl (5m) must be under grain_idle_timeout (5m): a grain's reservation timer only fires while the grain is active`},
		{KeyLoginLockoutMax, "30s", `login_lockout_max="30s": login_lockout (1m) must not exceed login_lockout_max (30s)`},
	} {
		if err := l.Set(tc.key, tc.value); err == nil || err.Error() != tc.want {
			t.Errorf("Set(%s, %q): %v, want %q", tc.key, tc.value, err, tc.want)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
		ok   bool
	}{
		{"", "[]", true},
		{"172.28.0.10", "[172.28.0.10/32]", true},
		{"10.0.0.1, 10.1.0.0/16", "[10.0.0.1/32 10.1.0.0/16]", true},
		{"10.0.0.1;10.1.0.0/16", "[10.0.0.1/32 10.1.0.0/16]", true},
		{"::1,fd00::/8", "[::1/128 fd00::/8]", true},
		{"10.0.0.1,not-an-address", "", false},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("PHONESHOP_TRUSTED_PROXIES", tc.env)
			cfg, _, err := ParseDev(nil)
			if (err == nil) != tc.ok {
				t.Fatalf("PHONESHOP_TRUSTED_PROXIES=%q: %v, want ok=%v", tc.env, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			got, err := cfg.HTTP.TrustedProxyPrefixes()
			if err != nil || fmt.Sprint(got) != tc.want && !(tc.want == "[]" && len(got) == 0) {
				t.Fatalf("prefixes %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
