#!/usr/bin/env bash
# Install everything the tests and the demo need, from nothing, idempotently (cached by version):
# Debian packages (databases), the Python venv (pinned by pyproject.toml), npm packages (Azurite).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# databases for the integration suite, `time` for the benchmark, lua5.4 runs the shipped Argo CD health check
APT_PACKAGES=(postgresql mariadb-server mariadb-client ca-certificates time lua5.4)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)  # Azurite (the polyglot image ships Node 20)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: pip install -e .[dev,operator]"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev,operator]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# pinned helm for the chart tests (cached; RIVET_TESTBED_CACHE overrides the location)
bash tests/cluster/helm.sh >/dev/null

if [ -f package-lock.json ]; then
  nstamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
  if [ ! -f "$nstamp" ]; then
    echo "setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    touch "$nstamp"
  fi
fi
echo "setup: done"
