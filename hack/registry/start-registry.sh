#!/usr/bin/env bash
# Starts Debian's docker-registry on 127.0.0.1 (a free port) with its own storage dir.
#   hack/registry/start-registry.sh start <dir> [user:password]   prints the address (host:port)
#   hack/registry/start-registry.sh stop <dir>                    stops it (pid file in <dir>)
# Images: node hack/registry/build-images.ts <address> [user:password]
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[[ -n $cmd && -n $dir ]] || { echo "usage: $0 start|stop <dir> [user:password]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
node=${NODE:-$here/../../node_modules/.bin/node}
case $cmd in
  start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -f $dir/registry.pid ]] && kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null && { cat "$dir/address"; exit 0; }
    rm -f "$dir/address"
    # The node wrapper owns the registry process and stops it on SIGTERM.
    nohup "$node" "$here/registry.ts" "$dir" ${3:+"$3"} >"$dir/address" 2>"$dir/registry.log" &
    echo $! >"$dir/registry.pid"
    for _ in $(seq 1 200); do
      [[ -s $dir/address ]] && { cat "$dir/address"; exit 0; }
      kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || break
      sleep 0.05
    done
    echo "docker-registry did not start; see $dir/registry.log" >&2
    exit 1
    ;;
  stop)
    [[ -f $dir/registry.pid ]] || exit 0
    pid=$(cat "$dir/registry.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$dir/registry.pid" "$dir/address"
    ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
