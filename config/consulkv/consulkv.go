// Package consulkv overlays the central configuration in Consul KV on the live
// settings: keys under phoneshop/config/ named like the settings' environment
// variables without the PHONESHOP_ prefix, in lower case
// (PHONESHOP_MAX_LINE_QUANTITY -> phoneshop/config/max_line_quantity). It reads them
// at start, then follows them with blocking queries.
package consulkv

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"phoneshop/cluster/consul/blocking"
	"phoneshop/config"
)

// Prefix is where the shop's settings live in Consul KV.
const Prefix = "phoneshop/config/"

// Watcher keeps live in step with Consul KV.
type Watcher struct {
	KV *api.KV
	// Defaults are the settings from defaults, environment and flags: what a key
	// absent from KV means.
	Defaults config.Settings
	Live     *config.Live
	// WaitTime bounds one blocking query (blocking.DefaultWait when 0).
	WaitTime time.Duration
	Logger   *slog.Logger
}

// Run applies KV to the live settings until ctx ends. An invalid value is refused
// with a log line and the last good value is kept; a key that disappears goes back
// to its default.
func (w *Watcher) Run(ctx context.Context) {
	defaults := config.NewLive(w.Defaults)
	applied := map[string]string{} // the raw value last acted on, per key
	warnedUnknown := map[string]bool{}
	apply := func(pairs api.KVPairs) bool {
		present := map[string]string{}
		for _, p := range pairs {
			key := strings.TrimPrefix(p.Key, Prefix)
			if key == "" {
				continue
			}
			if !slices.Contains(config.LiveKeys, key) {
				if !warnedUnknown[key] {
					w.Logger.Warn("config: unknown key in Consul KV, ignored", "key", p.Key)
					warnedUnknown[key] = true
				}
				continue
			}
			present[key] = string(p.Value)
		}
		for _, key := range config.LiveKeys {
			raw, ok := present[key]
			source := "consul"
			if !ok {
				raw, source = defaults.Value(key), "default"
			}
			if last, seen := applied[key]; seen && last == raw {
				continue
			}
			applied[key] = raw
			if err := w.Live.Set(key, raw); err != nil {
				w.Logger.Error("config: refused a value; keeping the last good one", "key", key, "err", err, "kept", w.Live.Value(key))
				continue
			}
			w.Logger.Info("config: applied", "key", key, "value", raw, "from", source)
		}
		return true
	}
	blocking.Loop[api.KVPairs]{
		Query:  func(opts *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) { return w.KV.List(Prefix, opts) },
		Answer: apply,
		Failed: func(err error) {
			w.Logger.Warn("config: reading Consul KV failed; keeping the current settings", "err", err)
		},
		Wait: w.WaitTime,
	}.Run(ctx)
}
