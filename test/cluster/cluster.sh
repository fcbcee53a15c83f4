#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the end-to-end
# tests and `make demo`: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet with containerd and runc, a CNI bridge, kube-proxy
# and CoreDNS; Argo's workflow-controller in a pod; MinIO, PostgreSQL and
# MariaDB on the node, and FerretDB (the MongoDB protocol on SQLite) for
# MongoDB, reachable from pods as Services.
#
#   test/cluster/cluster.sh up|down|status|env
#   test/cluster/cluster.sh import postgres minio   # more images of images.sh
#   test/cluster/cluster.sh kill-service minio|postgresql|mariadb [SIGNAL]   # faults, for test/chaos
#   test/cluster/cluster.sh start-service minio|postgresql|mariadb
#
# Binaries and images come from the cache (test/tools/build.sh and
# test/cluster/images.sh build them once). Every process is started in its own
# session and stopped by the PID recorded under $state/pids; `down` leaves no
# process, mount, link, route or iptables chain behind.
#
# Networking: a bridge (bflow0, 10.88.0.1/16) carries the pods and is the
# node's address; every component binds it or 127.0.0.1 with non-default
# ports, so nothing listens on the machine's own interface and nothing clashes
# with a second stack (the tests' envtest). Services are 10.96.0.0/16, routed
# onto the bridge so that an unproxied ClusterIP never leaves the machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${BACKFLOW_CACHE:-$HOME/.cache/backflow}
state=${BACKFLOW_CLUSTER_STATE:-/var/lib/backflow-cluster}
tools=$repo/test/tools/build.sh

bridge=bflow0
node_ip=10.88.0.1
node_name=backflow-node
pod_cidr=10.88.0.0/16
service_cidr=10.96.0.0/16
cluster_domain=cluster.local
apiserver_port=16443
etcd_port=23790
minio_port=29000
postgres_port=25432
mariadb_port=23306
mongodb_port=27018
mongodb_user=backflow
minio_user=backflow
minio_password=change-me-please # as in examples/storage-minio.yaml
db_password=backflow-db-secret

pki=$state/pki
logs=$state/logs
pids=$state/pids
kubeconfig=$state/admin.kubeconfig
containerd_sock=$state/containerd/containerd.sock

log() { echo "cluster: $*" >&2; }
die() {
	log "$*"
	exit 1
}

bin() { "$tools" "$1"; }

kubectl_() { "$(bin kubectl)" --kubeconfig "$kubeconfig" "$@"; }

ctr_() { ctr --address "$containerd_sock" --namespace k8s.io "$@"; }

# start NAME CMD...: runs CMD in its own session, logs to $logs/NAME.log and
# records its PID.
start() {
	local name=$1
	shift
	if running "$name"; then return; fi
	# Without the descriptors it inherited past stderr: a daemon that kept
	# `flock LOCK make up`'s lock descriptor would hold that lock for as long
	# as it runs.
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
		done
		exec setsid "$@" >"$logs/$name.log" 2>&1 </dev/null
	) &
	echo $! >"$pids/$name.pid"
}

running() {
	local pid
	pid=$(cat "$pids/$1.pid" 2>/dev/null) || return 1
	kill -0 "$pid" 2>/dev/null
}

# stop NAME: TERM, then KILL after 15 s.
stop() {
	local pid i
	pid=$(cat "$pids/$1.pid" 2>/dev/null) || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pids/$1.pid"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
	local what=$1 timeout=$2 deadline
	shift 2
	deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS > deadline)); then
			log "timed out after ${timeout}s waiting for $what"
			for f in "$logs"/*.log; do
				echo "--- $f (tail)" >&2
				tail -n 15 "$f" >&2
			done
			exit 1
		fi
		sleep 0.5
	done
}

# --- certificates -----------------------------------------------------------

# cert NAME SUBJECT [SANS]: a key and a certificate signed by the stack's CA.
cert() {
	local name=$1 subject=$2 sans=${3:-}
	[ -f "$pki/$name.crt" ] && return
	openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
	local ext=$pki/$name.ext
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=serverAuth,clientAuth"
		[ -n "$sans" ] && echo "subjectAltName=$sans"
	} >"$ext"
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
	rm -f "$pki/$name.csr" "$ext"
}

pki_up() {
	mkdir -p "$pki"
	if [ ! -f "$pki/ca.crt" ]; then
		openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -subj "/CN=backflow-local-ca" \
			-days 3650 -sha256 -out "$pki/ca.crt" 2>/dev/null
	fi
	cert apiserver "/CN=kube-apiserver" \
		"IP:$node_ip,IP:10.96.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$cluster_domain"
	cert admin "/O=system:masters/CN=backflow-admin"
	cert kubelet "/CN=$node_name" "IP:$node_ip,DNS:$node_name"
	if [ ! -f "$pki/sa.key" ]; then
		openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
		openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
	fi
	cat >"$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: backflow
  cluster:
    server: https://$node_ip:$apiserver_port
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: backflow
  context: {cluster: backflow, user: admin}
current-context: backflow
EOF
}

# --- network ----------------------------------------------------------------

network_up() {
	if ! ip link show "$bridge" >/dev/null 2>&1; then
		ip link add "$bridge" type bridge
		ip addr add "$node_ip/16" dev "$bridge"
	fi
	ip link set "$bridge" up
	ip route replace "$service_cidr" dev "$bridge" src "$node_ip"
	[ -f "$state/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward >"$state/ip_forward.orig"
	sysctl -qw net.ipv4.ip_forward=1
	modprobe br_netfilter 2>/dev/null || true
	[ -f /proc/sys/net/bridge/bridge-nf-call-iptables ] || die "br_netfilter is not loaded: Services cannot be reached from pods"
	sysctl -qw net.bridge.bridge-nf-call-iptables=1
	mkdir -p "$state/cni/net.d" "$state/cni/ipam"
	cat >"$state/cni/net.d/10-backflow.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "backflow",
  "plugins": [
    {
      "type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$state/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "rangeStart": "10.88.1.1", "rangeEnd": "10.88.255.254", "gateway": "$node_ip"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# --- control plane ----------------------------------------------------------

control_plane_up() {
	mkdir -p "$state/etcd"
	start etcd "$(bin etcd)" --name default --data-dir "$state/etcd" --unsafe-no-fsync \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
		--initial-cluster default=http://127.0.0.1:23800 --listen-metrics-urls http://127.0.0.1:23810
	start kube-apiserver "$(bin kube-apiserver)" --etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address "$node_ip" --advertise-address "$node_ip" --secure-port "$apiserver_port" \
		--service-cluster-ip-range "$service_cidr" \
		--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
		--service-account-issuer "https://kubernetes.default.svc.$cluster_domain" \
		--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
		--authorization-mode Node,RBAC --allow-privileged \
		--kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
		--kubelet-preferred-address-types InternalIP
	wait_for "the kube-apiserver" 90 kubectl_ get --raw /readyz
	start kube-controller-manager "$(bin kube-controller-manager)" --kubeconfig "$kubeconfig" \
		--authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 20257 --leader-elect=false \
		--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
		--use-service-account-credentials=false --cluster-cidr "$pod_cidr" --service-cluster-ip-range "$service_cidr"
	start kube-scheduler "$(bin kube-scheduler)" --kubeconfig "$kubeconfig" \
		--authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 20259 --leader-elect=false
}

# --- node -------------------------------------------------------------------

containerd_up() {
	mkdir -p "$state/containerd"
	# restrict_oom_score_adj: this machine lacks CAP_SYS_RESOURCE, so runc
	# cannot set a negative oom_score_adj and every sandbox would fail with
	# "can't get final child's PID from pipe: EOF".
	cat >"$state/containerd/config.toml" <<EOF
version = 2
root = "$state/containerd/root"
state = "$state/containerd/state"
[grpc]
  address = "$containerd_sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(image_ref pause)"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
EOF
	start containerd containerd --config "$state/containerd/config.toml"
	wait_for containerd 30 ctr --address "$containerd_sock" version
	import_images
}

# image_ref NAME: the reference of a stack image, as images.sh tags it.
image_ref() { "$here/images.sh" ref "$1"; }

# import_images [NAME...]: builds (once) and imports the stack's images, or
# the ones named.
import_images() {
	local name have tar names=("$@")
	[ ${#names[@]} -gt 0 ] || names=(pause argoexec workflow-controller clients receiver backflow)
	have=$(ctr_ images ls -q)
	for name in "${names[@]}"; do
		grep -qxF "$(image_ref "$name")" <<<"$have" && [ "$name" != backflow ] && continue
		tar=$("$here/images.sh" build "$name")
		ctr_ images import --no-unpack=false "$tar" >/dev/null
	done
}

kubelet_up() {
	mkdir -p "$state/kubelet"
	cat >"$state/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 20250
healthzBindAddress: 127.0.0.1
healthzPort: 20248
readOnlyPort: 0
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
clusterDNS: [$node_ip]
clusterDomain: $cluster_domain
resolvConf: /etc/resolv.conf
containerRuntimeEndpoint: unix://$containerd_sock
podCIDR: $pod_cidr
serializeImagePulls: false
# Nothing is evicted and no image is collected: the images cannot be pulled
# back, and the machine's disk is shared with everything else.
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
	start kubelet "$(bin kubelet)" --config "$state/kubelet/config.yaml" --kubeconfig "$kubeconfig" \
		--hostname-override "$node_name" --node-ip "$node_ip" --root-dir "$state/kubelet/root" \
		--cert-dir "$state/kubelet/pki"
	start kube-proxy "$(bin kube-proxy)" --kubeconfig "$kubeconfig" --hostname-override "$node_name" \
		--cluster-cidr "$pod_cidr" --proxy-mode iptables --conntrack-max-per-core 0 \
		--healthz-bind-address 127.0.0.1:20256 --metrics-bind-address 127.0.0.1:20249
	wait_for "the node to be Ready" 120 kubectl_ wait --for condition=Ready "node/$node_name" --timeout 1s
}

coredns_up() {
	mkdir -p "$state/coredns"
	cat >"$state/coredns/Corefile" <<EOF
.:53 {
    bind $node_ip
    errors
    kubernetes $cluster_domain in-addr.arpa {
        kubeconfig $kubeconfig backflow
        pods insecure
        fallthrough in-addr.arpa
    }
    forward . /etc/resolv.conf
    cache 5
}
EOF
	start coredns "$(bin coredns)" -conf "$state/coredns/Corefile"
	# The kubelet's DNS address must answer before pods that look up names
	# start.
	wait_for CoreDNS 30 bash -c "exec 3<>/dev/udp/$node_ip/53"
}

# --- services on the node -----------------------------------------------------

services_up() {
	minio_start
	postgres_up
	mariadb_up
	ferretdb_up
	minio_wait
	# The examples' bucket (examples/storage-minio.yaml).
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$minio_user:$minio_password" "http://$node_ip:$minio_port/backups")
	[[ $code == 200 || $code == 409 ]] || die "creating the bucket 'backups' in MinIO: HTTP $code"
	kubectl_ apply -f - >/dev/null <<EOF
$(external_service minio minio 9000 "$minio_port")
$(external_service databases postgres 5432 "$postgres_port")
$(external_service databases mariadb 3306 "$mariadb_port")
$(external_service databases mongodb 27017 "$mongodb_port")
EOF
}

minio_start() {
	mkdir -p "$state/minio"
	MINIO_ROOT_USER=$minio_user MINIO_ROOT_PASSWORD=$minio_password MINIO_BROWSER=off \
		start minio "$(bin minio)" server --quiet --address "$node_ip:$minio_port" "$state/minio"
}

minio_wait() { wait_for MinIO 60 curl -fsS "http://$node_ip:$minio_port/minio/health/live"; }

# service_kill NAME SIGNAL: for the fault suite, stops a server on the node
# (minio, postgresql, mariadb) with a signal and waits until it is gone.
# PostgreSQL's postmaster and every one of its children get the signal, as
# when the machine kills them all.
service_kill() {
	local name=$1 signal=$2 pid pids_of i
	case $name in
	minio | mariadb) pid=$(cat "$pids/$name.pid" 2>/dev/null) || die "$name is not running" ;;
	postgresql) pid=$(head -1 "$state/postgresql/postmaster.pid" 2>/dev/null) || die "PostgreSQL is not running" ;;
	*) die "service_kill: unknown server $name (minio, postgresql, mariadb)" ;;
	esac
	pids_of=$pid
	[ "$name" = postgresql ] && pids_of="$(pgrep -P "$pid" | tr '\n' ' ')$pid"
	# shellcheck disable=SC2086 # a list of PIDs
	kill "-$signal" $pids_of 2>/dev/null || true
	for i in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) still runs 30 s after SIG$signal"
	[ "$name" = postgresql ] || rm -f "$pids/$name.pid"
	log "$name (pid $pid) stopped by SIG$signal"
}

# service_start NAME: starts a server of the node again after service_kill
# and waits until it answers.
service_start() {
	case $1 in
	minio)
		minio_start
		minio_wait
		;;
	postgresql) postgres_up ;;
	mariadb) mariadb_up ;;
	*) die "service_start: unknown server $1 (minio, postgresql, mariadb)" ;;
	esac
	log "$1 started"
}

# external_service NAMESPACE NAME PORT NODE_PORT: a Service whose endpoint is
# a server on the node, so pods reach it by its DNS name.
external_service() {
	cat <<EOF
---
apiVersion: v1
kind: Namespace
metadata: {name: $1}
---
apiVersion: v1
kind: Service
metadata: {name: $2, namespace: $1}
spec:
  ports: [{name: main, port: $3, targetPort: $4}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $2-node
  namespace: $1
  labels: {kubernetes.io/service-name: $2}
addressType: IPv4
ports: [{name: main, port: $4}]
endpoints: [{addresses: [$node_ip]}]
EOF
}

postgres_up() {
	local bindir data=$state/postgresql
	bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	if [ ! -f "$data/PG_VERSION" ]; then
		mkdir -p "$data"
		chown postgres "$data"
		echo "$db_password" >"$state/pgpass.tmp"
		chown postgres "$state/pgpass.tmp"
		runuser -u postgres -- "$bindir/initdb" -D "$data" -U postgres --pwfile "$state/pgpass.tmp" -A scram-sha-256 >/dev/null
		rm -f "$state/pgpass.tmp"
		echo "host all all 0.0.0.0/0 scram-sha-256" >>"$data/pg_hba.conf"
	fi
	if ! runuser -u postgres -- "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		touch "$logs/postgresql.log"
		chown postgres "$logs/postgresql.log"
		runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -l "$logs/postgresql.log" -w start \
			-o "-c listen_addresses=$node_ip -c port=$postgres_port -c unix_socket_directories=$data -c fsync=off" >/dev/null
	fi
}

mariadb_up() {
	local data=$state/mariadb fresh=""
	if [ ! -d "$data/mysql" ]; then
		mkdir -p "$data"
		mariadb-install-db --no-defaults --datadir="$data" --user=root --auth-root-authentication-method=normal >"$logs/mariadb-install.log" 2>&1
		fresh=1
	fi
	start mariadb mariadbd --no-defaults --datadir="$data" --user=root --bind-address="$node_ip" --port="$mariadb_port" \
		--socket="$data/mysqld.sock" --pid-file="$data/mysqld.pid" --skip-name-resolve --innodb-flush-log-at-trx-commit=0
	wait_for MariaDB 60 mariadb-admin --no-defaults --socket="$data/mysqld.sock" -uroot status
	if [ -n "$fresh" ]; then
		mariadb --no-defaults --socket="$data/mysqld.sock" -uroot -e \
			"CREATE USER 'root'@'%' IDENTIFIED BY '$db_password'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
	fi
}

# ferretdb_up starts FerretDB with its SQLite data in the state directory and
# a user in admin (FerretDB's own authentication, made at first start).
ferretdb_up() {
	mkdir -p "$state/ferretdb/data"
	start ferretdb "$(bin ferretdb)" --handler=sqlite --sqlite-url="file:$state/ferretdb/data/" --state-dir="$state/ferretdb" \
		--listen-addr="$node_ip:$mongodb_port" --debug-addr=127.0.0.1:0 --telemetry=disable --log-level=WARN \
		--test-enable-new-auth --setup-database=admin --setup-username="$mongodb_user" --setup-password="$db_password"
	wait_for FerretDB 60 bash -c "exec 3<>/dev/tcp/$node_ip/$mongodb_port"
}

# --- Argo -------------------------------------------------------------------

argo_up() {
	local argo_dir
	argo_dir=$(cd "$repo" && go list -m -f '{{.Dir}}' github.com/argoproj/argo-workflows/v3)
	kubectl_ apply --server-side -k "$argo_dir/manifests/base/crds/minimal" >/dev/null
	sed -e "s|@EXECUTOR_IMAGE@|$(image_ref argoexec)|" -e "s|@CONTROLLER_IMAGE@|$(image_ref workflow-controller)|" \
		"$here/argo.yaml" | kubectl_ apply -f - >/dev/null
	wait_for "Argo's workflow-controller" 120 kubectl_ -n argo rollout status deployment/workflow-controller --timeout 1s
}

# --- up / down / status -----------------------------------------------------

up() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (it creates a bridge, iptables rules and mounts)"
	local t0=$SECONDS
	"$tools" etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns minio ferretdb >/dev/null
	mkdir -p "$logs" "$pids"
	pki_up
	network_up
	control_plane_up
	containerd_up
	kubelet_up
	coredns_up
	services_up
	argo_up
	write_env
	log "up in $((SECONDS - t0))s; export KUBECONFIG=$kubeconfig"
}

write_env() {
	cat >"$state/env" <<EOF
KUBECONFIG=$kubeconfig
BACKFLOW_CLUSTER_NODE_IP=$node_ip
BACKFLOW_CLUSTER_MINIO=http://$node_ip:$minio_port
BACKFLOW_CLUSTER_MINIO_USER=$minio_user
BACKFLOW_CLUSTER_MINIO_PASSWORD=$minio_password
BACKFLOW_CLUSTER_POSTGRES_PORT=$postgres_port
BACKFLOW_CLUSTER_MARIADB_PORT=$mariadb_port
BACKFLOW_CLUSTER_MONGODB_PORT=$mongodb_port
BACKFLOW_CLUSTER_MONGODB_USER=$mongodb_user
BACKFLOW_CLUSTER_DB_PASSWORD=$db_password
BACKFLOW_CLUSTER_CONTAINERD=$containerd_sock
BACKFLOW_CLUSTER_IMAGE_BACKFLOW=$(image_ref backflow)
BACKFLOW_CLUSTER_IMAGE_CLIENTS=$(image_ref clients)
BACKFLOW_CLUSTER_IMAGE_RECEIVER=$(image_ref receiver)
EOF
}

down() {
	[ -d "$state" ] || return 0
	mkdir -p "$pids"
	# Pods go while the kubelet is up, so that it tears their sandboxes,
	# networks and volumes down itself; with the controller manager and the
	# scheduler stopped first, nothing replaces them.
	local c
	for c in kube-controller-manager kube-scheduler; do stop "$c"; done
	if running kube-apiserver && running kubelet; then
		kubectl_ delete pods --all --all-namespaces --grace-period 1 --wait=false >/dev/null 2>&1 || true
		wait_for "the node's pods to be gone" 60 no_sandboxes
	fi
	for c in kube-proxy kubelet coredns; do stop "$c"; done
	if running containerd; then
		local id
		for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
		sleep 0.5
		for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
		for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
	fi
	for c in kube-apiserver etcd containerd minio mariadb ferretdb; do stop "$c"; done
	# Shims outlive containerd by design; ours are the ones serving our socket.
	pkill -KILL -f "containerd-shim-runc-v2 .*-address $containerd_sock" 2>/dev/null || true
	local bindir
	bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	if [ -f "$state/postgresql/postmaster.pid" ]; then
		runuser -u postgres -- "$bindir/pg_ctl" -D "$state/postgresql" -m fast -w stop >/dev/null 2>&1 || true
	fi
	# The kubelet bind-mounts its root onto itself; volumes and overlay
	# rootfs mounts can be left when a process died.
	local m
	for m in $(findmnt -rn -o TARGET | grep -F "$state/" | sort -r); do umount -l "$m" 2>/dev/null || true; done
	for m in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$m" 2>/dev/null || true; done
	for m in $(findmnt -rn -o TARGET | grep '^/run/netns/cni-' | sort -r); do umount -l "$m" 2>/dev/null || true; done
	ip route del "$service_cidr" dev "$bridge" 2>/dev/null || true
	ip link delete "$bridge" 2>/dev/null || true
	if [ -f "$state/ip_forward.orig" ]; then
		sysctl -qw "net.ipv4.ip_forward=$(cat "$state/ip_forward.orig")"
		rm -f "$state/ip_forward.orig"
	fi
	delete_chains iptables
	delete_chains ip6tables
	# Everything but the image store, which makes the next `up` fast.
	find "$state" -mindepth 1 -maxdepth 1 ! -name containerd -exec rm -rf {} +
	find "$state/containerd" -mindepth 1 -maxdepth 1 ! -name root -exec rm -rf {} + 2>/dev/null || true
	log "down"
}

no_sandboxes() {
	[ -z "$(kubectl_ get pods --all-namespaces -o name 2>/dev/null)" ] && [ -z "$(ctr_ containers ls -q 2>/dev/null)" ]
}

# delete_chains IPTABLES: removes kube-proxy's KUBE-* and the CNI plugins'
# CNI-* chains, and the jumps into them from the built-in chains.
delete_chains() {
	local cmd=$1 table rule chain
	command -v "$cmd" >/dev/null || return 0
	for table in filter nat mangle; do
		"$cmd" -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j (KUBE|CNI)-' | grep -vE '^-A (KUBE|CNI)-' |
			while read -r rule; do
				# iptables -S quotes as a shell does (comments have spaces).
				eval "$cmd -t $table ${rule/-A/-D}" 2>/dev/null || true
			done || true
		for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/ {print $2}'); do
			"$cmd" -t "$table" -F "$chain" 2>/dev/null || true
		done
		for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/ {print $2}'); do
			"$cmd" -t "$table" -X "$chain" 2>/dev/null || true
		done
	done
}

status() {
	local c rc=0
	for c in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns minio mariadb ferretdb; do
		if running "$c"; then
			printf '%-24s running (pid %s)\n' "$c" "$(cat "$pids/$c.pid")"
		else
			printf '%-24s stopped\n' "$c"
			rc=1
		fi
	done
	if [ $rc -eq 0 ]; then
		kubectl_ get nodes -o wide
		kubectl_ -n argo get deployment workflow-controller
	fi
	return $rc
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
env) cat "$state/env" ;;
import)
	shift
	import_images "$@"
	;;
kill-service) service_kill "$2" "${3:-KILL}" ;;
start-service) service_start "$2" ;;
*)
	echo "usage: $0 up|down|status|env|import IMAGE...|kill-service NAME [SIGNAL]|start-service NAME" >&2
	exit 2
	;;
esac
