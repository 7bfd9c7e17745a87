package member

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TLSFiles name the PEM files of the cluster transport's mutual TLS, and the name
// every certificate of the cluster carries.
type TLSFiles struct {
	// CA is the certificate (or bundle) of the authority that signs the cluster's
	// certificates: a peer is trusted when its certificate chains to it.
	CA string
	// Cert and Key are this process's certificate (with any intermediates after
	// it) and private key. The process shows it both when it dials and when it is
	// dialed, so it needs both the server and client auth extended key usages.
	Cert, Key string
	// Name is a DNS name in the subject alternative names of every member's and
	// client's certificate, checked in both directions.
	//
	// A fixed name rather than each peer's host: a remote advertises the address
	// it listens on, which is a container's IP under compose, known only once the
	// container runs. The name also keeps two clusters apart that share a CA.
	Name string
}

// TLS is the mutual TLS of the cluster transport. Both ends of every gRPC
// connection between members and clients (the edges) show a certificate from the
// cluster's CA that names TLSFiles.Name; anything else is refused during the
// handshake, before a message is read.
type TLS struct {
	server *tls.Config
	client *tls.Config
}

// LoadTLS reads the files and checks that this process's own certificate is one
// its peers will accept (signed by the CA, for both server and client use, naming
// Name), so that a mistake stops the process at start instead of failing every
// connection later.
func LoadTLS(f TLSFiles) (*TLS, error) {
	if f.Name == "" {
		return nil, errors.New("cluster TLS: no name to check in the peers' certificates")
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: CA file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("cluster TLS: CA file %s holds no PEM certificate", f.CA)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	if err := verifyOwn(pair, roots, f.Name); err != nil {
		return nil, fmt.Errorf("cluster TLS: certificate %s would be refused by its peers: %w", f.Cert, err)
	}
	checkName := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("cluster TLS: the peer showed no certificate")
		}
		return cs.PeerCertificates[0].VerifyHostname(f.Name)
	}
	return &TLS{
		// Go verifies the client's chain against ClientCAs (for client auth);
		// VerifyConnection adds the name, which Go checks only on the dialing side.
		server: &tls.Config{
			MinVersion:       tls.VersionTLS13,
			Certificates:     []tls.Certificate{pair},
			ClientAuth:       tls.RequireAndVerifyClientCert,
			ClientCAs:        roots,
			VerifyConnection: checkName,
		},
		// ServerName replaces the host of the dialed address in the check.
		client: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{pair},
			RootCAs:      roots,
			ServerName:   f.Name,
		},
	}, nil
}

// verifyOwn checks the process's certificate as its peers will: chained to roots,
// valid now, naming name, for both ends of a connection.
func verifyOwn(pair tls.Certificate, roots *x509.CertPool, name string) error {
	leaf := pair.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return err
		}
	}
	intermediates := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("an intermediate certificate: %w", err)
		}
		intermediates.AddCert(c)
	}
	for _, usage := range []struct {
		name string
		eku  x509.ExtKeyUsage
	}{{"server auth", x509.ExtKeyUsageServerAuth}, {"client auth", x509.ExtKeyUsageClientAuth}} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: name,
			KeyUsages: []x509.ExtKeyUsage{usage.eku}})
		if err != nil {
			return fmt.Errorf("as a %s certificate: %w", usage.name, err)
		}
	}
	return nil
}

// remoteOptions make a remote speak mutual TLS; none for a nil t (plaintext).
// WithDialOptions replaces protoactor's default dial options, which are only
// grpc.WithInsecure.
func (t *TLS) remoteOptions(log *slog.Logger) []remote.ConfigOption {
	if t == nil {
		return nil
	}
	return []remote.ConfigOption{
		remote.WithServerOptions(grpc.Creds(refusalLog{TransportCredentials: credentials.NewTLS(t.server), log: log,
			every: &rate.Sometimes{Interval: time.Second}})),
		remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(t.client))),
	}
}

// refusalLog logs the handshakes a member refuses. protoactor silences gRPC's own
// log, so without it only the refused peer would say why; here the member also
// says who knocked. At most a line a second: anyone who reaches the port can
// knock.
type refusalLog struct {
	credentials.TransportCredentials
	log   *slog.Logger
	every *rate.Sometimes
}

func (r refusalLog) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := r.TransportCredentials.ServerHandshake(conn)
	if err != nil && r.log != nil {
		r.every.Do(func() {
			r.log.LogAttrs(context.Background(), slog.LevelWarn, "cluster transport refused a connection",
				slog.String("peer", conn.RemoteAddr().String()), slog.Any("err", err))
		})
	}
	return c, info, err
}

func (r refusalLog) Clone() credentials.TransportCredentials {
	return refusalLog{TransportCredentials: r.TransportCredentials.Clone(), log: r.log, every: r.every}
}
