package edge

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"phoneshop/cluster/member"
	"phoneshop/cluster/memberinfo"
	"phoneshop/protos/opspb"
)

// memberQueryTimeout bounds the wait for one member's answer: a member that does
// not answer within it is reported unreachable rather than holding up the view.
const memberQueryTimeout = time.Second

// Member statuses in the cluster view.
const (
	memberUp          = "up"
	memberUnreachable = "unreachable"
)

// clusterResponse is GET /api/v1/ops/cluster: API.md's members, plus totals, this
// edge's counters (throughput is their difference between two reads) and the
// health of the shop's dependencies.
type clusterResponse struct {
	Members    []memberResponse  `json:"members"`
	Totals     map[string]int64  `json:"totals"`
	Edge       edgeResponse      `json:"edge"`
	Health     map[string]string `json:"health"`
	ObservedAt time.Time         `json:"observed_at"`
}

type memberResponse struct {
	ID      string   `json:"id"`
	Address string   `json:"address"`
	Kinds   []string `json:"kinds"`
	// Activations are absent when the member did not answer.
	Activations map[string]int64 `json:"activations,omitempty"`
	Status      string           `json:"status"`
	StartedAt   *time.Time       `json:"started_at,omitempty"`
	// Goroutines and HeapBytes are of the member's process (shared by the members
	// of one process in dev).
	Goroutines int64  `json:"goroutines,omitempty"`
	HeapBytes  uint64 `json:"heap_bytes,omitempty"`
}

// edgeResponse holds the counters of the edge that answered. Behind a load balancer
// consecutive reads may come from different edges: compare reads with the same id.
type edgeResponse struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// RequestsTotal counts the HTTP requests served, except the dashboard's own
	// (its page and this route), so that watching does not show up as traffic.
	RequestsTotal int64 `json:"requests_total"`
	// ServerErrorsTotal counts those answered with a 5xx status.
	ServerErrorsTotal int64 `json:"server_errors_total"`
	// Checkouts counts POST /api/v1/orders by outcome: confirmed (a new order),
	// replayed (the same key again), or the API error code.
	Checkouts map[string]int64 `json:"checkouts"`
	// GrainCallsTotal counts the grain calls this process made.
	GrainCallsTotal int64 `json:"grain_calls_total"`
}

// Dependency states in the health object.
const (
	healthUp       = "up"
	healthDown     = "down"
	healthDegraded = "degraded"
)

// dashboardRoutes are the routes of the ops dashboard, left out of RequestsTotal.
var dashboardRoutes = map[string]bool{"/ops": true, "/ops/:file": true, "/api/v1/ops/cluster": true}

func (s *server) clusterView(c *fiber.Ctx) error {
	ctx := c.UserContext()
	var failing []string
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		// A dependency that does not answer within the members' bound is down
		// for the dashboard's purpose.
		rctx, cancel := context.WithTimeout(ctx, memberQueryTimeout)
		defer cancel()
		failing = s.Ready(rctx)
	}()

	members := s.queryMembers(ctx)

	resp := clusterResponse{Members: members, Totals: make(map[string]int64, len(member.Kinds)), ObservedAt: time.Now().UTC()}
	for name := range member.Kinds {
		resp.Totals[name] = 0
	}
	for _, m := range members {
		for kind, n := range m.Activations {
			resp.Totals[kind] += n
		}
	}
	system := s.Cluster.ActorSystem
	resp.Edge = edgeResponse{ID: system.ID, Address: system.Address()}
	cacheDegraded := s.readCounters(&resp.Edge)

	<-ready
	resp.Health = map[string]string{"store": healthUp, "cache": healthUp, "cluster": healthUp}
	for _, part := range failing {
		resp.Health[part] = healthDown
	}
	if cacheDegraded {
		resp.Health["cache"] = healthDegraded
	}
	return c.JSON(resp)
}

// queryMembers asks every member the edge knows of to describe itself, all at once,
// and returns them sorted by id.
func (s *server) queryMembers(ctx context.Context) []memberResponse {
	listed := s.Members()
	out := make([]memberResponse, len(listed))
	var wg sync.WaitGroup
	for i, m := range listed {
		out[i] = memberResponse{ID: m.Id, Address: m.Address(), Kinds: apiKinds(m.Kinds), Status: memberUnreachable}
		wg.Add(1)
		go func() {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, memberQueryTimeout)
			defer cancel()
			info, err := memberinfo.Query(qctx, s.Cluster.ActorSystem, m.Address())
			// Debug only: the view reports the member unreachable, and an open
			// dashboard asks every 2 s.
			switch {
			case err != nil:
				s.log.Debug("ops: member did not answer", "member", m.Id, "address", m.Address(), "err", err)
			case info.Id != m.Id:
				// Another incarnation answers at the listed address: the listed
				// member itself is gone, though the membership still shows it.
				s.log.Debug("ops: another member answers at a listed member's address",
					"member", m.Id, "address", m.Address(), "answered", info.Id)
			default:
				fromMemberInfo(&out[i], info)
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b memberResponse) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// fromMemberInfo fills r from a member's answer.
func fromMemberInfo(r *memberResponse, info *opspb.MemberInfo) {
	r.Status = memberUp
	if len(info.Kinds) > 0 {
		r.Kinds = info.Kinds
	}
	r.Activations = make(map[string]int64, len(info.Activations))
	for kind, n := range info.Activations {
		r.Activations[kind] = n
	}
	if info.StartedAt != nil {
		t := info.StartedAt.AsTime().UTC()
		r.StartedAt = &t
	}
	r.Goroutines, r.HeapBytes = info.Goroutines, info.HeapBytes
}

// apiKinds names a member's grain kinds as the API does (Cart -> cart), sorted. The
// kinds protoactor adds on its own (prototopic, for pub/sub) are left out, as the
// members leave them out of their answers.
func apiKinds(kinds []string) []string {
	out := make([]string, 0, len(kinds))
	for api, kind := range member.Kinds {
		if slices.Contains(kinds, kind) {
			out = append(out, api)
		}
	}
	slices.Sort(out)
	return out
}

// readCounters fills e from the edge's own counts and reports whether the cache is
// degraded.
func (s *server) readCounters(e *edgeResponse) (cacheDegraded bool) {
	s.Metrics.counts(e)
	if s.GrainCalls != nil {
		e.GrainCallsTotal = s.GrainCalls.Total()
	}
	return s.CacheDegraded != nil && s.CacheDegraded()
}
