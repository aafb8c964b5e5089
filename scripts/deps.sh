#!/bin/sh
# Installs every Debian package faultline needs to build and test. Idempotent: when all are
# present it installs nothing and prints nothing; otherwise one apt-get update, one install.
set -eu
PKGS="
build-essential cmake pkg-config clang-format
libuv1-dev liblua5.4-dev check libcurl4-openssl-dev libjansson-dev
curl wrk libxml2-utils python3-junitparser procps
nghttp2-client nghttp2-server
"
missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$st" in ii*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
