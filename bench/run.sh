#!/usr/bin/env bash
# make bench: the group-commit Go benchmark, then the flash-sale report of cmd/loadgen
# against `phoneshop dev` on MariaDB and Redis. Needs what `make test` needs: MariaDB on
# 127.0.0.1:3306 (root, no password) and Redis on 127.0.0.1:6379, or
# PHONESHOP_BENCH_MYSQL (a DSN without database) and PHONESHOP_BENCH_REDIS.
set -euo pipefail
cd "$(dirname "$0")/.."
mysql_base=${PHONESHOP_BENCH_MYSQL:-root@tcp(127.0.0.1:3306)/}
redis_addr=${PHONESHOP_BENCH_REDIS:-127.0.0.1:6379}
port=${PHONESHOP_BENCH_PORT:-8085}
run=$(date +%s)
mkdir -p tmp/bench docs/benchmarks

echo "== group commit: durable reservations on one hot SKU, grants on one campaign (go test -bench)"
go test -run '^$' -bench 'HotSKU|CampaignGrants' -benchtime 5000x -v ./shop/ 2>&1 | grep -E '^(Benchmark|    bench_test)' | tee docs/benchmarks/group-commit.txt

echo "== mail: a campaign to 10,000 shoppers, launch to the last mail in Mailpit (go test -bench)"
go test -run '^$' -bench ClusterCampaignMail -benchtime 1x ./cmd/phoneshop/ 2>&1 | grep -E '^Benchmark' | tee docs/benchmarks/mail.txt

go build -o bin/phoneshop ./cmd/phoneshop
go build -o bin/loadgen ./cmd/loadgen

if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
	echo "something already answers on port $port: stop it or set PHONESHOP_BENCH_PORT"; exit 1
fi
echo "== phoneshop dev on MariaDB and Redis, port $port (log: tmp/bench/shop.log)"
# Registration is set-up, not measured: argon2id is made cheap so that thousands of
# shoppers register in seconds. Every shopper of the load generator comes from one
# address, so the per-address rate limits are lifted (they are tested at their
# shipped values by make test). The access log is off (warn level).
PHONESHOP_MYSQL_DSN="${mysql_base}phoneshop_bench_${run}" \
PHONESHOP_REDIS_ADDR="$redis_addr" PHONESHOP_REDIS_PREFIX="phoneshop_bench_${run}:" \
PHONESHOP_HTTP_ADDR="127.0.0.1:$port" PHONESHOP_DATA_DIR="tmp/bench/data" \
PHONESHOP_ADMIN_EMAIL=admin@example.com PHONESHOP_ADMIN_PASSWORD='bench admin password' \
PHONESHOP_PASSWORD_MEMORY_KIB=1024 PHONESHOP_PASSWORD_ITERATIONS=1 \
PHONESHOP_RATE_REGISTER_PER_MIN=1000000 PHONESHOP_RATE_REGISTER_BURST=1000000 \
PHONESHOP_RATE_LOGIN_PER_MIN=1000000 PHONESHOP_RATE_LOGIN_BURST=1000000 \
PHONESHOP_RATE_CHECKOUT_PER_MIN=1000000 PHONESHOP_RATE_CHECKOUT_BURST=1000000 \
PHONESHOP_RESERVATION_TTL=10s PHONESHOP_LOG_LEVEL=warn \
	bin/phoneshop dev > tmp/bench/shop.log 2>&1 &
shop=$!
trap 'kill -TERM $shop 2>/dev/null; wait $shop 2>/dev/null || true' EXIT
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
	--extra "shop=phoneshop dev, 1 member, MariaDB + Redis, group commit on" \
	--out docs/benchmarks/flash-sale ${LOADGEN_ARGS:-}
