#!/usr/bin/env bash
# The whole suite, as the README's second command runs it (`deno task test`):
# installs the peers the tests use (idempotently), then format check, lint, type
# check, the bundle, and every test. Ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
command -v "$DENO" >/dev/null 2>&1 || DENO="npx -y deno@2.9.6"

# Debian packages the integration tests drive: keepalived (VRRP peer), ipvsadm and
# qemu + a kernel with ip_vs (the IPVS VM), haproxy/nginx/wrk (benchmarks), tcpdump
# (captures), iproute2/iptables/ping (network namespaces).
packages=(keepalived ipvsadm haproxy nginx wrk tcpdump qemu-system-x86 busybox-static kmod
  linux-image-amd64 iproute2 iptables iputils-ping procps cpio)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "test: missing ${missing[*]} (not root or no apt-get); tests that need them are skipped with a reason" >&2
  fi
fi

echo "== fmt"; $DENO fmt --check
echo "== lint"; $DENO lint
echo "== type check"; $DENO check .
echo "== bundle"; $DENO task bundle

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
echo "== unit tests"
# Unit tests sit beside their modules; tests/ holds what crosses rooms or needs
# namespaces, peers or the VM. Files run one at a time: several tests count this
# process's open descriptors to prove nothing leaks, and timings stay honest.
units=$(git ls-files --cached --others --exclude-standard '*_test.ts' | grep -v '^tests/' || true)
# shellcheck disable=SC2086
NO_COLOR=1 $DENO test -A $units 2>&1 | tee -a "$log" || status=1
echo "== integration tests"
integration=$(git ls-files --cached --others --exclude-standard 'tests/*_test.ts' || true)
# shellcheck disable=SC2086
NO_COLOR=1 $DENO test -A $integration 2>&1 | tee -a "$log" || status=1

passed=$(grep -Eo '\| [0-9]+ passed' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo '\| [0-9]+ failed' "$log" | awk '{s+=$2} END {print s+0}')
ignored=$(grep -Eo '\| [0-9]+ ignored' "$log" | awk '{s+=$2} END {print s+0}')
echo "fulcrum: ${passed} passed, ${failed} failed, ${ignored} skipped"
[ "$failed" = 0 ] || status=1
exit $status
