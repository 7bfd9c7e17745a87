#!/usr/bin/env bash
# scripts/testservices.sh -- COMMAND...: run COMMAND (make test's go test passes) with
# MariaDB, Redis and RabbitMQ answering, and exit with COMMAND's status.
#
# For each server: when it answers at the address the tests are configured with
# (PHONESHOP_TEST_MYSQL_DSN, PHONESHOP_TEST_REDIS_ADDR, PHONESHOP_TEST_RABBITMQ_URL,
# else the defaults of internal/dbtest and internal/rabbittest), the tests use it as
# they always did. When it does not, this script starts a private one from Debian's
# packages (apt-get installs a missing one) under tmp/testservices/<name>/, on free
# loopback ports, points the variables at it, and at exit (COMMAND done or failed,
# Ctrl-C, SIGTERM) stops it and deletes its data.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
base=$root/tmp/testservices
# Debian's RabbitMQ scripts proper: /usr/sbin/rabbitmq* are wrappers that, run as
# root, switch to the rabbitmq user, whose HOME (and so Erlang cookie) is the
# machine's broker's.
rabbit_bin=/usr/lib/rabbitmq/bin

usage() { echo "usage: $0 -- COMMAND [ARG...]" >&2; exit 2; }
[[ ${1:-} == -- ]] && shift
(($#)) || usage

say() { echo "testservices: $*" >&2; }
join() { local list; list=$(printf ', %s' "$@"); echo "${list#, }"; } # a, b, c
die() { say "$*"; exit 1; }

# program NAME: its path; mariadbd is in /usr/sbin, which a user's PATH may lack.
program() { command -v "$1" 2>/dev/null || { [[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1"; }; }

# answers HOST PORT: something accepts TCP connections there (bash's /dev/tcp; the
# timeout bounds a connect to a host that drops packets).
answers() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

# split_hostport HOST:PORT DEFAULT_PORT: sets host and port ([::1]:3306 too).
split_hostport() {
	local addr=$1
	if [[ $addr =~ ^\[(.*)\](:([0-9]+))?$ ]]; then
		host=${BASH_REMATCH[1]} port=${BASH_REMATCH[3]:-$2}
	elif [[ $addr == *:* ]]; then
		host=${addr%:*} port=${addr##*:}
	else
		host=$addr port=$2
	fi
	host=${host:-127.0.0.1}
}

# alive PID: the process runs. Our own children stay zombies until waited for,
# and kill -0 succeeds on a zombie, so /proc's state is read instead.
alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	read -r _ _ state _ < "/proc/$1/stat" 2>/dev/null || return 1
	[[ $state != Z ]]
}

# free_port VAR: a port nothing listens on, taken at random below the kernel's
# ephemeral range (32768 and up on Linux) rather than asked of the kernel (bind to
# port 0): the tests open many outgoing connections, any of which may take an
# ephemeral port between our pick and the server's bind; a port below the range
# can only be taken by another listener. Distinct from the ports picked before.
taken=()
free_port() {
	local low p _
	read -r low _ < /proc/sys/net/ipv4/ip_local_port_range
	((low > 21000)) || low=32768
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % (low - 20000)))
		[[ " ${taken[*]} " == *" $p "* ]] && continue
		answers 127.0.0.1 "$p" && continue
		taken+=("$p")
		printf -v "$1" %s "$p"
		return 0
	done
	die "found no free port in 20000-$((low - 1))"
}

# --- what we start, and how it is stopped -----------------------------------------

servers=() # the pid of each server started: the leader of a session of its own
helpers=() # started processes to stop after the servers (RabbitMQ's epmd)
names=()   # the servers started, for the last message
dirs=()    # their folders, deleted at the end (another run may use the others)

# terminate PID...: SIGTERM each (a graceful shutdown), wait up to 60 s for all,
# then SIGKILL whatever is left of their sessions (setsid made each pid its
# session's and process group's leader, so -pid reaches the children too).
terminate() {
	(($#)) || return 0
	local pid deadline=$((SECONDS + 60))
	kill -TERM "$@" 2>/dev/null
	for pid; do
		while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
	done
	for pid; do
		kill -KILL -- "-$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	return 0
}

cleanup() {
	local status=$?
	set +e
	trap '' INT TERM HUP # a second Ctrl-C must not leave the servers running
	if ((${#servers[@]} + ${#helpers[@]} + ${#dirs[@]})); then
		local t=$SECONDS
		terminate "${servers[@]}"
		terminate "${helpers[@]}"
		rm -rf "${dirs[@]}"
		rmdir "$base" 2>/dev/null
		say "stopped private $(join "${names[@]}") and deleted $(join "${dirs[@]#"$root"/}") in $((SECONDS - t))s"
	fi
	exit "$status"
}
trap cleanup EXIT
# Bash runs a trap only once the foreground command has ended: Ctrl-C (or timeout,
# or make) signals the whole process group, so COMMAND ends at once; a signal sent
# to this script alone waits for COMMAND to finish.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# launch NAME LOG COMMAND...: start COMMAND in the background, in a session of its
# own (so that Ctrl-C reaches only COMMAND, and cleanup stops the servers in order),
# output to LOG. Its pid is in $! and in tmp/testservices/NAME/pids.
launch() {
	local name=$1 log=$2
	shift 2
	setsid "$@" > "$log" 2>&1 < /dev/null &
	echo $! >> "$base/$name/pids"
}

# fresh_dir NAME: an empty tmp/testservices/NAME. A run killed with SIGKILL (no
# trap) leaves its folder, and maybe its servers, behind: a folder whose servers
# still run is refused rather than deleted under them.
fresh_dir() {
	local dir=$base/$1 pid
	if [[ -f $dir/pids ]]; then
		while read -r pid; do
			alive "$pid" || continue
			die "${dir#"$root"/} is in use by process $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" | tr -s ' ' | cut -c1-100)), left by an earlier run: stop it (kill -- -$pid), or delete the folder if it is not that"
		done < "$dir/pids"
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	dirs+=("$dir")
}

# fail WHAT LOG...: say why a server is not up, with the end of its logs, and exit
# (the EXIT trap stops what was started).
fail() {
	local log
	say "$1"
	shift
	for log; do
		[[ -s $log ]] || continue
		say "the end of ${log#"$root"/}:"
		tail -n 30 "$log" >&2
	done
	exit 1
}

# await NAME PID HOST PORT SECONDS LOG...: until HOST:PORT answers, for at most
# SECONDS; fails at once if PID exits.
await() {
	local name=$1 pid=$2 host=$3 port=$4 limit=$5
	shift 5
	local deadline=$((SECONDS + limit))
	until answers "$host" "$port"; do
		alive "$pid" || fail "private $name exited before it answered on $host:$port" "$@"
		((SECONDS < deadline)) || fail "private $name did not answer on $host:$port within ${limit}s" "$@"
		sleep 0.2
	done
}

# --- the configured addresses --------------------------------------------------------

# MariaDB: a go-sql-driver DSN, [user[:password]@][net[(addr)]]/dbname[?params];
# the address is between the last '@' and the last '/' (as the driver parses it).
mysql_dsn=${PHONESHOP_TEST_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
mysql_where=${mysql_dsn%/*}
[[ $mysql_where == *@* ]] && mysql_where=${mysql_where##*@}
mysql_need=
if [[ $mysql_where =~ ^unix ]]; then
	# A socket bash cannot probe: the tests were pointed there on purpose.
	say "using MariaDB at $mysql_where (a socket, not probed)"
else
	[[ $mysql_where =~ ^tcp\((.*)\)$ ]] && mysql_addr=${BASH_REMATCH[1]} || mysql_addr=127.0.0.1:3306
	split_hostport "$mysql_addr" 3306
	if answers "$host" "$port"; then say "using MariaDB on $host:$port"; else mysql_need="$host:$port"; fi
fi

redis_addr=${PHONESHOP_TEST_REDIS_ADDR:-127.0.0.1:6379}
split_hostport "$redis_addr" 6379
redis_need=
if answers "$host" "$port"; then say "using Redis on $host:$port"; else redis_need="$host:$port"; fi

# RabbitMQ: amqp[s]://[user[:password]@]host[:port][/vhost]
rabbit_url=${PHONESHOP_TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}
rabbit_where=${rabbit_url#*://}
rabbit_where=${rabbit_where%%/*}
rabbit_where=${rabbit_where##*@}
[[ $rabbit_url == amqps:* ]] && rabbit_port=5671 || rabbit_port=5672
split_hostport "$rabbit_where" "$rabbit_port"
rabbit_need=
if answers "$host" "$port"; then say "using RabbitMQ on $host:$port"; else rabbit_need="$host:$port"; fi

[[ -n $mysql_need$redis_need$rabbit_need ]] || {
	"$@"
	exit
}

# --- install what is missing (the Makefile does the same for Chromium and protoc) ---

packages=()
[[ -n $mysql_need ]] && ! { program mariadbd && program mariadb-install-db; } > /dev/null && packages+=(mariadb-server)
[[ -n $redis_need ]] && ! program redis-server > /dev/null && packages+=(redis-server)
[[ -n $rabbit_need && ! -x $rabbit_bin/rabbitmq-server ]] && packages+=(rabbitmq-server)
if ((${#packages[@]})); then
	say "installing ${packages[*]} (Debian packages, once)"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"; } >&2 ||
		die "could not install ${packages[*]}: install them, or start the servers (see README.md)"
fi
[[ -z $mysql_need ]] || { program mariadbd && program mariadb-install-db; } > /dev/null || die "mariadbd or mariadb-install-db is missing"
[[ -z $redis_need ]] || program redis-server > /dev/null || die "redis-server is missing"
[[ -z $rabbit_need || -x $rabbit_bin/rabbitmq-server ]] || die "$rabbit_bin/rabbitmq-server is missing"

mkdir -p "$base"

# --- RabbitMQ, first: it takes longest to boot ----------------------------------------
#
# A node of its own in every respect: node name, AMQP and distribution ports, its
# own epmd (on a port of its own too: the node would otherwise start the
# machine-wide `epmd -daemon`, which outlives the run), data, logs, no plugins (the
# management and prometheus plugins would listen on fixed ports), and a private
# Erlang cookie in a private HOME. tmp/testservices/rabbitmq/rabbitmqctl runs
# rabbitmqctl on that node, with that HOME: the tests make their vhosts and close
# connections with it (PHONESHOP_TEST_RABBITMQCTL).
if [[ -n $rabbit_need ]]; then
	dir=$base/rabbitmq
	fresh_dir rabbitmq
	free_port rabbit_amqp
	free_port rabbit_dist
	free_port rabbit_epmd
	node=phoneshop-test@localhost
	mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/home/.erlang.cookie")
	chmod 400 "$dir/home/.erlang.cookie"
	printf 'listeners.tcp.local = 127.0.0.1:%s\n' "$rabbit_amqp" > "$dir/rabbitmq.conf"
	echo '[].' > "$dir/enabled_plugins"
	# Stands in for /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node.
	echo '# the private broker of scripts/testservices.sh reads its settings from ./env' > "$dir/rabbitmq-env.conf"
	{
		echo "# the environment of the private broker and of its rabbitmqctl"
		printf 'export %s=%q\n' \
			HOME "$dir/home" \
			ERL_EPMD_PORT "$rabbit_epmd" \
			ERL_EPMD_ADDRESS 127.0.0.1 \
			RABBITMQ_NODENAME "$node" \
			RABBITMQ_DIST_PORT "$rabbit_dist" \
			RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS '-kernel inet_dist_use_interface {127,0,0,1}' \
			RABBITMQ_CTL_DIST_PORT_MIN 0 \
			RABBITMQ_CTL_DIST_PORT_MAX 0 \
			RABBITMQ_CONF_ENV_FILE "$dir/rabbitmq-env.conf" \
			RABBITMQ_CONFIG_FILE "$dir/rabbitmq.conf" \
			RABBITMQ_ADVANCED_CONFIG_FILE "$dir/advanced.config" \
			RABBITMQ_ENABLED_PLUGINS_FILE "$dir/enabled_plugins" \
			RABBITMQ_MNESIA_BASE "$dir/mnesia" \
			RABBITMQ_LOG_BASE "$dir/log"
	} > "$dir/env"
	# (RABBITMQ_CTL_DIST_PORT_*=0: rabbitmqctl's own distribution port is any free
	# one, not one of the 11 the machine's rabbitmqctl calls share.)
	{
		echo '#!/bin/sh'
		echo '# rabbitmqctl on the private broker of scripts/testservices.sh'
		printf '. %q\n' "$dir/env"
		printf 'exec %q -n %q "$@"\n' "$rabbit_bin/rabbitmqctl" "$node"
	} > "$dir/rabbitmqctl"
	chmod +x "$dir/rabbitmqctl"

	epmd=$(program epmd) || die "epmd (Debian's erlang-base) is missing"
	launch rabbitmq "$dir/epmd.log" "$epmd" -port "$rabbit_epmd" -address 127.0.0.1
	helpers+=($!)
	# The node must find its epmd up, or it starts a daemon of its own.
	await "RabbitMQ's epmd" $! 127.0.0.1 "$rabbit_epmd" 10 "$dir/epmd.log"
	launch rabbitmq "$dir/server.log" sh -c '. "$1" && exec "$2"' _ "$dir/env" "$rabbit_bin/rabbitmq-server"
	rabbit_pid=$!
	servers+=("$rabbit_pid")
	names+=(RabbitMQ)
fi

# --- Redis: no persistence, its files in its folder -------------------------------------
if [[ -n $redis_need ]]; then
	dir=$base/redis
	fresh_dir redis
	free_port redis_port
	launch redis "$dir/redis.log" "$(program redis-server)" --port "$redis_port" --bind 127.0.0.1 \
		--dir "$dir" --save '' --appendonly no --daemonize no
	redis_pid=$!
	servers+=("$redis_pid")
	names+=(Redis)
fi

# --- MariaDB: root without a password over TCP, as the CI machine's -------------------
#
# Run as the current user (as root, mariadbd wants --user=root). --no-defaults keeps
# /etc/mysql out; the settings that matter are Debian's server defaults, as on the
# CI machine: utf8mb4 and no host name lookups.
if [[ -n $mysql_need ]]; then
	dir=$base/mariadb
	fresh_dir mariadb
	free_port mysql_port
	as_user=()
	((EUID == 0)) && as_user=(--user=root)
	# --auth-root-authentication-method=normal: root@localhost, @127.0.0.1 and @::1
	# with an empty password, not unix_socket authentication.
	"$(program mariadb-install-db)" --no-defaults --datadir="$dir/data" "${as_user[@]}" \
		--auth-root-authentication-method=normal --skip-test-db > "$dir/install.log" 2>&1 ||
		fail "mariadb-install-db failed" "$dir/install.log"
	launch mariadb "$dir/mariadbd.log" "$(program mariadbd)" --no-defaults "${as_user[@]}" \
		--datadir="$dir/data" --socket="$dir/mariadbd.sock" --pid-file="$dir/mariadbd.pid" \
		--port="$mysql_port" --bind-address=127.0.0.1 --skip-name-resolve \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
	mysql_pid=$!
	servers+=("$mysql_pid")
	names+=(MariaDB)
fi

# --- wait for each, then point the tests at it ------------------------------------------

if [[ -n $mysql_need ]]; then
	dir=$base/mariadb
	await MariaDB "$mysql_pid" 127.0.0.1 "$mysql_port" 60 "$dir/mariadbd.log"
	if client=$(program mariadb); then # the tests' login: root, no password, over TCP
		"$client" --no-defaults --protocol=tcp -h127.0.0.1 -P"$mysql_port" -uroot -e 'SELECT 1' > /dev/null 2> "$dir/login.log" ||
			fail "private MariaDB refuses root without a password" "$dir/login.log" "$dir/mariadbd.log"
	fi
	export PHONESHOP_TEST_MYSQL_DSN="root@tcp(127.0.0.1:$mysql_port)/"
	say "started private MariaDB on 127.0.0.1:$mysql_port (${dir#"$root"/}, up ${SECONDS}s after the start): nothing answered on $mysql_need"
fi

if [[ -n $redis_need ]]; then
	dir=$base/redis
	await Redis "$redis_pid" 127.0.0.1 "$redis_port" 20 "$dir/redis.log"
	export PHONESHOP_TEST_REDIS_ADDR="127.0.0.1:$redis_port"
	say "started private Redis on 127.0.0.1:$redis_port (${dir#"$root"/}, up ${SECONDS}s after the start): nothing answered on $redis_need"
fi

if [[ -n $rabbit_need ]]; then
	dir=$base/rabbitmq
	# The AMQP listener opens at the end of the boot; then rabbitmqctl must reach the
	# node (cookie, epmd and node name right) before a test relies on it.
	await RabbitMQ "$rabbit_pid" 127.0.0.1 "$rabbit_amqp" 120 "$dir/server.log" "$dir/log/$node.log"
	timeout 60 "$dir/rabbitmqctl" await_startup > "$dir/ctl.log" 2>&1 ||
		fail "rabbitmqctl cannot reach the private RabbitMQ" "$dir/ctl.log" "$dir/log/$node.log"
	export PHONESHOP_TEST_RABBITMQ_URL="amqp://guest:guest@127.0.0.1:$rabbit_amqp/"
	export PHONESHOP_TEST_RABBITMQCTL="$dir/rabbitmqctl"
	say "started private RabbitMQ on 127.0.0.1:$rabbit_amqp (${dir#"$root"/}, up ${SECONDS}s after the start): nothing answered on $rabbit_need"
fi

# Not exec: the EXIT trap stops the servers once COMMAND is done; its status is ours.
set +e
"$@"
status=$?
set -e
exit "$status"
