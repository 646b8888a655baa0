#!/usr/bin/env bash
# Every benchmark, one after another (`deno task bench`). Each compares Fulcrum with
# a peer measured in the same run (HAProxy, nginx, keepalived, ipvsadm-restore) and
# prints ratios, never absolute verdicts. Pass names to run a subset:
#   deno task bench l7_cache l4
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
command -v "$DENO" >/dev/null 2>&1 || DENO="npx -y deno@2.9.6"
all=(l7_cache l7_speed l4 health vrrp ipvs health_vm)
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${all[@]}")
for name in "${selected[@]}"; do
  echo "=================== bench: $name"
  case "$name" in
    ipvs)
      # Inside the VM, $DENO is the host's deno binary (see tests/ipvs_vm.sh).
      IPVS_VM_DENO=$($DENO eval 'console.log(Deno.execPath())') \
        tests/ipvs_vm.sh -- sh -c '"$DENO" run -A --no-check bench/ipvs_bench.ts'
      ;;
    # keepalived's checker needs ip_vs: all three checkers side by side in the IPVS VM.
    health_vm) $DENO run -A bench/health_bench.ts --vm ;;
    l7_cache | l7_speed) $DENO run -A "bench/${name}.ts" ;;
    *) $DENO run -A "bench/${name}_bench.ts" ;;
  esac
done
