#!/usr/bin/env bash
# Installs what Herald needs to build and test, from Debian's packages. Idempotent:
# it asks apt only for what is missing, so a second run costs a dpkg query.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libspdlog-dev libcli11-dev libssl-dev
  libgtest-dev libgmock-dev libhiredis-dev
  clang libclang-rt-14-dev
  redis-server redis-tools python3 python3-websockets python3-pytest
  gnuplot-nox
  nodejs npm
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere than apt on some machines: a working node is enough.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
