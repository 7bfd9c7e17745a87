#!/usr/bin/env bash
# make cluster / make cluster-down: Consul (HTTP 127.0.0.1:8500), 3 nodes and 2 edges
# (127.0.0.1:8081, :8082) on this machine, against the running MariaDB and Redis, in
# the background. Logs and one pid file per process under tmp/cluster/.
# Settings come from the environment like `make run`'s (PHONESHOP_ADMIN_EMAIL, ...);
# PHONESHOP_MYSQL_DSN and PHONESHOP_REDIS_ADDR default to the local servers.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=tmp/cluster
mkdir -p "$dir"

alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

start() { # name, command...
	local name=$1; shift
	setsid nohup "$@" > "$dir/$name.log" 2>&1 < /dev/null &
	echo $! > "$dir/$name.pid"
}

wait_for() { # name, url
	for _ in $(seq 1 240); do
		curl -fsS "$2" >/dev/null 2>&1 && return 0
		alive "$1" || { echo "$1 exited; its log ($dir/$1.log) ends with:"; tail -20 "$dir/$1.log"; return 1; }
		sleep 0.5
	done
	echo "$1 did not answer $2 within 120s"; return 1
}

up() {
	for p in consul mailpit node1 node2 node3 edge1 edge2 mailer; do
		if alive $p; then echo "the cluster is already running ($p): make cluster-down first"; exit 1; fi
	done
	export PHONESHOP_MYSQL_DSN=${PHONESHOP_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/phoneshop}
	export PHONESHOP_REDIS_ADDR=${PHONESHOP_REDIS_ADDR:-127.0.0.1:6379}
	export PHONESHOP_CONSUL_ADDR=127.0.0.1:8500
	# Every edge signs and reads unsubscribe links with the same secret: one is made
	# on the first start and kept in tmp/cluster, unless the environment gives one.
	if [ -z "${PHONESHOP_UNSUBSCRIBE_SECRET:-}" ]; then
		[ -s "$dir/unsubscribe.secret" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/unsubscribe.secret")
		PHONESHOP_UNSUBSCRIBE_SECRET=$(cat "$dir/unsubscribe.secret")
		export PHONESHOP_UNSUBSCRIBE_SECRET
	fi

	export PHONESHOP_RABBITMQ_URL=${PHONESHOP_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}

	start consul bin/consul agent -dev -bind 127.0.0.1 -client 127.0.0.1 -log-level warn \
		-hcl 'ports { http = 8500 dns = -1 grpc = -1 grpc_tls = -1 }'
	start mailpit bin/mailpit --smtp 127.0.0.1:1025 --listen 127.0.0.1:8025 --database "$dir/mailpit.db" \
		--smtp-disable-rdns --disable-version-check --quiet
	wait_for consul http://127.0.0.1:8500/v1/status/leader
	wait_for mailpit http://127.0.0.1:8025/readyz
	for i in 1 2 3; do start node$i bin/phoneshop node; done
	for i in 1 2; do
		PHONESHOP_HTTP_ADDR=127.0.0.1:808$i PHONESHOP_HEALTH_ADDR=127.0.0.1:809$i start edge$i bin/phoneshop edge
	done
	# The shipped SMTP TLS policy is mandatory; this Mailpit has no certificate, so
	# the mailer is told, explicitly, to speak plain SMTP to it on the loopback.
	PHONESHOP_SMTP_HOST=127.0.0.1 PHONESHOP_SMTP_PORT=1025 PHONESHOP_SMTP_TLS=none \
		PHONESHOP_PUBLIC_URL=${PHONESHOP_PUBLIC_URL:-http://127.0.0.1:8081} PHONESHOP_HEALTH_ADDR=127.0.0.1:8093 \
		start mailer bin/phoneshop mailer
	for i in 1 2; do wait_for edge$i http://127.0.0.1:808$i/readyz; done
	wait_for mailer http://127.0.0.1:8093/readyz
	echo "cluster up: edges http://127.0.0.1:8081 and http://127.0.0.1:8082, Consul http://127.0.0.1:8500"
	echo "mail: a mailer sends to Mailpit, whose inbox is http://127.0.0.1:8025"
	echo "edge metrics: http://127.0.0.1:8091/metrics and http://127.0.0.1:8092/metrics"
	echo "logs and pids in $dir/; stop it with: make cluster-down"
}

down() {
	for p in mailer edge2 edge1 node3 node2 node1 mailpit consul; do
		[ -f "$dir/$p.pid" ] || continue
		pid=$(cat "$dir/$p.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
			kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		fi
		rm -f "$dir/$p.pid"
	done
	echo "cluster down"
}

case "${1:-}" in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down"; exit 2 ;;
esac
