#!/usr/bin/env bash
# The system packages the tests drive for real: PostgreSQL's server (tests start a throwaway one in
# a temporary folder) and Chromium (the web page's browser tests). Debian's packages; needs root.
# Skips what is installed already.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/system_packages.sh: run as root to install: ${need[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
