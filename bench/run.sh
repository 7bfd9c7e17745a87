#!/usr/bin/env bash
# make bench: the group-commit and mail Go benchmarks, then the flash-sale report of
# cmd/loadgen against `phoneshop dev` on MariaDB and Redis. Needs what `make test`
# needs: MariaDB on 127.0.0.1:3306 (root, no password) and Redis on 127.0.0.1:6379, or
# PHONESHOP_BENCH_MYSQL (a DSN without database) and PHONESHOP_BENCH_REDIS; and the
# redis-server binary for the durable Redis peer (without it the report says that
# peer was not measured).
#
# Besides the shop, it starts a private redis-server on a free port with every write
# fsynced (appendonly yes, appendfsync always; no snapshots; its files under
# tmp/bench/redis-durable) for the durable peer of the Redis way, and gives loadgen
# the shop's pid and pprof address (PHONESHOP_DEBUG_ADDR on a free port) for the CPU
# per process and the CPU profile of the flash sale. Both stop when this script ends.
#
# It writes docs/benchmarks/{group-commit.txt,mail.txt,flash-sale.md,flash-sale.json};
# the flash sale's raw CPU profile goes to tmp/bench/flash-cpu.pprof (not committed).
# LOADGEN_ARGS adds loadgen flags, e.g. shorter phases while working on the report:
#   LOADGEN_ARGS='--duration 2s --flash-shoppers 500 --sweep-levels 16;64 --sweep-orders 300 --memory-carts 0'
set -euo pipefail
cd "$(dirname "$0")/.."
mysql_base=${PHONESHOP_BENCH_MYSQL:-root@tcp(127.0.0.1:3306)/}
redis_addr=${PHONESHOP_BENCH_REDIS:-127.0.0.1:6379}
port=${PHONESHOP_BENCH_PORT:-8085}
run=$(date +%s)
mkdir -p tmp/bench docs/benchmarks

# free_port prints a loopback port that nothing listens on.
free_port() {
	local p
	for p in $(shuf -i 20000-29999 -n 100); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port in 20000-29999" >&2
	return 1
}

# What this script starts, stopped on exit (the shop, the durable Redis).
started=()
stop_started() {
	local p
	for p in "${started[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${started[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_started EXIT

echo "== group commit: durable sales on one hot SKU, grants on one campaign (go test -bench)"
go test -run '^$' -bench 'HotSKU|CampaignGrants' -benchtime 5000x -v ./shop/ 2>&1 | grep -E '^(Benchmark|    bench_test)' | tee docs/benchmarks/group-commit.txt

echo "== mail: a campaign to 10,000 shoppers, launch to the last mail in Mailpit (go test -bench)"
go test -run '^$' -bench ClusterCampaignMail -benchtime 1x ./cmd/phoneshop/ 2>&1 | grep -E '^Benchmark' | tee docs/benchmarks/mail.txt

go build -o bin/phoneshop ./cmd/phoneshop
go build -o bin/loadgen ./cmd/loadgen

if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
	echo "something already answers on port $port: stop it or set PHONESHOP_BENCH_PORT"; exit 1
fi
durable_args=()
if command -v redis-server >/dev/null; then
	durable_port=$(free_port)
	echo "== durable Redis (appendfsync always) on 127.0.0.1:$durable_port (log: tmp/bench/redis-durable.log)"
	rm -rf tmp/bench/redis-durable && mkdir -p tmp/bench/redis-durable
	redis-server --bind 127.0.0.1 --port "$durable_port" --dir tmp/bench/redis-durable \
		--appendonly yes --appendfsync always --save '' --daemonize no > tmp/bench/redis-durable.log 2>&1 &
	started+=($!)
	for _ in $(seq 1 50); do
		redis-cli -h 127.0.0.1 -p "$durable_port" ping >/dev/null 2>&1 && break
		sleep 0.2
	done
	redis-cli -h 127.0.0.1 -p "$durable_port" ping >/dev/null 2>&1 || { echo "the durable redis-server did not start; see tmp/bench/redis-durable.log"; exit 1; }
	durable_args=(--durable-redis-addr "127.0.0.1:$durable_port")
else
	echo "== no redis-server binary: the durable Redis peer is not measured (the report says so)"
fi

debug_addr="127.0.0.1:$(free_port)"
echo "== phoneshop dev on MariaDB and Redis, port $port, pprof on $debug_addr (log: tmp/bench/shop.log)"
# Registration is set-up, not measured: argon2id is made cheap so that thousands of
# shoppers register in seconds. Every shopper of the load generator comes from one
# address, so the per-address rate limits are lifted (they are tested at their
# shipped values by make test). The access log is off (warn level). pprof serves the
# flash sale's CPU profile to loadgen. The shop runs as a node does: every order's
# event is written to the outbox in its transaction, and the mail is a mailer's work
# (measured above, mail.txt), not done on the 2 cores the checkouts are measured on
# (PHONESHOP_DEV_MAIL=false; BENCH_DEV_MAIL=true runs dev's in-process mailer too).
PHONESHOP_MYSQL_DSN="${mysql_base}phoneshop_bench_${run}" \
PHONESHOP_REDIS_ADDR="$redis_addr" PHONESHOP_REDIS_PREFIX="phoneshop_bench_${run}:" \
PHONESHOP_HTTP_ADDR="127.0.0.1:$port" PHONESHOP_DATA_DIR="tmp/bench/data" \
PHONESHOP_ADMIN_EMAIL=admin@example.com PHONESHOP_ADMIN_PASSWORD='bench admin password' \
PHONESHOP_PASSWORD_MEMORY_KIB=1024 PHONESHOP_PASSWORD_ITERATIONS=1 \
PHONESHOP_RATE_REGISTER_PER_MIN=1000000 PHONESHOP_RATE_REGISTER_BURST=1000000 \
PHONESHOP_RATE_LOGIN_PER_MIN=1000000 PHONESHOP_RATE_LOGIN_BURST=1000000 \
PHONESHOP_RATE_CHECKOUT_PER_MIN=1000000 PHONESHOP_RATE_CHECKOUT_BURST=1000000 \
PHONESHOP_RATE_ACCOUNT_PER_MIN=1000000 PHONESHOP_RATE_ACCOUNT_BURST=1000000 \
PHONESHOP_RESERVATION_TTL=10s PHONESHOP_LOG_LEVEL=warn PHONESHOP_DEBUG_ADDR="$debug_addr" PHONESHOP_DEV_MAIL="${BENCH_DEV_MAIL:-false}" \
	bin/phoneshop dev > tmp/bench/shop.log 2>&1 &
shop=$!
started+=("$shop")
for _ in $(seq 1 120); do
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 $shop 2>/dev/null || { echo "phoneshop exited; see tmp/bench/shop.log"; exit 1; }
	sleep 0.5
done
kill -0 $shop 2>/dev/null || { echo "phoneshop exited; see tmp/bench/shop.log"; exit 1; }

echo "== loadgen"
bin/loadgen --shop-url "http://127.0.0.1:$port" \
	--mysql-dsn "${mysql_base}phoneshop_bench_baseline_${run}" --redis-addr "$redis_addr" --redis-prefix "phoneshop_bench_baseline_${run}:" \
	--extra "redis=$(redis-cli -h "${redis_addr%:*}" -p "${redis_addr##*:}" info server 2>/dev/null | grep -m1 redis_version | tr -d '\r' || echo unknown)" \
	--extra "shop=phoneshop dev, 1 member, MariaDB + Redis, group commit on, PHONESHOP_DEV_MAIL=${BENCH_DEV_MAIL:-false}" --flash-shoppers 6000 \
	--shop-pid "$shop" --shop-debug-addr "$debug_addr" --profile-out tmp/bench/flash-cpu.pprof \
	"${durable_args[@]}" \
	--out docs/benchmarks/flash-sale ${LOADGEN_ARGS:-}
