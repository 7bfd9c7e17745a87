package member

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/eventstream"
)

// placementLookup is the members' identity lookup. It places grains as disthash
// does, and speaks its protocol: rendezvous hashing over the members that host a
// kind picks the owner, whose "partition-activator" answers an ActivationRequest
// with the grain's PID, activating it if needed. So a disthash client (the edge)
// and members on either lookup work together.
//
// What differs is what a passivated grain leaves behind (docs/benchmarks/memory.md):
//
//   - disthash spawns every grain as a child of its placement actor, whose children
//     set keeps a map entry and a slice slot per grain at its peak, with a stale
//     PID in every slot (actor/pidset.go:65-73). Here grains are spawned from the
//     root context and tell the activator themselves when they stop (onStopped),
//     so no children set grows.
//   - disthash finds the grain of a Terminated by scanning its whole map
//     (placement_actor.go:117-124): 100,000 passivations took the activator ~46 s
//     during which it activated nothing. Here the grain's key is in its own
//     PID's id, and the map is a lookup.
//   - disthash's map keeps the memory of its peak size (a Go map does not shrink).
//     Here the map is made again, with the grains still active, once it fell to a
//     quarter of its peak.
type placementLookup struct {
	cluster   *cluster.Cluster
	activator *actor.PID
	sub       *eventstream.Subscription

	mu  sync.RWMutex
	rdv *cluster.Rendezvous // of the last topology; replaced, never changed
}

// activatorName is disthash's, so that disthash clients and members find ours.
const activatorName = disthash.PartitionActivatorActorName

// activationTimeout bounds one ActivationRequest (disthash's figure).
const activationTimeout = 5 * time.Second

func newPlacementLookup() cluster.IdentityLookup {
	return &placementLookup{rdv: cluster.NewRendezvous()}
}

func (l *placementLookup) Setup(c *cluster.Cluster, _ []string, _ bool) {
	l.cluster = c
	system := c.ActorSystem
	activator, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &placementActor{cluster: c, grains: map[string]placedGrain{}, props: map[string]*actor.Props{}}
	}), activatorName)
	if err != nil {
		// The name is taken: protoactor's members panic at start on errors of theirs.
		panic(err)
	}
	l.activator = activator
	l.sub = system.EventStream.Subscribe(func(ev any) {
		t, ok := ev.(*cluster.ClusterTopology)
		if !ok {
			return
		}
		rdv := cluster.NewRendezvous()
		rdv.UpdateMembers(t.Members)
		l.mu.Lock()
		l.rdv = rdv
		l.mu.Unlock()
		system.Root.Send(activator, t)
	})
}

// Get asks the owner of the identity for the grain's PID; nil when there is no owner
// or no answer (the caller retries).
func (l *placementLookup) Get(ci *cluster.ClusterIdentity) *actor.PID {
	l.mu.RLock()
	rdv := l.rdv
	l.mu.RUnlock()
	owner := rdv.GetByClusterIdentity(ci)
	if owner == "" {
		return nil
	}
	res, err := l.cluster.ActorSystem.Root.RequestFuture(actor.NewPID(owner, activatorName),
		&cluster.ActivationRequest{ClusterIdentity: ci}, activationTimeout).Result()
	if err != nil {
		return nil
	}
	if r, ok := res.(*cluster.ActivationResponse); ok {
		return r.Pid
	}
	return nil
}

// RemovePid tells every member that the activation is gone, as disthash does.
func (l *placementLookup) RemovePid(ci *cluster.ClusterIdentity, pid *actor.PID) {
	l.cluster.MemberList.BroadcastEvent(&cluster.ActivationTerminated{Pid: pid, ClusterIdentity: ci}, true)
}

// Shutdown stops the activator, which first stops every grain it placed.
func (l *placementLookup) Shutdown() {
	system := l.cluster.ActorSystem
	system.EventStream.Unsubscribe(l.sub)
	if err := system.Root.PoisonFuture(l.activator).Wait(); err != nil {
		l.cluster.Logger().Error("stopping the grain activator failed", slog.Any("error", err))
	}
}

// grainStopped is what a grain tells the activator when it stopped (onStopped).
type grainStopped struct{ pid *actor.PID }

// IgnoreDeadLetterLogging: at shutdown the activator may stop before its grains.
func (grainStopped) IgnoreDeadLetterLogging() {}

type placedGrain struct {
	id  *cluster.ClusterIdentity
	pid *actor.PID
}

// placementActor activates the grains this member owns and keeps them by key
// (ClusterIdentity.AsKey). A grain's PID id is activatorName/<key><sequence>,
// the sequence being the registry's "$..." id, so a stopped grain's key is in its
// PID.
type placementActor struct {
	cluster *cluster.Cluster
	grains  map[string]placedGrain
	peak    int // most grains held since grains was made
	// props are the kinds' props with onStopped and the cluster identity, made once
	// per kind: disthash copies a kind's props for every activation
	// (cluster.WithClusterIdentity), about 320 B of an idle cart's 1.9 KB.
	props map[string]*actor.Props
	// spawning is the identity of the grain being spawned, which the props' OnInit
	// gives the grain: protoactor runs OnInit within the spawn (actor/props.go:56).
	spawning *cluster.ClusterIdentity
	// onStopped is every grain's receiver middleware that tells the activator when
	// the grain stopped, as a child's Terminated tells its parent, even if the
	// grain's own Stopped panics.
	onStopped actor.ReceiverMiddleware
}

// shrinkFloor is the peak below which the map is never made again: a small map
// costs little.
const shrinkFloor = 1024

func (p *placementActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		activator, system := ctx.Self(), ctx.ActorSystem()
		p.onStopped = func(next actor.ReceiverFunc) actor.ReceiverFunc {
			return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
				if _, ok := env.Message.(*actor.Stopped); ok {
					defer system.Root.Send(activator, grainStopped{pid: c.Self()})
				}
				next(c, env)
			}
		}
	case *cluster.ActivationRequest:
		p.activate(ctx, m)
	case grainStopped:
		p.stopped(m.pid)
	case *cluster.ClusterTopology:
		p.topology(ctx, m)
	case *actor.Stopping:
		p.stopAll(ctx)
	}
}

func (p *placementActor) activate(ctx actor.Context, req *cluster.ActivationRequest) {
	key := req.ClusterIdentity.AsKey()
	if g, ok := p.grains[key]; ok {
		ctx.Respond(&cluster.ActivationResponse{Pid: g.pid})
		return
	}
	kind, ok := p.cluster.TryGetClusterKind(req.ClusterIdentity.Kind)
	if !ok {
		ctx.Logger().Error("activation of an unknown kind", slog.String("kind", req.ClusterIdentity.Kind))
		ctx.Respond(&cluster.ActivationResponse{Failed: true})
		return
	}
	props := p.props[kind.Kind]
	if props == nil {
		props = kind.Props.Clone(actor.WithOnInit(p.setIdentity), actor.WithReceiverMiddleware(p.onStopped))
		p.props[kind.Kind] = props
	}
	system := ctx.ActorSystem()
	p.spawning = req.ClusterIdentity
	pid, err := system.Root.SpawnNamed(props, activatorName+"/"+key+system.ProcessRegistry.NextId())
	p.spawning = nil
	if err != nil {
		ctx.Logger().Error("activation failed", slog.String("key", key), slog.Any("error", err))
		ctx.Respond(&cluster.ActivationResponse{Failed: true})
		return
	}
	kind.Inc()
	p.grains[key] = placedGrain{id: req.ClusterIdentity, pid: pid}
	p.peak = max(p.peak, len(p.grains))
	ctx.Respond(&cluster.ActivationResponse{Pid: pid})
}

// setIdentity gives the grain being spawned its cluster identity, as
// cluster.WithClusterIdentity does.
func (p *placementActor) setIdentity(c actor.Context) {
	ci := p.spawning
	if ci == nil { // not spawned by activate: the identity is in the PID's id
		kind, identity, _ := strings.Cut(keyOf(c.Self()), "/")
		ci = cluster.NewClusterIdentity(identity, kind)
	}
	cluster.SetClusterIdentity(c, ci)
}

// keyOf is the key of the grain a PID of ours names ("" for any other PID).
func keyOf(pid *actor.PID) string {
	id, ok := strings.CutPrefix(pid.Id, activatorName+"/")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(id, '$'); i > 0 {
		return id[:i]
	}
	return ""
}

func (p *placementActor) stopped(pid *actor.PID) {
	key := keyOf(pid)
	g, ok := p.grains[key]
	if !ok || g.pid.Id != pid.Id {
		return // not ours, or an earlier activation of a grain active again
	}
	delete(p.grains, key)
	if kind, ok := p.cluster.TryGetClusterKind(g.id.Kind); ok {
		kind.Dec()
	}
	p.cluster.MemberList.BroadcastEvent(&cluster.ActivationTerminated{Pid: pid, ClusterIdentity: g.id}, true)
	if p.peak >= shrinkFloor && len(p.grains) <= p.peak/4 {
		// A Go map keeps the memory of its peak size: make it again for those left.
		grains := make(map[string]placedGrain, len(p.grains))
		for k, v := range p.grains {
			grains[k] = v
		}
		p.grains, p.peak = grains, len(grains)
	}
}

// topology stops the grains that another member owns now; they activate there on
// their next call.
func (p *placementActor) topology(ctx actor.Context, t *cluster.ClusterTopology) {
	rdv := cluster.NewRendezvous()
	rdv.UpdateMembers(t.Members)
	self := p.cluster.ActorSystem.Address()
	for _, g := range p.grains {
		if rdv.GetByClusterIdentity(g.id) != self {
			ctx.Poison(g.pid)
		}
	}
}

// stopAll stops every grain and waits for them, when the activator stops.
func (p *placementActor) stopAll(ctx actor.Context) {
	futures := make([]*actor.Future, 0, len(p.grains))
	for _, g := range p.grains {
		futures = append(futures, ctx.PoisonFuture(g.pid))
	}
	for _, f := range futures {
		if err := f.Wait(); err != nil {
			ctx.Logger().Error("stopping a grain failed", slog.Any("error", err))
		}
	}
	// Their grainStopped arrive after the activator is gone: count them out here.
	for _, g := range p.grains {
		if kind, ok := p.cluster.TryGetClusterKind(g.id.Kind); ok {
			kind.Dec()
		}
	}
	clear(p.grains)
}
