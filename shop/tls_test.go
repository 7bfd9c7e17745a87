package shop_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/actors/inventory"
	"phoneshop/catalog"
	"phoneshop/cluster/member"
	"phoneshop/config"
	"phoneshop/internal/certtest"
	"phoneshop/internal/shoptest"
	"phoneshop/protos/inventorypb"
	"phoneshop/shop"
)

// tlsName is the cluster name the tests' certificates carry (the default of
// PHONESHOP_CLUSTER_TLS_NAME).
const tlsName = "phoneshop-cluster"

func clusterNet(ca *certtest.CA, p certtest.Pair) config.ClusterNet {
	return config.ClusterNet{ClusterHost: "127.0.0.1", ClusterTLSCA: ca.File, ClusterTLSCert: p.Cert,
		ClusterTLSKey: p.Key, ClusterTLSName: tlsName}
}

// TestEveryRoleWithARemoteRefusesToStartWithACertificateItsPeersWouldRefuse:
// dev, node and edge read the cluster TLS settings before they open anything,
// and a certificate of another CA stops them with an error naming the settings.
func TestEveryRoleWithARemoteRefusesToStartWithACertificateItsPeersWouldRefuse(t *testing.T) {
	ca := certtest.NewCA(t, "cluster CA")
	foreign := certtest.NewCA(t, "another CA").Issue(t, certtest.Leaf{DNSNames: []string{tlsName}})
	net := clusterNet(ca, foreign)
	starts := map[string]func() (*shop.Shop, error){
		"dev": func() (*shop.Shop, error) {
			return shop.StartDev(context.Background(), config.Dev{DataDir: t.TempDir(), ClusterNet: net}, shop.Options{}, shoptest.Logger())
		},
		"node": func() (*shop.Shop, error) {
			return shop.StartNode(context.Background(), config.Node{ClusterNet: net}, shoptest.Logger())
		},
		"edge": func() (*shop.Shop, error) {
			return shop.StartEdge(context.Background(), config.Edge{ClusterNet: net}, shoptest.Logger())
		},
	}
	for role, start := range starts {
		t.Run(role, func(t *testing.T) {
			s, err := start()
			if err == nil {
				_ = s.Close(context.Background())
				t.Fatal("started with a certificate of another CA")
			}
			for _, want := range []string{"PHONESHOP_CLUSTER_TLS_CA", "unknown authority"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestClusterMembersAndClientsSpeakMutualTLS: dev's members and an edge-like
// client with certificates of the cluster's CA serve grain calls across members;
// a client in plaintext or with another CA's certificate, and a member with
// another CA's certificate, get nothing served, change nothing, and are served by
// nobody. (A certificate of the CA without the cluster's name, and TLS without a
// certificate, are refused in cluster/member's TestTLSMemberServesOnlyPeersWithTheCAsCertificate.)
func TestClusterMembersAndClientsSpeakMutualTLS(t *testing.T) {
	shoptest.MultiMember(t)
	ca := certtest.NewCA(t, "cluster CA")
	other := certtest.NewCA(t, "another CA")
	named := certtest.Leaf{DNSNames: []string{tlsName}}
	log := shoptest.Logger()

	agent := member.NewInMemoryAgent()
	cfg, _, err := config.ParseDev([]string{"--data-dir", t.TempDir(), "--dev-mail=false"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClusterNet = clusterNet(ca, ca.Issue(t, named))
	s, err := shop.StartDev(context.Background(), cfg, shop.Options{Members: 2, Agent: agent}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	a, b := s.Members[0], s.Members[1]

	loadTLS := func(ca *certtest.CA, p certtest.Pair) *member.TLS {
		t.Helper()
		tlsCfg, err := member.LoadTLS(member.TLSFiles{CA: ca.File, Cert: p.Cert, Key: p.Key, Name: tlsName})
		if err != nil {
			t.Fatal(err)
		}
		return tlsCfg
	}
	startClient := func(tlsCfg *member.TLS) *cluster.Cluster {
		t.Helper()
		c, err := member.StartClient(member.Config{Host: "127.0.0.1", TLS: tlsCfg, NewProvider: member.NewInMemoryProvider(agent),
			RequestTimeout: 5 * time.Second, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		return c.Cluster
	}
	edge := startClient(loadTLS(ca, ca.Issue(t, named)))

	skus := seedSKUs(t)
	onA, onB := placedOn(t, a, skus), placedOn(t, b, skus)

	// The cluster serves: the edge and a member reach grains on both members.
	receive(t, edge, onA, 1)
	receive(t, edge, onB, 1)
	receive(t, a.Cluster(), onB, 1)
	receive(t, b.Cluster(), onA, 1)
	received := map[string]int64{onA: level(t, edge, onA), onB: level(t, edge, onB)}

	// The rogues trust the cluster's CA (its certificate is no secret), so that
	// it is the cluster's members that refuse them, not they who refuse the members.
	rogueTLS := loadTLS(bundle(t, ca, other), other.Issue(t, named))
	for name, tlsCfg := range map[string]*member.TLS{"plaintext": nil, "another CA's certificate": rogueTLS} {
		rogue := startClient(tlsCfg)
		if n := refusedAll(rogue, []string{onA, onB}, 1000); n != 2 {
			t.Errorf("a client with %s: %d of 2 calls went through, want none", name, 2-n)
		}
	}
	checkReceived(t, edge, received)

	// A member with another CA's certificate joins the membership: it gets no
	// call through, and no grain of the cluster's is activated on it.
	rogue, err := member.StartMember(member.Config{Host: "127.0.0.1", TLS: rogueTLS,
		NewProvider: member.NewInMemoryProvider(agent), IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: log},
		member.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rogue.Stop)
	owners := ownersOf(a.Members(), skus)
	var onRogue, onLegit []string
	for _, sku := range skus {
		switch owners[sku] {
		case rogue.Address():
			onRogue = append(onRogue, sku)
		case a.Address(), b.Address():
			onLegit = append(onLegit, sku)
		}
	}
	if len(onRogue) == 0 || len(onLegit) == 0 {
		t.Fatalf("placement with the rogue member: %d SKUs on it, %d on the others; want some of each", len(onRogue), len(onLegit))
	}
	onRogue, onLegit = onRogue[:min(len(onRogue), 5)], onLegit[:min(len(onLegit), 5)]
	// Placed with the rogue among the members, some SKUs moved to it: the ones
	// that stay on the cluster's members are checked from here on.
	received = map[string]int64{}
	for _, sku := range onLegit {
		received[sku] = level(t, edge, sku)
	}
	if n := refusedAll(rogue.Cluster(), onLegit, 1000); n != len(onLegit) {
		t.Errorf("the rogue member: %d of %d calls to the cluster's members refused, want all", n, len(onLegit))
	}
	// The edge does not trust the rogue's certificate either.
	if n := refusedAll(edge, onRogue, 1); n != len(onRogue) {
		t.Errorf("the edge's calls to grains placed on the rogue member: %d of %d refused, want all", n, len(onRogue))
	}
	if got := rogue.ActivationCounts(); got["inventory"] != 0 {
		t.Errorf("the rogue member activated %d inventory grains, want none", got["inventory"])
	}
	// The members still serve what they own, and nothing a rogue sent arrived.
	receive(t, edge, onLegit[0], 1)
	received[onLegit[0]]++
	checkReceived(t, edge, received)
}

// checkReceived fails t unless every SKU has received the units want says.
func checkReceived(t *testing.T, c *cluster.Cluster, want map[string]int64) {
	t.Helper()
	for sku, n := range want {
		if got := level(t, c, sku); got != n {
			t.Errorf("%s received %d units, want %d: a refused call changed it", sku, got, n)
		}
	}
}

// bundle writes the certificates of both CAs into one file.
func bundle(t *testing.T, cas ...*certtest.CA) *certtest.CA {
	t.Helper()
	var pem []byte
	for _, ca := range cas {
		b, err := os.ReadFile(ca.File)
		if err != nil {
			t.Fatal(err)
		}
		pem = append(pem, b...)
	}
	file := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(file, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return &certtest.CA{File: file}
}

func seedSKUs(t *testing.T) []string {
	t.Helper()
	phones, err := catalog.Seed()
	if err != nil {
		t.Fatal(err)
	}
	var skus []string
	for _, p := range phones {
		for _, v := range p.Variants {
			skus = append(skus, v.SKU)
		}
	}
	return skus
}

// placedOn returns a SKU whose inventory grain is placed on m.
func placedOn(t *testing.T, m *member.Member, skus []string) string {
	t.Helper()
	owners := ownersOf(m.Members(), skus)
	for _, sku := range skus {
		if owners[sku] == m.Address() {
			return sku
		}
	}
	t.Fatalf("no SKU of the seed is placed on %s", m.Address())
	return ""
}

// ownersOf places each SKU's inventory grain as the members' lookup does.
func ownersOf(members []*cluster.Member, skus []string) map[string]string {
	rdv := cluster.NewRendezvous()
	rdv.UpdateMembers(members)
	out := make(map[string]string, len(skus))
	for _, sku := range skus {
		out[sku] = rdv.GetByClusterIdentity(cluster.NewClusterIdentity(sku, inventory.KindName))
	}
	return out
}

var requestIDs struct {
	sync.Mutex
	n int
}

func requestID() string {
	requestIDs.Lock()
	defer requestIDs.Unlock()
	requestIDs.n++
	return fmt.Sprintf("tls-test-%d-%d", time.Now().UnixNano(), requestIDs.n)
}

func receive(t *testing.T, c *cluster.Cluster, sku string, units int64) {
	t.Helper()
	_, err := inventorypb.GetInventoryGrainClient(c, sku).Receive(&inventorypb.ReceiveRequest{RequestId: requestID(), Quantity: units},
		cluster.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("receive %s through %s: %v", sku, c.ActorSystem.Address(), err)
	}
}

func level(t *testing.T, c *cluster.Cluster, sku string) int64 {
	t.Helper()
	l, err := inventorypb.GetInventoryGrainClient(c, sku).Level(&inventorypb.LevelRequest{}, cluster.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("level of %s through %s: %v", sku, c.ActorSystem.Address(), err)
	}
	return l.Received
}

// refusedAll has c receive units of every SKU at once, and counts the calls that
// failed. A refused call fails at its timeout: the calls run side by side.
func refusedAll(c *cluster.Cluster, skus []string, units int64) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for _, sku := range skus {
		wg.Go(func() {
			_, err := inventorypb.GetInventoryGrainClient(c, sku).Receive(&inventorypb.ReceiveRequest{RequestId: requestID(), Quantity: units},
				cluster.WithTimeout(2*time.Second), cluster.WithRetryCount(1))
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}
