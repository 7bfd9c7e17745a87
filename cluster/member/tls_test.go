package member_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"phoneshop/cluster/member"
	"phoneshop/internal/certtest"
	"phoneshop/internal/shoptest"
)

// clusterName is the name the tests' member certificates carry.
const clusterName = "phoneshop-cluster"

func tlsFiles(ca *certtest.CA, p certtest.Pair) member.TLSFiles {
	return member.TLSFiles{CA: ca.File, Cert: p.Cert, Key: p.Key, Name: clusterName}
}

// TestLoadTLSRefusesACertificateItsPeersWouldRefuse: a process whose own
// certificate the other members would not accept stops at start, saying why,
// instead of failing every connection later.
func TestLoadTLSRefusesACertificateItsPeersWouldRefuse(t *testing.T) {
	ca := certtest.NewCA(t, "cluster CA")
	other := certtest.NewCA(t, "another CA")
	good := ca.Issue(t, certtest.Leaf{DNSNames: []string{clusterName}})
	notPEM := ca.File + ".txt"
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		files   member.TLSFiles
		wantErr string // "" for none
	}{
		{"a_certificate_of_the_CA_naming_the_cluster", tlsFiles(ca, good), ""},
		{"a_certificate_of_another_CA", tlsFiles(ca, other.Issue(t, certtest.Leaf{DNSNames: []string{clusterName}})),
			"certificate signed by unknown authority"},
		{"a_certificate_without_the_cluster_name", tlsFiles(ca, ca.Issue(t, certtest.Leaf{DNSNames: []string{"node1"}})),
			"not phoneshop-cluster"},
		{"a_server_only_certificate", tlsFiles(ca, ca.Issue(t, certtest.Leaf{DNSNames: []string{clusterName},
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})), "as a client auth certificate"},
		{"a_client_only_certificate", tlsFiles(ca, ca.Issue(t, certtest.Leaf{DNSNames: []string{clusterName},
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})), "as a server auth certificate"},
		{"an_expired_certificate", tlsFiles(ca, ca.Issue(t, certtest.Leaf{DNSNames: []string{clusterName},
			NotAfter: time.Now().Add(-time.Minute)})), "expired"},
		{"a_key_of_another_certificate", member.TLSFiles{CA: ca.File, Cert: good.Cert,
			Key: ca.Issue(t, certtest.Leaf{DNSNames: []string{clusterName}}).Key, Name: clusterName}, "private key does not match"},
		{"a_CA_file_without_a_certificate", member.TLSFiles{CA: notPEM, Cert: good.Cert, Key: good.Key, Name: clusterName},
			"holds no PEM certificate"},
		{"a_missing_CA_file", member.TLSFiles{CA: ca.File + ".missing", Cert: good.Cert, Key: good.Key, Name: clusterName},
			"no such file"},
		{"a_missing_key_file", member.TLSFiles{CA: ca.File, Cert: good.Cert, Key: good.Key + ".missing", Name: clusterName},
			"no such file"},
		{"no_name_to_check", member.TLSFiles{CA: ca.File, Cert: good.Cert, Key: good.Key}, "no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := member.LoadTLS(tt.files)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("LoadTLS: %v, want no error", err)
			case tt.wantErr == "" && got == nil:
				t.Fatal("LoadTLS returned no TLS and no error")
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("LoadTLS: %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

// TestTLSMemberServesOnlyPeersWithTheCAsCertificate dials a member's cluster
// port with gRPC as another member would, and opens protoactor's connection: only
// a peer showing a certificate of the cluster's CA that names the cluster gets an
// answer. One remote in the process, so it runs under the race detector.
func TestTLSMemberServesOnlyPeersWithTheCAsCertificate(t *testing.T) {
	ca := certtest.NewCA(t, "cluster CA")
	other := certtest.NewCA(t, "another CA")
	memberTLS, err := member.LoadTLS(tlsFiles(ca, ca.Issue(t, certtest.Leaf{DNSNames: []string{clusterName}})))
	if err != nil {
		t.Fatal(err)
	}
	m, err := member.StartMember(member.Config{Host: "127.0.0.1", TLS: memberTLS,
		NewProvider: member.NewInMemoryProvider(member.NewInMemoryAgent()),
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: shoptest.Logger()}, member.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)

	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(caPEM)
	withCert := func(p *certtest.Pair) credentials.TransportCredentials {
		cfg := &tls.Config{RootCAs: roots, ServerName: clusterName, MinVersion: tls.VersionTLS13}
		if p != nil {
			pair, err := tls.LoadX509KeyPair(p.Cert, p.Key)
			if err != nil {
				t.Fatal(err)
			}
			// Shown whatever the member asks for: Go would keep back a
			// certificate of a CA the member does not name, a rogue would not.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		return credentials.NewTLS(cfg)
	}
	peer := ca.Issue(t, certtest.Leaf{DNSNames: []string{clusterName}})
	otherCAs := other.Issue(t, certtest.Leaf{DNSNames: []string{clusterName}})
	unnamed := ca.Issue(t, certtest.Leaf{DNSNames: []string{"somewhere-else"}})

	tests := []struct {
		name   string
		creds  credentials.TransportCredentials
		served bool
	}{
		{"a_peer_with_a_certificate_of_the_CA", withCert(&peer), true},
		{"plaintext", insecure.NewCredentials(), false},
		{"TLS_without_a_certificate", withCert(nil), false},
		{"a_certificate_of_another_CA", withCert(&otherCAs), false},
		{"a_certificate_of_the_CA_without_the_cluster_name", withCert(&unnamed), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answered, err := openConnection(t, m.Address(), tt.creds)
			switch {
			case tt.served && !answered:
				t.Fatalf("not served: %v", err)
			case !tt.served && answered:
				t.Fatal("served, want the connection refused")
			case !tt.served && err == nil:
				t.Fatal("no answer and no error")
			}
			t.Logf("answered %v, err %v", answered, err)
		})
	}
}

// openConnection opens protoactor's stream to the remote at addr and asks to
// connect, as a member's endpoint writer does; it reports whether the remote
// answered.
func openConnection(t *testing.T, addr string, creds credentials.TransportCredentials) (bool, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Only a guard against a hang: a refusal ends the stream at once.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		return false, err
	}
	err = stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{
		ConnectRequest: &remote.ConnectRequest{ConnectionType: &remote.ConnectRequest_ServerConnection{
			ServerConnection: &remote.ServerConnection{SystemId: "tls-test-peer", Address: "127.0.0.1:1"},
		}},
	}})
	if err != nil {
		return false, err
	}
	msg, err := stream.Recv()
	if err != nil {
		if ctx.Err() != nil {
			t.Fatalf("no answer and no refusal within the guard: %v", err)
		}
		return false, err
	}
	return msg.GetConnectResponse() != nil, nil
}
