package config

import (
	"fmt"
	"testing"
	"time"
)

func TestDefaultsAreValidLiveValues(t *testing.T) {
	cfg, _, err := ParseDev(nil)
	if err != nil {
		t.Fatalf("the shipped defaults: %v", err)
	}
	l := NewLive(cfg.Shop)
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
	base := Shop{ReservationTTL: time.Minute, MaxLineQuantity: 5, LowStockThreshold: 5, GrainCallTimeout: 5 * time.Second, GrainIdleTimeout: 5 * time.Minute,
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
