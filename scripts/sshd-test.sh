#!/usr/bin/env bash
# The adapter tests on their own: SSH against a real OpenSSH sshd (started by the tests on 127.0.0.1 with its
# own host key and config) plus quoting, error classification and the TLS-pinned PVE client.
# No Temporal dev server is needed, so jest's global setup is switched off here.
# Needs root (the tests create the user pvevllmssh with a NOPASSWD sudoers rule) and Debian packages
# openssh-server, openssh-client, sudo, procps; installs the missing ones when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v sudo >/dev/null 2>&1 || need+=(sudo)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need[*]} (run as root or apt-get install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

exec npx jest test/ssh test/unit/adapters --runInBand --globalSetup='' --globalTeardown='' "$@"
