#!/usr/bin/env bash
# Makes a P-256 key pair for each service and appends them to an env file for docker compose
# (default ./.env, which compose reads by itself): <SERVICE>_SERVICE_KEY (the private half, given to
# that service alone) and <SERVICE>_PUBLIC_KEY (given to the services it calls). One line each, with
# `\n` escapes, which the services read as line breaks. The file holds private keys: it is made
# readable by its owner only and is git-ignored. Refuses to add keys to a file that has some.
#
#   Tools/service-keys.sh            # writes ./.env
#   Tools/service-keys.sh prod.env   # another file
set -euo pipefail
out=${1:-.env}
if [[ -e $out ]] && grep -q '^AUTH_SERVICE_KEY=' "$out"; then
    echo "$out already holds service keys; remove those lines first to make new ones" >&2
    exit 1
fi
command -v openssl >/dev/null || { echo "openssl is needed (apt-get install -y openssl)" >&2; exit 1; }
one_line() { awk '{ printf "%s\\n", $0 }'; }
umask 077
touch "$out"
chmod 600 "$out"
for service in auth tenancy billing chat gateway; do
    key=$(openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt)
    public=$(printf '%s\n' "$key" | openssl pkey -pubout)
    name=${service^^}
    printf '%s_SERVICE_KEY=%s\n' "$name" "$(printf '%s\n' "$key" | one_line)" >>"$out"
    printf '%s_PUBLIC_KEY=%s\n' "$name" "$(printf '%s\n' "$public" | one_line)" >>"$out"
done
echo "wrote a key pair for auth, tenancy, billing, chat and gateway to $out"
