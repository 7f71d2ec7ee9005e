#!/usr/bin/env bash
# `make run`: a local Bosun cluster in the foreground, running the demo app.
#
# As root it installs what is missing (containerd, runc, CNI plugins,
# iptables, iproute2) with apt-get, then:
#   - makes the cluster's network: a host bridge (bosun0, 10.199.0.1/24) and
#     one network namespace per node (bosun0-1, bosun0-2, ...), each joined
#     to the bridge by a veth with the node's address (10.199.0.2, ...), a
#     pod CIDR per node (10.199.1.0/24, 10.199.2.0/24, ...), host routes to
#     every pod CIDR and routes between the nodes. A single node is a
#     namespace too: one way to run for any NODES, and the host's own
#     forwarding and iptables are left alone,
#   - starts a private containerd (own root, state, socket and config under
#     .run/containerd; CRI plugin disabled), shared by the nodes, each in a
#     containerd namespace of its own (the node's network namespace name),
#   - bin/devregistry: the demo images (examples/hello, v1 and v2) built
#     in-process and served by an OCI registry on the bridge, 10.199.0.1:5001,
#   - the apiserver on the bridge address (embedded etcd in .run/data, TLS
#     and client certificates from `bosun certs init .run/pki`, Node and RBAC
#     authorization, audit log in .run/logs/audit.log), the scheduler,
#     controller, health-checker and service-proxy, each with its own
#     certificate,
#   - one node-agent per node, inside the node's network namespace (state in
#     .run/node-agent/NODE, container logs in .run/logs/pods, pods on the CNI
#     bridge of the node's namespace, pulling from the registry over plain
#     HTTP),
#   - with an Envoy binary on PATH, Envoy on the host from the
#     service-proxy's bootstrap; the demo's NodePort is then load-balanced
#     on 127.0.0.1:30500,
# writes the CLI config so that `bin/bosun get pods` works in another
# terminal, applies examples/hello.yaml, waits until its three pods are
# Running and Ready and prints how to reach them, and the proxyless gRPC demo
# (bin/hello-client, xds:///hello.default:50051 through the service-proxy).
# Ctrl-C deletes the pods on the nodes (the Deployment stays stored), stops
# the node-agents, removes whatever containers, network namespaces (the
# nodes' and the pods'), veths, the bridge with its routes, iptables rules,
# cgroups and mounts under .run remain, stops containerd and the rest.
# Without root it runs the control plane only, on 127.0.0.1, and the demo's
# pods stay Pending.
#
# Environment (for tests and for running next to another cluster):
#   NODES               number of nodes, 1 or more (default 1; `make run NODES=3`)
#   BOSUN_RUN_DIR       state, logs and sockets (default .run)
#   BOSUN_PORT_OFFSET   added to every port: apiserver 6443 and 6480,
#                       registry 5001, scheduler 10251, controller 10252,
#                       health-checker 10253, service-proxy 18000,
#                       node-agents 10250, Envoy admin 9901 and outbound
#                       15001 (default 0; not the demo's node ports)
#   BOSUN_NODE          node name (default the host name, lower-cased); with
#                       NODES > 1 the nodes are NAME-1, NAME-2, ...
#   BOSUN_CIDR          the cluster's range, /23 or larger with room for
#                       NODES + 1 /24s: the first for the bridge and the
#                       nodes, the next for each node's pods (default
#                       10.199.0.0/16)
#   BOSUN_BRIDGE        the host bridge, and the prefix of the nodes' network
#                       and containerd namespaces (default bosun0, at most
#                       12 characters)
#   BOSUN_CONFIG        CLI config written (default ~/.bosun/config)
#   BOSUN_BIN_DIR       where the binaries are (default bin, which make run builds)
#   BOSUN_NO_INSTALL=1  never run apt-get; name what is missing and stop
#
# `scripts/run.sh --clean` removes what a killed make run left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bin=${BOSUN_BIN_DIR:-$top/bin}
run=${BOSUN_RUN_DIR:-$top/.run}
mkdir -p "$run/logs" "$run/pids"
run=$(cd "$run" && pwd)
config=${BOSUN_CONFIG:-$HOME/.bosun/config}
marker="# written by Bosun's make run"
off=${BOSUN_PORT_OFFSET:-0}
port() { echo $(($1 + off)); }
node=${BOSUN_NODE:-$(hostname | tr '[:upper:]' '[:lower:]')}
nodes=${NODES:-1}
cidr=${BOSUN_CIDR:-10.199.0.0/16}
bridge=${BOSUN_BRIDGE:-bosun0}
ctrd_dir=$run/containerd
ctrd_sock=$ctrd_dir/containerd.sock
agent_base=$run/node-agent
cni_results=/var/lib/cni/results
netname=bosun-$bridge
# The comment on the iptables rules of the host that this run adds.
ipt_comment="make run $netname"

log() { echo "make run: $*"; }
fail() { log "$*"; exit 1; }

# --- the cluster's addresses -------------------------------------------------
[[ $nodes =~ ^[1-9][0-9]?$ ]] || fail "NODES=$nodes: want a number of nodes from 1 to 99"
[[ $bridge =~ ^[a-zA-Z][a-zA-Z0-9_]{0,11}$ ]] ||
  fail "BOSUN_BRIDGE=$bridge: want a letter and at most 11 more letters, digits or _ (the veths are BRIDGEvN)"
ip2int() { local IFS=.; local -a o; read -r -a o <<<"$1"; echo $(((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3])); }
int2ip() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }
valid_ip() { [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] &&
  ((BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256 && BASH_REMATCH[3] < 256 && BASH_REMATCH[4] < 256)); }
cidr_ip=${cidr%/*} cidr_len=${cidr#*/}
{ [[ $cidr == */* ]] && valid_ip "$cidr_ip" && [[ $cidr_len =~ ^[0-9]+$ ]] && ((cidr_len >= 8 && cidr_len <= 23)); } ||
  fail "BOSUN_CIDR=$cidr: want an IPv4 range from /8 to /23, e.g. 10.199.0.0/16"
cidr_base=$(ip2int "$cidr_ip")
((cidr_base & ((1 << (32 - cidr_len)) - 1))) && fail "BOSUN_CIDR=$cidr: host bits are set; did you mean $(int2ip $((cidr_base >> (32 - cidr_len) << (32 - cidr_len))))/$cidr_len?"
(((1 << (24 - cidr_len)) > nodes)) ||
  fail "BOSUN_CIDR=$cidr holds $((1 << (24 - cidr_len))) /24s; $nodes nodes need $((nodes + 1)) (one for the nodes, one per node for its pods)"
host_ip=$(int2ip $((cidr_base + 1)))
declare -a node_name node_ip pod_cidr node_ns
for ((i = 1; i <= nodes; i++)); do
  if ((nodes == 1)); then node_name[i]=$node; else node_name[i]=$node-$i; fi
  node_ip[i]=$(int2ip $((cidr_base + 1 + i)))
  pod_cidr[i]=$(int2ip $((cidr_base + 256 * i)))/24
  node_ns[i]=$bridge-$i # the node's network namespace and containerd namespace
done

# --- what the node needs -----------------------------------------------------
with_node=true
if [ "$(id -u)" != 0 ]; then
  with_node=false
  log "not root: running the control plane only; the demo's pods stay Pending (run as root for containers)"
fi
cni_dir=""
for d in /usr/lib/cni /opt/cni/bin; do
  if [ -x "$d/bridge" ] && [ -x "$d/host-local" ] && [ -x "$d/portmap" ] && [ -x "$d/loopback" ]; then cni_dir=$d; break; fi
done
missing() {
  local m=()
  command -v containerd >/dev/null || m+=(containerd)
  command -v runc >/dev/null || m+=(runc)
  command -v iptables >/dev/null || m+=(iptables)
  [ -n "$cni_dir" ] || m+=(containernetworking-plugins)
  command -v ip >/dev/null || m+=(iproute2)
  command -v nsenter >/dev/null || m+=(util-linux)
  echo "${m[@]}"
}
if $with_node && [ "${1:-}" != --clean ]; then
  need=$(missing)
  if [ -n "$need" ]; then
    if [ "${BOSUN_NO_INSTALL:-}" != 1 ] && command -v apt-get >/dev/null; then
      log "installing $need"
      DEBIAN_FRONTEND=noninteractive apt-get update -q >"$run/logs/apt.log" 2>&1 || true
      # shellcheck disable=SC2086
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >>"$run/logs/apt.log" 2>&1 ||
        { log "apt-get install -y $need failed; see $run/logs/apt.log"; exit 1; }
      for d in /usr/lib/cni /opt/cni/bin; do [ -x "$d/bridge" ] && { cni_dir=$d; break; }; done
      need=$(missing)
    fi
    if [ -n "$need" ]; then
      log "missing: $need; install them with: apt-get install -y $need"
      exit 1
    fi
  fi
  if [ ! -x "$bin/devregistry" ] || [ ! -x "$bin/node-agent" ]; then
    log "bin/devregistry or bin/node-agent is missing: run 'make build' (make run does)"
    exit 1
  fi
fi

# --- stopping ----------------------------------------------------------------
declare -A pid=()
order=()
# Every process runs in a session of its own, so that Ctrl-C reaches only
# this script, which then stops them in order.
start_cmd() { # name, command, args...
  local name=$1; shift
  setsid "$@" >"$run/logs/$name.log" 2>&1 </dev/null &
  pid[$name]=$!
  echo "${pid[$name]}" >"$run/pids/$name"
  order+=("$name")
}
start() { local name=$1; shift; start_cmd "$name" "$bin/$name" "$@"; } # a binary of bin/
# running reports whether process $1 exists and is not a zombie (processes
# of a killed make run wait for an init that may be slow to reap them).
running() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }
# It does not `wait` for the process: bash's wait can block for good on a
# child that was killed from outside (as a test kills the node-agent), and
# the zombies go with the script.
stop_one() { # name: SIGTERM, then SIGKILL after 10 s
  local p=${pid[$1]:-}
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 50); do running "$p" || break; sleep 0.2; done
  kill -KILL "$p" 2>/dev/null || true
  for _ in $(seq 25); do running "$p" || break; sleep 0.2; done
  unset "pid[$1]"
  rm -f "$run/pids/$1"
}
alive() { [ -n "${pid[$1]:-}" ] && running "${pid[$1]}"; }
# all_alive exits, naming the log to read, when a started process has exited.
all_alive() {
  local name
  for name in "${order[@]}" ${pid[containerd]:+containerd}; do
    alive "$name" || { log "$name exited; see $run/logs/$name.log"; tail -5 "$run/logs/$name.log"; exit 1; }
  done
}
ctr_() { ctr -a "$ctrd_sock" "$@"; }

# our_netns prints the nodes' network namespaces of this cluster (BRIDGE-N),
# of this run and of earlier ones with more nodes.
our_netns() { ip netns list 2>/dev/null | awk '{ print $1 }' | { grep -E "^$bridge-[0-9]+\$" || true; }; }

# cleanup_runtime removes what the nodes and their pods may have left on the
# machine: tasks and containers (while containerd runs), the pods' network
# namespaces and CNI results, the nodes' network namespaces (with their
# bridges, veths, routes and iptables chains), the host bridge (with the
# routes through it) and the host's iptables rules of this run.
cleanup_runtime() {
  local ns t c f
  if [ -S "$ctrd_sock" ] && ctr_ version >/dev/null 2>&1; then
    for ns in $(ctr_ namespaces ls -q 2>/dev/null | { grep -E "^$bridge-[0-9]+\$" || true; }); do
      for t in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do
        ctr_ -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
      done
      for t in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do
        for _ in $(seq 25); do ctr_ -n "$ns" tasks rm -f "$t" >/dev/null 2>&1 && break; sleep 0.2; done
      done
      for c in $(ctr_ -n "$ns" containers ls -q 2>/dev/null); do ctr_ -n "$ns" containers rm "$c" >/dev/null 2>&1 || true; done
    done
  fi
  for f in "$agent_base"/*/netns/*; do
    [ -e "$f" ] || continue
    umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null || true
    rm -f "$f"
  done
  if [ -d "$cni_results" ]; then
    for f in "$cni_results/$netname-"*; do
      [ -e "$f" ] || continue
      local id=${f#"$cni_results/$netname-"}; id=${id%-eth0}
      rm -f "$f" "$cni_results/cni-loopback-$id-lo"
    done
  fi
  for ns in $(our_netns); do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
  if command -v iptables >/dev/null; then
    { iptables -S FORWARD 2>/dev/null || true; } | { grep -F -- "--comment \"$ipt_comment\"" || true; } | while read -r line; do
      # shellcheck disable=SC2086
      eval iptables ${line/-A/-D} 2>/dev/null || true
    done
  fi
}

# remove_cgroups removes the cgroups containerd made for the nodes'
# namespaces, which outlive their containers (only empty ones can go), and
# runc's state folders of those namespaces, when empty.
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/"$bridge"-[0-9]* /sys/fs/cgroup/"$bridge"-[0-9]*; do
    [[ -d $d && ${d##*/} =~ ^$bridge-[0-9]+$ ]] && { find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
  done
  for d in /run/containerd/runc/"$bridge"-[0-9]*; do
    [[ -d $d && ${d##*/} =~ ^$bridge-[0-9]+$ ]] && { rmdir "$d" 2>/dev/null || true; }
  done
  return 0
}

# unmount_run unmounts whatever is still mounted under the run directory,
# deepest first.
unmount_run() {
  awk -v p="$run/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

# node_pods prints "NAMESPACE NAME" of every pod bound to the nodes named.
node_pods() {
  local n
  for n in "$@"; do
    "$bin/bosun" get pods -A --field-selector "spec.nodeName=$n" 2>/dev/null | awk 'NR > 1 { print $1, $2 }'
  done
}
# delete_pods deletes the pods bound to the nodes named, with the pods' own
# grace period, or at once with --now.
delete_pods() {
  local grace=(--grace-period -1)
  [ "$1" = --now ] && { grace=(--grace-period 0); shift; }
  node_pods "$@" | while read -r ns name; do
    "$bin/bosun" delete -n "$ns" pod "$name" "${grace[@]}" --ignore-not-found >/dev/null 2>&1 || true
  done
}

stopping=false
stop() {
  # A second Ctrl-C must not cut the clean-up short.
  trap - EXIT
  trap 'log "still stopping, please wait"' INT TERM
  $stopping && return
  stopping=true
  echo
  log "stopping..."
  # No new pods: the scheduler and controller go first.
  for s in scheduler controller health-checker envoy; do stop_one "$s"; done
  local agents=false i
  for ((i = 1; i <= nodes; i++)); do alive "node-agent-$i" && agents=true; done
  if $agents && alive apiserver; then
    log "deleting the pods on ${node_name[*]} (the Deployment stays; the next make run starts them again)"
    delete_pods "${node_name[@]}"
    for _ in $(seq 120); do [ -z "$(node_pods "${node_name[@]}")" ] && break; sleep 0.5; done
  fi
  if alive apiserver && [ -n "$(node_pods "${node_name[@]}")" ]; then
    # A node-agent is gone or too slow: the objects go at once, and their
    # containers and networking are removed below.
    log "the node-agents did not stop all the pods; removing them directly"
    delete_pods --now "${node_name[@]}"
  fi
  for ((i = 1; i <= nodes; i++)); do stop_one "node-agent-$i"; done
  if $with_node; then
    cleanup_runtime
    stop_one containerd
    unmount_run
    remove_cgroups
  fi
  for ((i=${#order[@]}-1; i>=0; i--)); do stop_one "${order[$i]}"; done
  trap - INT TERM
  log "stopped; logs are in $run/logs, state in $run/data (remove $run to start afresh)"
}

# `scripts/run.sh --clean` stops and removes what a make run that was killed
# (SIGKILL) left behind, from the process ids in .run/pids.
if [ "${1:-}" = --clean ]; then
  for f in "$run"/pids/*; do
    [ -e "$f" ] || continue
    p=$(cat "$f")
    if { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF -e "$run" -e "$bin/"; then
      pid[$(basename "$f")]=$p
    else
      rm -f "$f"
    fi
  done
  for name in "${!pid[@]}"; do [[ $name == node-agent-* || $name == envoy ]] && stop_one "$name"; done
  if $with_node; then cleanup_runtime; fi
  stop_one containerd
  if $with_node; then unmount_run; remove_cgroups; fi
  for name in "${!pid[@]}"; do stop_one "$name"; done
  log "cleaned up after the make run of $run"
  exit 0
fi

# routed_overlap prints the first route of the host that overlaps the
# cluster's range.
routed_overlap() {
  local dst len base m
  ip -4 route show table all | awk '
    $1 ~ /^(local|broadcast|unreachable|blackhole|prohibit|throw|unicast|multicast|anycast|nat)$/ { print $2; next }
    $1 != "default" { print $1 }' | while read -r dst; do
    len=32; [[ $dst == */* ]] && len=${dst#*/}
    valid_ip "${dst%/*}" || continue
    base=$(ip2int "${dst%/*}")
    m=$cidr_len; ((len < m)) && m=$len
    if (((base >> (32 - m)) == (cidr_base >> (32 - m)))); then echo "$dst"; return; fi
  done
}

# setup_network makes the host bridge with the host's address, and per node a
# network namespace joined to it by a veth, with the node's address, IP
# forwarding, a default route to the host and routes to the other nodes' pod
# CIDRs; the host gets a route to every pod CIDR.
setup_network() {
  local i j ns veth
  ip link add "$bridge" type bridge
  ip addr add "$host_ip/24" dev "$bridge"
  ip link set "$bridge" up
  # With br_netfilter loaded, traffic between the nodes crosses the host's
  # FORWARD chain; let it pass when that chain's policy would not.
  if [ "$(iptables -S FORWARD 2>/dev/null | head -1)" != "-P FORWARD ACCEPT" ]; then
    iptables -I FORWARD -i "$bridge" -o "$bridge" -m comment --comment "$ipt_comment" -j ACCEPT
  fi
  for ((i = 1; i <= nodes; i++)); do
    ns=${node_ns[i]} veth=${bridge}v$i
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$bridge" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "${node_ip[i]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$host_ip"
    nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1
    ip route add "${pod_cidr[i]}" via "${node_ip[i]}" dev "$bridge"
  done
  for ((i = 1; i <= nodes; i++)); do
    for ((j = 1; j <= nodes; j++)); do
      ((i == j)) || ip -n "${node_ns[i]}" route add "${pod_cidr[j]}" via "${node_ip[j]}" dev eth0
    done
  done
}

listen_ip=127.0.0.1
if $with_node; then
  if [ -e "$run/pids/containerd" ] && running "$(cat "$run/pids/containerd")"; then
    log "containerd of another make run is running (pid $(cat "$run/pids/containerd")) with $run:"
    log "stop that make run, or run 'scripts/run.sh --clean' if it was killed"
    exit 1
  fi
  # Whatever a run that was killed left behind.
  cleanup_runtime
  unmount_run
  clash=$(routed_overlap)
  [ -z "$clash" ] || fail "the cluster's range $cidr overlaps the route to $clash on this machine; set BOSUN_CIDR to a free range"
  listen_ip=$host_ip
fi

trap 'stop; exit 0' INT TERM
trap stop EXIT

# --- the network, containerd and the registry --------------------------------
if $with_node; then
  log "making the network: bridge $bridge ($host_ip/24), node namespaces ${node_ns[*]}"
  setup_network

  mkdir -p "$ctrd_dir"
  cat >"$ctrd_dir/config.toml" <<EOF
version = 2
root = "$ctrd_dir/root"
state = "$ctrd_dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd_sock"
[ttrpc]
  address = "$ctrd_sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
  setsid containerd --config "$ctrd_dir/config.toml" >"$run/logs/containerd.log" 2>&1 </dev/null &
  pid[containerd]=$!
  echo "${pid[containerd]}" >"$run/pids/containerd"
  for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done
  ctr_ version >/dev/null 2>&1 ||
    { log "containerd did not start; see $run/logs/containerd.log"; tail -5 "$run/logs/containerd.log"; exit 1; }
fi
api=$listen_ip:$(port 6443)
registry=$listen_ip:$(port 5001)
if $with_node; then
  log "building the demo images and starting the registry on $registry"
  start devregistry -listen "$registry" -root "$top"
  for _ in $(seq 600); do grep -q '^ready' "$run/logs/devregistry.log" && break; alive devregistry || break; sleep 0.5; done
  grep -q '^ready' "$run/logs/devregistry.log" ||
    { log "the registry did not start; see $run/logs/devregistry.log"; tail -5 "$run/logs/devregistry.log"; exit 1; }
fi

# --- the control plane -------------------------------------------------------
pki=$run/pki
node_flags=()
for ((i = 1; i <= nodes; i++)); do node_flags+=(--node "${node_name[i]}"); done
"$bin/bosun" certs init "$pki" "${node_flags[@]}" --host "$listen_ip" >/dev/null
ca=$pki/ca.crt
start apiserver --data-dir "$run/data" --listen "$api" --http-listen "127.0.0.1:$(port 6480)" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --tls-ca-file "$ca" \
  --client-ca-file "$ca" --cluster-signing-cert-file "$ca" --cluster-signing-key-file "$pki/ca.key" \
  --audit-log-path "$run/logs/audit.log"

if [ ! -e "$config" ] || grep -qF "$marker" "$config"; then
  mkdir -p "$(dirname "$config")"
  printf '%s\nserver: %s\nca: %s\ncert: %s\nkey: %s\nnamespace: default\n' \
    "$marker" "$api" "$ca" "$pki/admin.crt" "$pki/admin.key" >"$config"
  log "CLI config written to $config"
else
  log "keeping your $config; use BOSUN_CONFIG=$pki/admin.conf (server $api, admin certificate)"
  config=$pki/admin.conf
fi
export BOSUN_CONFIG=$config

for _ in $(seq 150); do "$bin/bosun" get ns >/dev/null 2>&1 && break; alive apiserver || break; sleep 0.2; done
"$bin/bosun" get ns >/dev/null 2>&1 || { log "apiserver did not start; see $run/logs/apiserver.log"; tail -5 "$run/logs/apiserver.log"; exit 1; }

# The Nodes of the last make run go, with the pods still bound to them
# (their containers went above): each node-agent registers its Node afresh,
# so that a Node is Ready only once its node-agent runs, and the Nodes of a
# run with other NODES do not linger.
if [ -e "$run/nodes" ]; then
  while read -r old; do
    delete_pods --now "$old"
    "$bin/bosun" delete node "$old" --ignore-not-found >/dev/null 2>&1 || true
  done <"$run/nodes"
fi
printf '%s\n' "${node_name[@]}" >"$run/nodes"

# start_service starts a control-plane service with its certificate, which
# also serves its own listener over mutual TLS.
start_service() { # name, port, extra flags...
  local svc=$1 listen=127.0.0.1:$(port "$2"); shift 2
  start "$svc" --apiserver "$api" --apiserver-ca-file "$ca" --listen "$listen" \
    --client-cert-file "$pki/bosun-$svc.crt" --client-key-file "$pki/bosun-$svc.key" \
    --tls-cert-file "$pki/bosun-$svc.crt" --tls-private-key-file "$pki/bosun-$svc.key" --client-ca-file "$ca" "$@"
}
start_service controller 10252
start_service health-checker 10253
# Envoy binds the ingress listeners (NodePort Services) on loopback, and its
# outbound listener on the offset port.
start_service service-proxy 18000 --ingress-address 127.0.0.1 --outbound-port "$(port 15001)"

if $with_node; then
  # nsenter, not `ip netns exec`: that remounts /sys in a mount namespace of
  # its own, and the node-agent then finds no cgroups.
  for ((i = 1; i <= nodes; i++)); do
    n=${node_name[i]}
    start_cmd "node-agent-$i" nsenter --net="/run/netns/${node_ns[i]}" "$bin/node-agent" \
      --apiserver "$api" --apiserver-ca-file "$ca" --node-name "$n" --node-ip "${node_ip[i]}" \
      --client-cert-file "$pki/node-$n.crt" --client-key-file "$pki/node-$n.key" \
      --listen "${node_ip[i]}:$(port 10250)" \
      --tls-cert-file "$pki/node-$n.crt" --tls-private-key-file "$pki/node-$n.key" --client-ca-file "$ca" \
      --containerd-address "$ctrd_sock" --containerd-namespace "${node_ns[i]}" \
      --root-dir "$agent_base/$n" --log-dir "$run/logs/pods" \
      --pod-cidr "${pod_cidr[i]}" --cni-bridge "$bridge" --cni-plugin-dirs "$cni_dir" \
      --insecure-registries "$registry"
  done
  # The scheduler starts once every node is Ready: the stored Deployment's
  # pods would all go to the first node otherwise.
  ready_nodes() {
    "$bin/bosun" get nodes 2>/dev/null |
      awk -v names=" ${node_name[*]} " 'NR > 1 && $2 == "Ready" && index(names, " " $1 " ") { n++ } END { print n + 0 }'
  }
  for _ in $(seq 120); do [ "$(ready_nodes)" -ge "$nodes" ] && break; all_alive; sleep 0.5; done
  [ "$(ready_nodes)" -ge "$nodes" ] || log "only $(ready_nodes) of $nodes nodes are Ready after a minute; see $run/logs/node-agent-*.log"
fi
start_service scheduler 10251

sed "s|127\.0\.0\.1:5001/|$registry/|" examples/hello.yaml | "$bin/bosun" apply -f -

# The proxyless gRPC demo's bootstrap, and Envoy when there is one: both
# reach the service-proxy over mutual TLS with the admin's certificate.
xds=127.0.0.1:$(port 18000)
xds_tls=(--ca-file "$ca" --cert-file "$pki/admin.crt" --key-file "$pki/admin.key")
"$bin/service-proxy" bootstrap --node-id hello-client --node-name "${node_name[1]}" --xds-address "$xds" \
  "${xds_tls[@]}" --format grpc >"$run/xds-bootstrap.json"
envoy_bin=$(command -v envoy || true)
if [ -n "$envoy_bin" ]; then
  "$bin/service-proxy" bootstrap --node-id make-run-envoy --node-name "${node_name[1]}" --xds-address "$xds" \
    "${xds_tls[@]}" --admin-address "127.0.0.1:$(port 9901)" >"$run/envoy.yaml"
  start_cmd envoy "$envoy_bin" -c "$run/envoy.yaml" --disable-hot-restart
fi

# --- the demo ----------------------------------------------------------------
# answers reports whether the hello app answers /healthz on ip:5000.
answers() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/5000" && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && grep -q "^ok" <&3' _ "$1" 2>/dev/null
}
# endpoints prints the ready addresses of the Service hello.
endpoints() {
  "$bin/bosun" get endpoints hello -o json 2>/dev/null | tr -d ' \n' |
    sed -E 's/"not_?[Rr]eady_?[Aa]ddresses":\[[^]]*\]//g' | grep -oE '"ip":"[0-9.]+"' | cut -d'"' -f4 || true
}
# ready prints the IPs of the hello pods when there are exactly three, all
# Running and Ready (none terminating), answering from the host and ready
# addresses of the Service (so the service-proxy serves them all).
ready() {
  local ips ip eps
  ips=$("$bin/bosun" get pods -l app=hello -o wide 2>/dev/null |
    awk 'NR > 1 { n++; if ($2 == "1/1" && $3 == "Running") ips = ips $6 "\n"; else bad++ }
         END { if (n == 3 && !bad) printf "%s", ips }')
  [ -n "$ips" ] || return 0
  eps=" $(endpoints | tr '\n' ' ') "
  for ip in $ips; do [[ $eps == *" $ip "* ]] && answers "$ip" || return 0; done
  echo "$ips"
}
ips=""
if $with_node; then
  log "waiting for the 3 hello pods to be Running and Ready (the first pull takes a moment)"
  for _ in $(seq 360); do
    ips=$(ready)
    [ "$(echo "$ips" | grep -c .)" -ge 3 ] && break
    all_alive
    sleep 0.5
  done
  "$bin/bosun" get pods -l app=hello -o wide
  [ "$(echo "$ips" | grep -c .)" -ge 3 ] || log "not all hello pods are ready after 3 minutes; see $run/logs/node-agent-*.log"
fi

first=$(echo "$ips" | head -1)
cat <<MSG

Bosun is running (apiserver gRPC $api, REST https://127.0.0.1:$(port 6480)).
MSG
if $with_node; then
  echo "Nodes: network namespaces on the bridge $bridge ($host_ip); a shell on one: nsenter --net=/run/netns/NAMESPACE"
  for ((i = 1; i <= nodes; i++)); do
    printf '  %-20s %-15s namespace %-12s pods %s\n' "${node_name[i]}" "${node_ip[i]}" "${node_ns[i]}" "${pod_cidr[i]}"
  done
fi
if [ -n "$first" ]; then
  echo "The demo answers on every pod's address (routed from this machine to the nodes):"
  echo "  curl http://$first:5000/"
  echo "  for ip in $(echo $ips); do curl -s http://\$ip:5000/; done"
fi
if [ -n "$envoy_bin" ]; then
  echo "Envoy ($envoy_bin, admin 127.0.0.1:$(port 9901)) load-balances the demo over its pods:"
  echo "  for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:30500/; done"
  $with_node && echo "Proxyless gRPC: grpc-go's xDS client, fed by the service-proxy ($xds), spreads calls over the pods:"
else
  echo "No Envoy binary on PATH, so no load-balanced URL; the proxyless gRPC demo instead:"
  $with_node && echo "grpc-go's xDS client, fed by the service-proxy ($xds), spreads calls over the pods:"
fi
if $with_node; then
  echo "  GRPC_XDS_BOOTSTRAP=$run/xds-bootstrap.json $bin/hello-client -n 6 xds:///hello.default:50051"
else
  echo "  (it needs the pods: run as root)"
fi
cat <<MSG
In another terminal:
  bin/bosun get deploy,svc,pods -o wide
  bin/bosun logs POD
  sed 's|127.0.0.1:5001/bosun/hello:v1|$registry/bosun/hello:v2|' examples/hello.yaml | bin/bosun apply -f -   # rolling update to v2
Logs: $run/logs/. Press Ctrl-C to stop.
MSG
while true; do
  all_alive
  sleep 1 &
  wait $! || true
done
