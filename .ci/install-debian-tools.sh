#!/usr/bin/env bash
# Installs the Debian packages the tests use beside Chromium, only when missing:
#   faketime    libfaketime, to step a node's wall clock (test/cluster-clock-step.test.ts)
#   prometheus  a real Prometheus scraping /v1/sd/prometheus (test/consul-cluster.test.ts)
#   dnsutils    dig, asking the DNS interface over UDP and TCP (test/dns-cluster.test.ts)
# Called from .ci/run before `npm test`. Needs root (CI and developer machines run as root).
set -euo pipefail
missing=()
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing+=(faketime)
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
[ -x /usr/bin/dig ] || missing+=(dnsutils)
if [ ${#missing[@]} -eq 0 ]; then
  echo "debian tools: present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
echo "debian tools: installed ${missing[*]}"
