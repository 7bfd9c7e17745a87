// Package config is the shop's configuration: one struct per role, defaults in one
// place (the struct tags), then environment variables (PHONESHOP_ prefix), then
// flags. Packages receive values from here; none reads the environment itself.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ardanlabs/conf/v3"
)

// Prefix is the prefix of every environment variable.
const Prefix = "PHONESHOP"

// ErrHelp is returned by Parse when --help was asked for; the usage text comes with it.
var ErrHelp = conf.ErrHelpWanted

// Dev is the configuration of `phoneshop dev`: every role in one process, on the
// embedded defaults unless stores are given.
type Dev struct {
	Args conf.Args

	DataDir string `conf:"default:./data,env:DATA_DIR,flag:data-dir,help:directory of the SQLite store"`
	Logging
	Settings Settings
	Stores
	HTTP
	Accounts
	Mail
	// DevMail runs the relay and a mailer in the process. Off, the events of
	// orders and campaigns are still written to the outbox in the transaction that
	// makes them true, and wait there: what a node does when its mailer runs
	// elsewhere. make bench turns it off, so that the checkout it measures shares
	// its cores with the database, not with a mailer (whose send rate mail.txt
	// measures on its own).
	DevMail bool `conf:"default:true,env:DEV_MAIL,flag:dev-mail,help:send the shop's e-mail in process as .eml files under <data-dir>/mail (off: events wait in the outbox for a mailer)"`
	MailRetry
	Outbox
	ClusterNet
	// ConsulAddr, when set, overlays the live settings with Consul KV (dev keeps
	// in-memory membership).
	ConsulAddr string `conf:"env:CONSUL_ADDR,flag:consul-addr,help:host:port of a Consul agent whose KV under phoneshop/config/ overlays the live settings (unset: env and flags only)"`
}

// Node is the configuration of `phoneshop node`: a cluster member hosting the cart,
// inventory and order grains. Members find each other through Consul.
type Node struct {
	Args conf.Args

	Logging
	Settings Settings
	Stores
	Broker
	Outbox
	ClusterNet
	Consul
	ShutdownTimeout time.Duration `conf:"default:20s,env:SHUTDOWN_TIMEOUT,flag:shutdown-timeout,help:time to leave the cluster at stop"`
	// HealthAddr serves /healthz, /readyz and /metrics for a supervisor (a node has
	// no edge).
	HealthAddr string `conf:"env:HEALTH_ADDR,flag:health-addr,help:address of the node's /healthz, /readyz and /metrics, e.g. :8090 (unset: off)"`
}

// Edge is the configuration of `phoneshop edge`: the HTTP edge, a cluster client
// that hosts no grain.
type Edge struct {
	Args conf.Args

	Logging
	Settings Settings
	Stores
	HTTP
	Accounts
	// Broker lets the edge count the mail queues and send their dead letters
	// back (GET /api/v1/ops/mail, POST /api/v1/ops/mail/dead-letters/redrive):
	// ops must see the backlog most when no mailer runs.
	Broker
	ClusterNet
	Consul
	// HealthAddr serves /healthz, /readyz and /metrics apart from the API, so that
	// the load balancer in front of the edges does not expose the metrics.
	HealthAddr string `conf:"env:HEALTH_ADDR,flag:health-addr,help:address of the edge's /healthz, /readyz and /metrics, e.g. :8090 (unset: off)"`
}

// Mailer is the configuration of `phoneshop mailer`: it consumes the mail queues
// of RabbitMQ and sends through an SMTP server.
type Mailer struct {
	Args conf.Args

	Logging
	// Settings are the live settings a mailer follows (the send rate), overlaid
	// from Consul KV when ConsulAddr is set.
	Settings   Settings
	ConsulAddr string `conf:"env:CONSUL_ADDR,flag:consul-addr,help:host:port of a Consul agent whose KV under phoneshop/config/ overlays the live settings (unset: env and flags only)"`
	// MySQLDSN is the shop's store: deliveries, accounts, campaigns, the outbox.
	MySQLDSN     string `conf:"env:MYSQL_DSN,flag:mysql-dsn,mask,help:go-sql-driver DSN of the shop's MySQL/MariaDB (required)"`
	MySQLMigrate bool   `conf:"default:true,env:MYSQL_MIGRATE,flag:mysql-migrate,help:create the MySQL database and apply the schema migrations at start (false: only check that phoneshop migrate applied them)"`
	Mail
	MailRetry
	Broker
	SMTP
	// UnsubscribeSecret signs the unsubscribe links: the edges' secret.
	UnsubscribeSecret string        `conf:"env:UNSUBSCRIBE_SECRET,flag:unsubscribe-secret,mask,help:the edges' secret of at least 32 characters that signs unsubscribe links"`
	MailPrefetch      int           `conf:"default:32,env:MAIL_PREFETCH,flag:mail-prefetch,help:messages of one queue handled at once (RabbitMQ prefetch)"`
	MailDeliveryLimit int           `conf:"default:20,env:MAIL_DELIVERY_LIMIT,flag:mail-delivery-limit,help:deliveries of one message before it goes to the dead letters (set when a queue is first declared)"`
	ShutdownTimeout   time.Duration `conf:"default:20s,env:SHUTDOWN_TIMEOUT,flag:shutdown-timeout,help:time to finish the mails in hand at stop"`
	HealthAddr        string        `conf:"env:HEALTH_ADDR,flag:health-addr,help:address of the mailer's health checks and metrics such as :8090 (unset: off)"`
}

// Migrate is the configuration of `phoneshop migrate`: it creates the database if
// needed, applies the schema migrations and exits. It is the one step that needs a
// user allowed to change the schema; the other processes can then run with
// PHONESHOP_MYSQL_MIGRATE=false as a user that only reads and writes rows.
type Migrate struct {
	Args conf.Args

	Logging
	MySQLDSN string `conf:"env:MYSQL_DSN,flag:mysql-dsn,mask,help:go-sql-driver DSN of MySQL/MariaDB for a user allowed to create the database and change its tables (required)"`
}

// Validate checks the migrate configuration.
func (m Migrate) Validate() error {
	if m.MySQLDSN == "" {
		return errors.New("PHONESHOP_MYSQL_DSN is required: the database to migrate")
	}
	return nil
}

// Broker says where the events go: RabbitMQ.
type Broker struct {
	RabbitMQURL string `conf:"default:amqp://guest:guest@127.0.0.1:5672/,env:RABBITMQ_URL,flag:rabbitmq-url,mask,help:AMQP URL of RabbitMQ, where nodes publish the outbox and mailers consume"`
}

// MailRetry says how long mail that meets a temporary failure (the SMTP server away
// or answering 4xx) is tried again. The schedule is kept in each mail's delivery
// row, so an outage of hours exhausts nothing: a message waits in the queue
// adapter's hold (at most MailMaxHold at a time, below RabbitMQ's consumer_timeout)
// for its next attempt.
type MailRetry struct {
	MailRetryFirst time.Duration `conf:"default:30s,env:MAIL_RETRY_FIRST,flag:mail-retry-first,help:wait after a mail's first temporary failure (SMTP away or 4xx); doubled after each further one"`
	MailRetryMax   time.Duration `conf:"default:1h,env:MAIL_RETRY_MAX,flag:mail-retry-max,help:longest wait between two attempts of one mail"`
	MailRetryFor   time.Duration `conf:"default:72h,env:MAIL_RETRY_FOR,flag:mail-retry-for,help:a mail still failing for temporary reasons this long after its first attempt is failed and dead-lettered"`
	MailMaxHold    time.Duration `conf:"default:15m,env:MAIL_MAX_HOLD,flag:mail-max-hold,help:longest a message waiting for its next attempt is held unacknowledged before it goes back to its queue (keep it below RabbitMQ's consumer_timeout, 30m by default)"`
}

func (r MailRetry) validate() error {
	if r.MailRetryFirst <= 0 || r.MailRetryMax < r.MailRetryFirst || r.MailRetryFor <= 0 || r.MailMaxHold <= 0 {
		return fmt.Errorf("mail retry settings: want 0 < MAIL_RETRY_FIRST (%s) <= MAIL_RETRY_MAX (%s), MAIL_RETRY_FOR (%s) > 0 and MAIL_MAX_HOLD (%s) > 0",
			r.MailRetryFirst, r.MailRetryMax, r.MailRetryFor, r.MailMaxHold)
	}
	return nil
}

// Outbox says how long the processes that relay the outbox keep published events.
type Outbox struct {
	OutboxRetention time.Duration `conf:"default:168h,env:OUTBOX_RETENTION,flag:outbox-retention,help:published outbox events older than this are deleted (in batches, by every relay)"`
}

func (o Outbox) validate() error {
	if o.OutboxRetention <= 0 {
		return fmt.Errorf("outbox retention %s: want more than 0", o.OutboxRetention)
	}
	return nil
}

// SMTP says where the mailer sends.
type SMTP struct {
	SMTPHost     string `conf:"default:127.0.0.1,env:SMTP_HOST,flag:smtp-host,help:SMTP server host"`
	SMTPPort     int    `conf:"default:1025,env:SMTP_PORT,flag:smtp-port,help:SMTP server port"`
	SMTPUser     string `conf:"env:SMTP_USER,flag:smtp-user,help:SMTP AUTH user (unset: no AUTH)"`
	SMTPPassword string `conf:"env:SMTP_PASSWORD,flag:smtp-password,mask,help:SMTP AUTH password"`
	// SMTPTLSPolicy ships as mandatory: mail carries links that log nobody in
	// but do unsubscribe, and shoppers' addresses; a server that offers no
	// STARTTLS gets nothing (the attempt is a temporary failure, retried). A
	// local Mailpit without a certificate is configured as none, explicitly.
	SMTPTLSPolicy string        `conf:"default:mandatory,env:SMTP_TLS,flag:smtp-tls,help:mandatory (STARTTLS or no delivery) | opportunistic (STARTTLS when offered) | none (plain SMTP: a local test server only)"`
	SMTPTimeout   time.Duration `conf:"default:15s,env:SMTP_TIMEOUT,flag:smtp-timeout,help:deadline of one SMTP conversation"`
}

// Logging says what the process logs and whether it serves pprof.
type Logging struct {
	LogLevel string `conf:"default:info,env:LOG_LEVEL,flag:log-level,help:debug, info, warn or error"`
	// DebugAddr serves net/http/pprof on its own listener, never through the edge.
	DebugAddr string `conf:"env:DEBUG_ADDR,flag:debug-addr,help:address of the pprof listener, e.g. 127.0.0.1:6060 (unset: off)"`
}

// Stores says where the truth and the hot reads live.
type Stores struct {
	MySQLDSN string `conf:"env:MYSQL_DSN,flag:mysql-dsn,mask,help:go-sql-driver DSN of MySQL/MariaDB, e.g. root@tcp(127.0.0.1:3306)/phoneshop (unset: SQLite in the data directory; node and edge need it)"`
	// MySQLMigrate off leaves the schema to `phoneshop migrate`, so that the
	// shop's own user needs no right to change it (compose runs it so).
	MySQLMigrate   bool   `conf:"default:true,env:MYSQL_MIGRATE,flag:mysql-migrate,help:create the MySQL database and apply the schema migrations at start (false: only check that phoneshop migrate applied them; the DSN user then needs only SELECT INSERT UPDATE and DELETE)"`
	RedisAddr      string `conf:"env:REDIS_ADDR,flag:redis-addr,help:host:port of Redis for hot reads (unset: in-process cache)"`
	RedisPrefix    string `conf:"default:phoneshop:,env:REDIS_PREFIX,flag:redis-prefix,help:prefix of every Redis key (shops sharing a Redis need different ones)"`
	RedisUser      string `conf:"env:REDIS_USER,flag:redis-user,help:Redis ACL user name (unset: the default user)"`
	RedisPassword  string `conf:"env:REDIS_PASSWORD,flag:redis-password,mask,help:Redis password (unset: none)"`
	RedisTLS       bool   `conf:"default:false,env:REDIS_TLS,flag:redis-tls,help:connect to Redis over TLS (verified against the system roots, or REDIS_TLS_CA_FILE)"`
	RedisTLSCAFile string `conf:"env:REDIS_TLS_CA_FILE,flag:redis-tls-ca-file,help:PEM file of the CA that signed Redis's certificate (unset: system roots)"`

	GroupCommit          bool          `conf:"default:true,env:GROUP_COMMIT,flag:group-commit,help:batch durable grain writes (a hot SKU answers many commands per commit)"`
	GroupCommitMaxWrites int           `conf:"default:256,env:GROUP_COMMIT_MAX_WRITES,flag:group-commit-max-writes,help:most snapshot writes in one transaction"`
	GroupCommitMaxWait   time.Duration `conf:"default:0s,env:GROUP_COMMIT_MAX_WAIT,flag:group-commit-max-wait,help:how long a batch waits for more writes (0: commit what is queued at once)"`
	GroupCommitters      int           `conf:"default:4,env:GROUP_COMMITTERS,flag:group-committers,help:batches committing at once on MySQL/MariaDB (SQLite has one writer: always 1)"`
}

// HTTP says how the edge serves.
type HTTP struct {
	HTTPAddr        string        `conf:"default::8080,env:HTTP_ADDR,flag:http-addr,help:address the HTTP edge listens on"`
	RequestTimeout  time.Duration `conf:"default:10s,env:REQUEST_TIMEOUT,flag:request-timeout,help:deadline of one HTTP request"`
	ShutdownTimeout time.Duration `conf:"default:20s,env:SHUTDOWN_TIMEOUT,flag:shutdown-timeout,help:time to drain in-flight requests at stop"`
	BodyLimit       int           `conf:"default:65536,env:BODY_LIMIT,flag:body-limit,help:largest request body in bytes"`
	// TrustedProxies are the load balancers whose X-Forwarded-For names the client.
	TrustedProxies []string `conf:"env:TRUSTED_PROXIES,flag:trusted-proxies,help:comma-separated addresses or CIDRs of proxies whose X-Forwarded-For is believed (unset: the socket's peer is the client)"`
	// ClientIPv6Prefix groups IPv6 clients for limits and lock-outs: one host
	// usually holds a whole /64, so its addresses count as one.
	ClientIPv6Prefix int `conf:"default:64,env:CLIENT_IPV6_PREFIX,flag:client-ipv6-prefix,help:IPv6 clients in one prefix of this length count as one address for rate limits and lock-outs (IPv4: each address)"`
}

// Accounts says how logins work and who the first admin is.
type Accounts struct {
	AdminEmail    string        `conf:"env:ADMIN_EMAIL,flag:admin-email,help:e-mail of the first admin account (none when empty)"`
	AdminPassword string        `conf:"env:ADMIN_PASSWORD,flag:admin-password,mask,help:password of the first admin account"`
	SessionTTL    time.Duration `conf:"default:24h,env:SESSION_TTL,flag:session-ttl,help:how long a login lasts"`
	// UnsubscribeSecret signs the unsubscribe links of e-mails: every edge (and
	// mailer) of a shop needs the same one. dev makes one on first start.
	UnsubscribeSecret string `conf:"env:UNSUBSCRIBE_SECRET,flag:unsubscribe-secret,mask,help:secret of at least 32 characters that signs unsubscribe links (dev: made and kept in the data directory when unset)"`

	PasswordMemoryKiB   uint32 `conf:"default:19456,env:PASSWORD_MEMORY_KIB,flag:password-memory-kib,help:argon2id memory cost"`
	PasswordIterations  uint32 `conf:"default:2,env:PASSWORD_ITERATIONS,flag:password-iterations,help:argon2id time cost"`
	PasswordParallelism uint8  `conf:"default:1,env:PASSWORD_PARALLELISM,flag:password-parallelism,help:argon2id lanes"`

	// Password hashing runs in a bounded pool: a burst of sign-ups or logins waits
	// for a hasher, or is answered 503 with Retry-After, never hashed too late.
	PasswordHashers int           `conf:"default:0,env:PASSWORD_HASHERS,flag:password-hashers,help:password hashes computed at once (0: one per core)"`
	PasswordQueue   int           `conf:"default:0,env:PASSWORD_QUEUE,flag:password-queue,help:requests that may wait for a password hasher (0: 64 per hasher); more get 503"`
	PasswordMaxWait time.Duration `conf:"default:5s,env:PASSWORD_MAX_WAIT,flag:password-max-wait,help:longest wait for a password hasher before 503 (also never past the request deadline)"`

	// VerificationResendAfter is how long a shopper waits between verification
	// mails (sign-up sends the first).
	VerificationResendAfter time.Duration `conf:"default:5m,env:VERIFICATION_RESEND_AFTER,flag:verification-resend-after,help:least time between two verification mails to one account"`
}

// Mail says what the shop's e-mail looks like. dev writes every mail as a .eml file
// under <data-dir>/mail/.
type Mail struct {
	PublicURL string `conf:"default:http://localhost:8080,env:PUBLIC_URL,flag:public-url,help:where shoppers reach the shop: the base of the links in e-mail"`
	MailFrom  string `conf:"default:phoneshop <shop@localhost>,env:MAIL_FROM,flag:mail-from,help:the From of every e-mail"`
	// VerificationTTL is how long an e-mail verification link works after its
	// mail is sent.
	VerificationTTL time.Duration `conf:"default:48h,env:VERIFICATION_TTL,flag:verification-ttl,help:how long an e-mail verification link works after its mail is sent"`
}

// ClusterNet says where the process's cluster remote listens, and whether it
// speaks mutual TLS with its peers (members and edges alike).
type ClusterNet struct {
	ClusterHost string `conf:"default:127.0.0.1,env:CLUSTER_HOST,flag:cluster-host,help:address the cluster remote listens on"`
	ClusterPort int    `conf:"default:0,env:CLUSTER_PORT,flag:cluster-port,help:port of the cluster remote (0 = any free port)"`
	// Mutual TLS on the cluster transport: off while the three files are unset.
	// Every member and edge needs a certificate of the same CA.
	ClusterTLSCA   string `conf:"env:CLUSTER_TLS_CA,flag:cluster-tls-ca,help:PEM file of the CA that signs the certificate of every member and edge (set with CLUSTER_TLS_CERT and CLUSTER_TLS_KEY for mutual TLS between members and edges; unset: plaintext)"`
	ClusterTLSCert string `conf:"env:CLUSTER_TLS_CERT,flag:cluster-tls-cert,help:PEM file of the certificate of this process: signed by the CA for server and client auth and naming CLUSTER_TLS_NAME"`
	ClusterTLSKey  string `conf:"env:CLUSTER_TLS_KEY,flag:cluster-tls-key,help:PEM file of the private key of this process"`
	ClusterTLSName string `conf:"default:phoneshop-cluster,env:CLUSTER_TLS_NAME,flag:cluster-tls-name,help:DNS name that the certificate of every member and edge carries; peers check it both ways"`
}

// ClusterTLS reports whether the cluster transport speaks mutual TLS.
func (n ClusterNet) ClusterTLS() bool {
	return n.ClusterTLSCA != "" || n.ClusterTLSCert != "" || n.ClusterTLSKey != ""
}

// validate checks that mutual TLS is configured whole: half of it would start a
// process its peers refuse, or one that silently talks plaintext.
func (n ClusterNet) validate() error {
	if !n.ClusterTLS() {
		return nil
	}
	var missing []string
	for _, f := range []struct{ env, value string }{
		{"PHONESHOP_CLUSTER_TLS_CA", n.ClusterTLSCA},
		{"PHONESHOP_CLUSTER_TLS_CERT", n.ClusterTLSCert},
		{"PHONESHOP_CLUSTER_TLS_KEY", n.ClusterTLSKey},
	} {
		if f.value == "" {
			missing = append(missing, f.env)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cluster TLS needs PHONESHOP_CLUSTER_TLS_CA, _CERT and _KEY together (or none, for plaintext): %s unset", strings.Join(missing, ", "))
	}
	if n.ClusterTLSName == "" {
		return errors.New("PHONESHOP_CLUSTER_TLS_NAME is empty: cluster TLS checks that name in every peer's certificate")
	}
	return nil
}

// Consul says how members find each other and where the central configuration is.
type Consul struct {
	ConsulAddr            string        `conf:"default:127.0.0.1:8500,env:CONSUL_ADDR,flag:consul-addr,help:host:port of the Consul agent (membership and KV config under phoneshop/config/)"`
	ConsulTTL             time.Duration `conf:"default:3s,env:CONSUL_TTL,flag:consul-ttl,help:a member not heard of for this long is unhealthy"`
	ConsulDeregisterAfter time.Duration `conf:"default:1m,env:CONSUL_DEREGISTER_AFTER,flag:consul-deregister-after,help:an unhealthy member is removed after this long (minimum 1m)"`
	ConsulWait            time.Duration `conf:"default:5s,env:CONSUL_WAIT,flag:consul-wait,help:longest wait of one blocking query on the members (Consul caps it at 10m)"`
	ConsulCallTimeout     time.Duration `conf:"default:5s,env:CONSUL_CALL_TIMEOUT,flag:consul-call-timeout,help:deadline of one call to the Consul agent (a blocking query: its wait plus this), so a stalled agent cannot hang a member"`
}

// Settings are the business settings every role shares. All but GrainIdleTimeout are
// live (see Live): they can change while the shop runs.
type Settings struct {
	ReservationTTL    time.Duration `conf:"default:1m,env:RESERVATION_TTL,flag:reservation-ttl,help:how long checkout holds stock before it returns to available"`
	MaxLineQuantity   int64         `conf:"default:5,env:MAX_LINE_QUANTITY,flag:max-line-quantity,help:most units of one SKU per cart line"`
	LowStockThreshold int64         `conf:"default:5,env:LOW_STOCK_THRESHOLD,flag:low-stock-threshold,help:at or below this many units a SKU shows low_stock"`
	GrainCallTimeout  time.Duration `conf:"default:5s,env:GRAIN_CALL_TIMEOUT,flag:grain-call-timeout,help:deadline of one grain-to-grain call"`
	GrainIdleTimeout  time.Duration `conf:"default:5m,env:GRAIN_IDLE_TIMEOUT,flag:grain-idle-timeout,help:an idle grain passivates after this long"`
	MaintenanceMode   bool          `conf:"default:false,env:MAINTENANCE_MODE,flag:maintenance-mode,help:read-only: the API refuses every change but logging in and out"`
	// MailSendPerSec paces each mailer's SMTP sends (a live setting).
	MailSendPerSec int `conf:"default:0,env:MAIL_SEND_PER_SEC,flag:mail-send-per-sec,help:most e-mails one mailer sends per second (0: as fast as the server takes them)"`

	// Request rates per client address (live): a burst at once, then so many per
	// minute. The defaults let 200 shoppers behind one address (a carrier NAT, a
	// load test) register, log in and check out together.
	RateRegisterPerMin int `conf:"default:300,env:RATE_REGISTER_PER_MIN,flag:rate-register-per-min,help:sign-ups per client address per minute"`
	RateRegisterBurst  int `conf:"default:300,env:RATE_REGISTER_BURST,flag:rate-register-burst,help:sign-ups one client address may make at once"`
	RateLoginPerMin    int `conf:"default:600,env:RATE_LOGIN_PER_MIN,flag:rate-login-per-min,help:logins per client address per minute"`
	RateLoginBurst     int `conf:"default:300,env:RATE_LOGIN_BURST,flag:rate-login-burst,help:logins one client address may make at once"`
	RateCheckoutPerMin int `conf:"default:1200,env:RATE_CHECKOUT_PER_MIN,flag:rate-checkout-per-min,help:checkouts per client address per minute"`
	RateCheckoutBurst  int `conf:"default:400,env:RATE_CHECKOUT_BURST,flag:rate-checkout-burst,help:checkouts one client address may make at once"`
	// Requests per account (live): every request a logged-in shopper makes, reads
	// and writes, counted in each edge's memory (a check costs no round trip; with
	// several edges an account gets this rate from each). Preference changes (each
	// one reaches every edge) and one-click unsubscribes (per client address) have
	// quotas of their own, counted where every edge sees them.
	RateAccountPerMin      int `conf:"default:600,env:RATE_ACCOUNT_PER_MIN,flag:rate-account-per-min,help:requests per logged-in account per minute (on each edge)"`
	RateAccountBurst       int `conf:"default:120,env:RATE_ACCOUNT_BURST,flag:rate-account-burst,help:requests one logged-in account may make at once (on each edge)"`
	RatePreferencesPerMin  int `conf:"default:10,env:RATE_PREFERENCES_PER_MIN,flag:rate-preferences-per-min,help:preference changes per account per minute"`
	RatePreferencesBurst   int `conf:"default:10,env:RATE_PREFERENCES_BURST,flag:rate-preferences-burst,help:preference changes one account may make at once"`
	RateUnsubscribePerMin  int `conf:"default:60,env:RATE_UNSUBSCRIBE_PER_MIN,flag:rate-unsubscribe-per-min,help:unsubscribe link requests per client address per minute"`
	RateUnsubscribeBurst   int `conf:"default:30,env:RATE_UNSUBSCRIBE_BURST,flag:rate-unsubscribe-burst,help:unsubscribe link requests one client address may make at once"`
	RateLoginAccountPerMin int `conf:"default:6,env:RATE_LOGIN_ACCOUNT_PER_MIN,flag:rate-login-account-per-min,help:logins per minute that an account under attack admits from addresses that never logged in to it"`
	// Failed logins (live): after so many in a row for one account from one
	// address, that address waits LoginLockout, doubled at each further failure up
	// to LoginLockoutMax; a success clears it.
	LoginLockoutFailures int           `conf:"default:10,env:LOGIN_LOCKOUT_FAILURES,flag:login-lockout-failures,help:failed logins in a row (one account, one address) that lock that address out of the account"`
	LoginLockout         time.Duration `conf:"default:1m,env:LOGIN_LOCKOUT,flag:login-lockout,help:first lock-out; each further failure doubles it"`
	LoginLockoutMax      time.Duration `conf:"default:15m,env:LOGIN_LOCKOUT_MAX,flag:login-lockout-max,help:longest lock-out"`
	// An account under attack from many addresses (live): once it has had
	// LoginAccountFailures failed logins from anywhere, with no hour between
	// them, an address (a /64 for IPv6) that never logged in to it gets
	// RateLoginAccountPerMin tries a minute, shared by all such addresses. An
	// address the owner logged in from keeps its way in: the owner is never locked out.
	LoginAccountFailures int `conf:"default:20,env:LOGIN_ACCOUNT_FAILURES,flag:login-account-failures,help:failed logins of one account from any address that put it under attack (see rate-login-account-per-min)"`
}

// Validate checks values that have a valid range: the live settings by the table
// that also checks their updates (liveSettings, liveRelations).
func (s Settings) Validate() error {
	return validateLive(s)
}

// Validate checks the dev configuration.
func (d Dev) Validate() error {
	return errors.Join(d.Settings.Validate(), d.Stores.validate(), d.HTTP.validate(), d.Accounts.validate(), d.ClusterNet.validate(),
		d.MailRetry.validate(), d.Outbox.validate())
}

// Validate checks the node configuration.
func (n Node) Validate() error {
	return errors.Join(n.Settings.Validate(), n.Stores.validate(), n.Stores.requireMySQL(), n.ClusterNet.validate(),
		n.Outbox.validate())
}

// Validate checks the mailer configuration.
func (m Mailer) Validate() error {
	var errs []error
	if len(m.UnsubscribeSecret) < 32 {
		errs = append(errs, errors.New("PHONESHOP_UNSUBSCRIBE_SECRET is required: the edges' secret of at least 32 characters"))
	}
	switch m.SMTPTLSPolicy {
	case "none", "opportunistic", "mandatory":
	default:
		errs = append(errs, fmt.Errorf("PHONESHOP_SMTP_TLS %q: want none, opportunistic or mandatory", m.SMTPTLSPolicy))
	}
	if m.MailPrefetch < 1 || m.MailDeliveryLimit < 1 {
		errs = append(errs, errors.New("PHONESHOP_MAIL_PREFETCH and PHONESHOP_MAIL_DELIVERY_LIMIT must be at least 1"))
	}
	if m.MySQLDSN == "" {
		errs = append(errs, errors.New("PHONESHOP_MYSQL_DSN is required: the mailer reads and records in the shop's store"))
	}
	return errors.Join(append(errs, m.Settings.Validate(), m.MailRetry.validate())...)
}

// Validate checks the edge configuration.
func (e Edge) Validate() error {
	var secret error
	if e.Accounts.UnsubscribeSecret == "" {
		// Every edge must read the links every other edge and mailer signs.
		secret = errors.New("PHONESHOP_UNSUBSCRIBE_SECRET is required: the same secret of at least 32 characters on every edge")
	}
	return errors.Join(e.Settings.Validate(), e.Stores.validate(), e.Stores.requireMySQL(), e.HTTP.validate(), e.Accounts.validate(), secret,
		e.ClusterNet.validate())
}

func (s Stores) validate() error {
	if s.GroupCommitMaxWrites < 1 {
		return fmt.Errorf("group commit max writes %d is under 1", s.GroupCommitMaxWrites)
	}
	return s.validateRedis()
}

// requireMySQL: members and edges on several processes share one store.
func (s Stores) requireMySQL() error {
	if s.MySQLDSN == "" {
		return errors.New("PHONESHOP_MYSQL_DSN is required: the processes of a cluster share one MySQL/MariaDB")
	}
	return nil
}

func (h HTTP) validate() error {
	var errs []error
	if h.BodyLimit < 1024 {
		errs = append(errs, fmt.Errorf("body limit %d is under 1024 bytes", h.BodyLimit))
	}
	if _, err := h.TrustedProxyPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if h.ClientIPv6Prefix < 32 || h.ClientIPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("PHONESHOP_CLIENT_IPV6_PREFIX=%d: want a prefix length from 32 to 128", h.ClientIPv6Prefix))
	}
	return errors.Join(errs...)
}

// TrustedProxyPrefixes reads TrustedProxies: addresses and CIDRs separated by
// commas (conf splits a list setting on ";", which works too).
func (h HTTP) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, entry := range h.TrustedProxies {
		for _, p := range strings.Split(entry, ",") {
			if strings.TrimSpace(p) == "" {
				continue
			}
			prefix, err := ParseTrustedProxy(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, prefix)
		}
	}
	return out, errors.Join(errs...)
}

func (a Accounts) validate() error {
	var errs []error
	if (a.AdminEmail == "") != (a.AdminPassword == "") {
		errs = append(errs, errors.New("set both PHONESHOP_ADMIN_EMAIL and PHONESHOP_ADMIN_PASSWORD, or neither"))
	}
	if a.PasswordHashers < 0 || a.PasswordQueue < 0 || a.PasswordMaxWait < 0 {
		errs = append(errs, errors.New("password hashers, queue and max wait must not be negative"))
	}
	if a.UnsubscribeSecret != "" && len(a.UnsubscribeSecret) < 32 {
		errs = append(errs, errors.New("PHONESHOP_UNSUBSCRIBE_SECRET must have at least 32 characters"))
	}
	return errors.Join(errs...)
}

// ParseTrustedProxy reads one entry of TrustedProxies: an IP address or a CIDR.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (s Stores) validateRedis() error {
	if (s.RedisTLS || s.RedisPassword != "" || s.RedisUser != "") && s.RedisAddr == "" {
		return errors.New("Redis credentials or TLS are set without PHONESHOP_REDIS_ADDR")
	}
	if s.RedisTLSCAFile != "" && !s.RedisTLS {
		return errors.New("PHONESHOP_REDIS_TLS_CA_FILE needs PHONESHOP_REDIS_TLS=true")
	}
	return nil
}

// ParseDev reads the dev configuration from defaults, the environment and args (the
// command line without the program name). On --help it returns ErrHelp and the
// usage text.
func ParseDev(args []string) (Dev, string, error) { return parse[Dev](args) }

// ParseNode reads the node configuration like ParseDev.
func ParseNode(args []string) (Node, string, error) { return parse[Node](args) }

// ParseEdge reads the edge configuration like ParseDev.
func ParseEdge(args []string) (Edge, string, error) { return parse[Edge](args) }

// ParseMailer reads the mailer configuration (see ParseDev).
func ParseMailer(args []string) (Mailer, string, error) { return parse[Mailer](args) }

// ParseMigrate reads the migrate configuration (see ParseDev).
func ParseMigrate(args []string) (Migrate, string, error) { return parse[Migrate](args) }

func parse[T interface{ Validate() error }](args []string) (T, string, error) {
	var cfg T
	help, err := parseArgs(args, &cfg)
	if err != nil {
		return cfg, help, err
	}
	return cfg, "", cfg.Validate()
}

// argsMu guards os.Args while conf, which reads only os.Args, parses given args.
var argsMu sync.Mutex

func parseArgs(args []string, cfg any) (string, error) {
	argsMu.Lock()
	defer argsMu.Unlock()
	saved := os.Args
	defer func() { os.Args = saved }()
	os.Args = append([]string{"phoneshop"}, args...)
	return conf.Parse(Prefix, cfg)
}

// String renders cfg (a pointer to a config struct) for the start-up log, secrets masked.
func String(cfg any) string {
	s, err := conf.String(cfg)
	if err != nil {
		return err.Error()
	}
	return s
}
