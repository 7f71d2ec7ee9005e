#!/usr/bin/env bash
# `make run`: a local Bosun cluster in the foreground. It makes the cluster's
# certificates with `bosun certs init .run/pki` (the CA is kept across runs),
# starts the apiserver (embedded etcd, data in .run/, TLS, client-certificate
# authentication, Node and RBAC authorization, an audit log in
# .run/logs/audit.log), the other services each with its own certificate,
# writes the CLI config so that `bin/bosun get pods` works in another terminal,
# applies the demo app, and on Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
run=$top/.run
bin=$top/bin
mkdir -p "$run/logs"
config=${BOSUN_CONFIG:-$HOME/.bosun/config}
marker="# written by Bosun's make run"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  echo "stopped; logs are in .run/logs, state in .run/data (remove .run to start afresh)"
}
trap stop INT TERM EXIT

start() { # name, args...
  local name=$1; shift
  "$bin/$name" "$@" >"$run/logs/$name.log" 2>&1 &
  pids+=($!)
}

pki=$run/pki
node=$(hostname | tr '[:upper:]' '[:lower:]')
"$bin/bosun" certs init "$pki" --node "$node" >/dev/null
ca=$pki/ca.crt
start apiserver --data-dir "$run/data" --listen 127.0.0.1:6443 --http-listen 127.0.0.1:6480 \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --tls-ca-file "$ca" \
  --client-ca-file "$ca" --cluster-signing-cert-file "$ca" --cluster-signing-key-file "$pki/ca.key" \
  --audit-log-path "$run/logs/audit.log"

if [ ! -e "$config" ] || grep -qF "$marker" "$config"; then
  mkdir -p "$(dirname "$config")"
  printf '%s\nserver: 127.0.0.1:6443\nca: %s\ncert: %s\nkey: %s\nnamespace: default\n' \
    "$marker" "$ca" "$pki/admin.crt" "$pki/admin.key" >"$config"
  echo "CLI config written to $config"
else
  echo "keeping your $config; use BOSUN_CONFIG=$pki/admin.conf (server 127.0.0.1:6443, admin certificate)"
fi
export BOSUN_CONFIG=$config

for _ in $(seq 100); do "$bin/bosun" get ns >/dev/null 2>&1 && break; sleep 0.2; done
"$bin/bosun" get ns >/dev/null 2>&1 || { echo "apiserver did not start; see .run/logs/apiserver.log"; tail -5 "$run/logs/apiserver.log"; exit 1; }
for svc in scheduler controller health-checker service-proxy; do
  start "$svc" --apiserver 127.0.0.1:6443 --apiserver-ca-file "$ca" \
    --client-cert-file "$pki/bosun-$svc.crt" --client-key-file "$pki/bosun-$svc.key"
done
start node-agent --apiserver 127.0.0.1:6443 --apiserver-ca-file "$ca" --node-name "$node" \
  --client-cert-file "$pki/node-$node.crt" --client-key-file "$pki/node-$node.key"

"$bin/bosun" apply -f examples/hello.yaml
cat <<MSG

Bosun is running (apiserver gRPC 127.0.0.1:6443, REST https://127.0.0.1:6480).
In another terminal:
  bin/bosun get deploy,svc,pods
  curl --cacert $ca --cert $pki/admin.crt --key $pki/admin.key \
    https://127.0.0.1:6480/apis/apps/v1/namespaces/default/deployments/hello
  bin/bosun auth can-i create pods
Pods of the demo run once the node-agent runs containers; until then the
Deployment and Service are stored and served.
Logs: .run/logs/. Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "a component exited; see .run/logs"
