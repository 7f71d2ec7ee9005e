#!/usr/bin/env bash
# `make run`: a local Bosun cluster in the foreground, running the demo app.
#
# As root it installs what is missing (containerd, runc, CNI plugins,
# iptables) with apt-get, then starts:
#   - a private containerd (own root, state, socket and config under
#     .run/containerd; CRI plugin disabled),
#   - bin/devregistry: the demo images (examples/hello, v1 and v2) built
#     in-process and served by an OCI registry on 127.0.0.1:5001,
#   - the apiserver (embedded etcd in .run/data, TLS and client certificates
#     from `bosun certs init .run/pki`, Node and RBAC authorization, audit log
#     in .run/logs/audit.log), the scheduler, controller, health-checker and
#     service-proxy, each with its own certificate,
#   - one node-agent for this machine (state in .run/node-agent, container
#     logs in .run/logs/pods, pods on the CNI bridge bosun0 with pod CIDR
#     10.244.0.0/24, pulling from the registry over plain HTTP),
# writes the CLI config so that `bin/bosun get pods` works in another
# terminal, applies examples/hello.yaml, waits until its three pods are
# Running and Ready and prints how to reach them. Ctrl-C deletes the pods on
# the node (the Deployment stays stored), stops the node-agent, removes
# whatever containers, network namespaces, CNI iptables chains, the bridge and
# mounts under .run remain, stops containerd and the rest. Without root it
# runs the control plane only and the demo's pods stay Pending.
#
# Environment (for tests and for running next to another cluster):
#   BOSUN_RUN_DIR       state, logs and sockets (default .run)
#   BOSUN_PORT_OFFSET   added to every port: apiserver 6443 and 6480,
#                       registry 5001, scheduler 10251, controller 10252,
#                       health-checker 10253, service-proxy 18000,
#                       node-agent 10250 (default 0)
#   BOSUN_NODE          node name (default the host name, lower-cased)
#   BOSUN_POD_CIDR      the node's pod range (default 10.244.0.0/24)
#   BOSUN_BRIDGE        the CNI bridge (default bosun0)
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
api=127.0.0.1:$(port 6443)
registry=127.0.0.1:$(port 5001)
node=${BOSUN_NODE:-$(hostname | tr '[:upper:]' '[:lower:]')}
pod_cidr=${BOSUN_POD_CIDR:-10.244.0.0/24}
bridge=${BOSUN_BRIDGE:-bosun0}
ctrd_dir=$run/containerd
ctrd_sock=$ctrd_dir/containerd.sock
ctrd_ns=bosun
agent_root=$run/node-agent
cni_results=/var/lib/cni/results
netname=bosun-$bridge

log() { echo "make run: $*"; }

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
start() { # name, args...
  local name=$1; shift
  setsid "$bin/$name" "$@" >"$run/logs/$name.log" 2>&1 </dev/null &
  pid[$name]=$!
  echo "${pid[$name]}" >"$run/pids/$name"
  order+=("$name")
}
# running reports whether process $1 exists and is not a zombie (processes
# of a killed make run wait for an init that may be slow to reap them).
running() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }
stop_one() { # name: SIGTERM, then SIGKILL after 10 s
  local p=${pid[$1]:-}
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 50); do running "$p" || break; sleep 0.2; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
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
ctr_() { ctr -a "$ctrd_sock" -n "$ctrd_ns" "$@"; }

# cleanup_runtime removes what pods of this cluster may have left on the
# machine: tasks and containers (while containerd runs), network namespaces,
# CNI results, the masquerade chains of the bridge plugin, the bridge and the
# portmap chains when this run created them and they are empty.
cleanup_runtime() {
  if [ -S "$ctrd_sock" ] && ctr -a "$ctrd_sock" version >/dev/null 2>&1; then
    for t in $(ctr_ tasks ls -q 2>/dev/null); do
      ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    for t in $(ctr_ tasks ls -q 2>/dev/null); do
      for _ in $(seq 25); do ctr_ tasks rm -f "$t" >/dev/null 2>&1 && break; sleep 0.2; done
    done
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$c" >/dev/null 2>&1 || true; done
  fi
  if [ -d "$agent_root/netns" ]; then
    for f in "$agent_root"/netns/*; do
      [ -e "$f" ] || continue
      umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null || true
      rm -f "$f"
    done
  fi
  if [ -d "$cni_results" ]; then
    for f in "$cni_results/$netname-"*; do
      [ -e "$f" ] || continue
      local id=${f#"$cni_results/$netname-"}; id=${id%-eth0}
      rm -f "$f" "$cni_results/cni-loopback-$id-lo"
    done
  fi
  if command -v iptables >/dev/null; then
    { iptables -t nat -S POSTROUTING 2>/dev/null || true; } | { grep -F "name: \\\"$netname\\\"" || true; } | while read -r line; do
      local chain=${line##* }
      # shellcheck disable=SC2086
      eval iptables -t nat ${line/-A/-D} 2>/dev/null || true
      iptables -t nat -F "$chain" 2>/dev/null || true
      iptables -t nat -X "$chain" 2>/dev/null || true
    done
    if [ -e "$run/portmap-chains-ours" ] && ! iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A'; then
      iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null || true
      iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null || true
      iptables -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ 2>/dev/null || true
      for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do iptables -t nat -F "$c" 2>/dev/null || true; done
      for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do iptables -t nat -X "$c" 2>/dev/null || true; done
      rm -f "$run/portmap-chains-ours"
    fi
  fi
  ip link del "$bridge" 2>/dev/null || true
}

# remove_cgroups removes the cgroups containerd made for this cluster's
# namespace, which outlive their containers; only empty ones can go.
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/"$ctrd_ns" /sys/fs/cgroup/"$ctrd_ns"; do
    [ -d "$d" ] && { find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
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

# node_pods prints "NAMESPACE NAME" of every pod bound to the node.
node_pods() {
  "$bin/bosun" get pods -A --field-selector "spec.nodeName=$node" 2>/dev/null | awk 'NR > 1 { print $1, $2 }'
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
  for s in scheduler controller health-checker; do stop_one "$s"; done
  if alive node-agent && alive apiserver; then
    log "deleting the pods on $node (the Deployment stays; the next make run starts them again)"
    node_pods | while read -r ns name; do
      "$bin/bosun" delete -n "$ns" pod "$name" --ignore-not-found >/dev/null 2>&1 || true
    done
    for _ in $(seq 120); do [ -z "$(node_pods)" ] && break; sleep 0.5; done
  fi
  if alive apiserver && [ -n "$(node_pods)" ]; then
    # The node-agent is gone or too slow: the objects go at once, and their
    # containers and networking are removed below.
    log "the node-agent did not stop the pods on $node; removing them directly"
    node_pods | while read -r ns name; do
      "$bin/bosun" delete -n "$ns" pod "$name" --grace-period 0 --ignore-not-found >/dev/null 2>&1 || true
    done
  fi
  stop_one node-agent
  if $with_node; then
    cleanup_runtime
    stop_one containerd
    unmount_run
    rmdir "/run/containerd/runc/$ctrd_ns" 2>/dev/null || true # runc's state folder, when empty
    remove_cgroups
    [ "${ip_forward:-1}" = 0 ] && echo 0 >/proc/sys/net/ipv4/ip_forward
  fi
  for ((i=${#order[@]}-1; i>=0; i--)); do stop_one "${order[$i]}"; done
  wait 2>/dev/null || true
  trap - INT TERM
  log "stopped; logs are in $run/logs, state in $run/data (remove $run to start afresh)"
}

# `scripts/run.sh --clean` stops and removes what a make run that was killed
# (SIGKILL) left behind, from the process ids in .run/pids.
if [ "${1:-}" = --clean ]; then
  for f in "$run"/pids/*; do
    [ -e "$f" ] || continue
    p=$(cat "$f")
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -e "$run" -e "$bin/"; then
      pid[$(basename "$f")]=$p
    else
      rm -f "$f"
    fi
  done
  stop_one node-agent
  if $with_node; then cleanup_runtime; fi
  stop_one containerd
  if $with_node; then unmount_run; rmdir "/run/containerd/runc/$ctrd_ns" 2>/dev/null || true; remove_cgroups; fi
  for name in "${!pid[@]}"; do stop_one "$name"; done
  log "cleaned up after the make run of $run"
  exit 0
fi

trap 'stop; exit 0' INT TERM
trap stop EXIT

# --- containerd and the registry ---------------------------------------------
if $with_node; then
  if [ -e "$run/pids/containerd" ] && running "$(cat "$run/pids/containerd")"; then
    log "containerd of another make run is running (pid $(cat "$run/pids/containerd")) with $run:"
    log "stop that make run, or run 'scripts/run.sh --clean' if it was killed"
    trap - INT TERM EXIT
    exit 1
  fi
  # Whatever a run that was killed left behind.
  cleanup_runtime
  unmount_run
  if ip -4 route show table all | awk '{print ($1 == "local" || $1 == "broadcast") ? $2 : $1}' | grep -qx "${pod_cidr}"; then
    log "the pod CIDR $pod_cidr is already routed on this machine; set BOSUN_POD_CIDR to a free /24"
    exit 1
  fi
  iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 || touch "$run/portmap-chains-ours"
  # The bridge plugin turns IP forwarding on; it is turned off again on
  # Ctrl-C when it was off.
  ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)

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
  for _ in $(seq 100); do ctr -a "$ctrd_sock" version >/dev/null 2>&1 && break; sleep 0.2; done
  ctr -a "$ctrd_sock" version >/dev/null 2>&1 ||
    { log "containerd did not start; see $run/logs/containerd.log"; tail -5 "$run/logs/containerd.log"; exit 1; }

  log "building the demo images and starting the registry on $registry"
  start devregistry -listen "$registry" -root "$top"
  for _ in $(seq 600); do grep -q '^ready' "$run/logs/devregistry.log" && break; alive devregistry || break; sleep 0.5; done
  grep -q '^ready' "$run/logs/devregistry.log" ||
    { log "the registry did not start; see $run/logs/devregistry.log"; tail -5 "$run/logs/devregistry.log"; exit 1; }
fi

# --- the control plane -------------------------------------------------------
pki=$run/pki
"$bin/bosun" certs init "$pki" --node "$node" >/dev/null
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
i=1
for svc in scheduler controller health-checker service-proxy; do
  listen=127.0.0.1:$(port $((10250 + i)))
  [ "$svc" = service-proxy ] && listen=127.0.0.1:$(port 18000)
  start "$svc" --apiserver "$api" --apiserver-ca-file "$ca" --listen "$listen" \
    --client-cert-file "$pki/bosun-$svc.crt" --client-key-file "$pki/bosun-$svc.key"
  i=$((i + 1))
done

if $with_node; then
  start node-agent --apiserver "$api" --apiserver-ca-file "$ca" --node-name "$node" \
    --client-cert-file "$pki/node-$node.crt" --client-key-file "$pki/node-$node.key" \
    --listen "127.0.0.1:$(port 10250)" \
    --containerd-address "$ctrd_sock" --containerd-namespace "$ctrd_ns" \
    --root-dir "$agent_root" --log-dir "$run/logs/pods" \
    --pod-cidr "$pod_cidr" --cni-bridge "$bridge" --cni-plugin-dirs "$cni_dir" \
    --insecure-registries "$registry"
fi

sed "s|127\.0\.0\.1:5001/|$registry/|" examples/hello.yaml | "$bin/bosun" apply -f -

# --- the demo ----------------------------------------------------------------
# answers reports whether the hello app answers /healthz on ip:5000.
answers() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/5000" && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && grep -q "^ok" <&3' _ "$1" 2>/dev/null
}
# ready prints the IPs of the hello pods when there are exactly three, all
# Running and Ready (none terminating) and answering from the host.
ready() {
  local ips ip
  ips=$("$bin/bosun" get pods -l app=hello -o wide 2>/dev/null |
    awk 'NR > 1 { n++; if ($2 == "1/1" && $3 == "Running") ips = ips $6 "\n"; else bad++ }
         END { if (n == 3 && !bad) printf "%s", ips }')
  for ip in $ips; do answers "$ip" || return 0; done
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
  [ "$(echo "$ips" | grep -c .)" -ge 3 ] || log "not all hello pods are ready after 3 minutes; see $run/logs/node-agent.log"
fi

first=$(echo "$ips" | head -1)
cat <<MSG

Bosun is running (apiserver gRPC $api, REST https://127.0.0.1:$(port 6480)).
MSG
if [ -n "$first" ]; then
  echo "The demo answers on every pod's address (through the bridge $bridge):"
  echo "  curl http://$first:5000/"
  echo "  for ip in $(echo $ips); do curl -s http://\$ip:5000/; done"
fi
cat <<MSG
In another terminal:
  bin/bosun get deploy,svc,pods -o wide
  bin/bosun logs POD
  sed 's|hello:v1|hello:v2|' examples/hello.yaml | bin/bosun apply -f -   # rolling update to v2
The service-proxy serves the Service over xDS on 127.0.0.1:$(port 18000).
MSG
if command -v envoy >/dev/null; then
  echo "Envoy is installed ($(command -v envoy)), but make run does not start it yet."
else
  echo "No Envoy binary on PATH: the demo is reached on the pod addresses above."
fi
cat <<MSG
Logs: $run/logs/. Press Ctrl-C to stop.
MSG
while true; do
  all_alive
  sleep 1 &
  wait $! || true
done
