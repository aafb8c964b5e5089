#!/bin/sh
# Installs every Debian package faultline needs to build and test. Idempotent: when all are
# present it installs nothing and prints nothing; otherwise one apt-get update, one install.
set -eu
PKGS="
build-essential cmake pkg-config clang-format clang libclang-rt-14-dev
libuv1-dev liblua5.4-dev check libjansson-dev
curl wrk sqlite3 libxml2-utils python3-junitparser python3-jsonschema procps chromium locales
nghttp2-client nghttp2-server
python3-consul
librabbitmq-dev amqp-tools python3-pika rabbitmq-server
golang-go golang-github-rabbitmq-amqp091-go-dev
zlib1g-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libsqlite3-dev
python3-grpcio golang-google-grpc-dev golang-goprotobuf-dev
python3-protobuf
"
cd "$(dirname "$0")/.."

# Node packages for the interop tests, from the committed lock file (Node.js and npm come
# with the machine; Debian's npm must not be installed over them).
npm_deps() {
    lock=tests/interop/package-lock.json
    stamp=tests/interop/node_modules/.faultline-lock
    [ -f "$lock" ] || return 0
    if [ -f "$stamp" ] && cmp -s "$lock" "$stamp"; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "deps: npm not found; the Node.js interop tests will be skipped" >&2
        return 0
    fi
    echo "deps: npm ci in tests/interop"
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error) && cp "$lock" "$stamp"
}

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$st" in ii*) ;; *) missing="$missing $p" ;; esac
done
if [ -z "$missing" ]; then
    npm_deps
    exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
npm_deps
