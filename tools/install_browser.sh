#!/usr/bin/env bash
# Debian's chromium (and CJK fonts for screenshots) for the report tests; no-op when present.
set -euo pipefail

BROWSER_PACKAGES=(chromium fonts-noto-cjk fonts-liberation)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

command -v dpkg-query >/dev/null || { echo "no dpkg here: install chromium yourself for the browser tests" >&2; exit 0; }
missing=()
for pkg in "${BROWSER_PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
echo "installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
