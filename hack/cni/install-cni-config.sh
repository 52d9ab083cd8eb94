#!/usr/bin/env bash
# Installs berth's default CNI network config for a fresh machine: a bridge
# (berth0, gateway + masquerade, host-local IPAM on 10.88.0.0/16) chained with
# portmap (hostPort mappings) and loopback. Never overwrites an existing file.
#
#   CNI_CONF_DIR  where to write (default /etc/cni/net.d)
#   CNI_BIN_DIR   where the plugins are (default /usr/lib/cni), used to pick cniVersion
#   CNI_SUBNET    pod subnet (default 10.88.0.0/16)
#   CNI_BRIDGE    bridge name (default berth0)
set -euo pipefail

conf_dir=${CNI_CONF_DIR:-/etc/cni/net.d}
bin_dir=${CNI_BIN_DIR:-/usr/lib/cni}
subnet=${CNI_SUBNET:-10.88.0.0/16}
bridge=${CNI_BRIDGE:-berth0}
file="$conf_dir/10-berth-bridge.conflist"

for p in bridge host-local portmap loopback; do
  [[ -x "$bin_dir/$p" ]] || { echo "install-cni-config: plugin $bin_dir/$p not found" >&2; exit 1; }
done

# Use 1.0.0 when every plugin speaks it, else fall back to 0.4.0.
version=1.0.0
for p in bridge host-local portmap loopback; do
  out=$(echo '{"cniVersion":"0.4.0"}' | CNI_COMMAND=VERSION "$bin_dir/$p" 2>/dev/null || true)
  if [[ "$out" != *'"1.0.0"'* ]]; then version=0.4.0; fi
done

mkdir -p "$conf_dir"
if [[ -e "$file" ]]; then
  echo "install-cni-config: $file exists, left unchanged"
  exit 0
fi

tmp=$(mktemp "$conf_dir/.10-berth-bridge.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<JSON
{
  "cniVersion": "$version",
  "name": "berth",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$subnet" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true },
      "snat": true
    },
    {
      "type": "loopback"
    }
  ]
}
JSON
chmod 0644 "$tmp"
sync "$tmp"
# ln (link) fails if the name appeared meanwhile: never overwrite.
if ln "$tmp" "$file" 2>/dev/null; then
  echo "install-cni-config: wrote $file (cniVersion $version, bridge $bridge, subnet $subnet)"
else
  echo "install-cni-config: $file exists, left unchanged"
fi
