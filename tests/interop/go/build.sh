#!/bin/sh
# Builds the seed's Go greeter server and client (tests/interop/go/{server,client}) against
# Debian's golang-google-grpc-dev and golang-goprotobuf-dev, in GOPATH mode (GO111MODULE=off,
# GOPATH = a scratch workspace + /usr/share/gocode), with stubs generated from
# services/proto/hello.proto by `protoc --go_out=plugins=grpc` (Debian's protoc-gen-go 1.3).
#
#   tests/interop/go/build.sh OUTDIR [CACHEDIR]
#
# Writes OUTDIR/greeter-server-go and OUTDIR/greeter-client-go; CACHEDIR keeps Go's build
# cache between runs (default OUTDIR/go-cache). Exit 0 built, 1 failed, 3 a tool is missing.
set -eu
mkdir -p "$1" "${2:-$1/go-cache}"
out=$(cd "$1" && pwd)
cache=$(cd "${2:-$out/go-cache}" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$src/../../.." && pwd)
for t in go protoc protoc-gen-go; do
    command -v "$t" >/dev/null 2>&1 || { echo "build.sh: $t is missing" >&2; exit 3; }
done
[ -d /usr/share/gocode/src/google.golang.org/grpc ] ||
    { echo "build.sh: golang-google-grpc-dev is missing" >&2; exit 3; }
ws=$out/gopath
rm -rf "$ws"
mkdir -p "$ws/src/greeter/proto" "$ws/src/greeter/server" "$ws/src/greeter/client" "$cache"
protoc -I "$root/services/proto" --go_out=plugins=grpc,paths=source_relative:"$ws/src/greeter/proto" \
    "$root/services/proto/hello.proto"
cp "$src/server/main.go" "$ws/src/greeter/server/"
cp "$src/client/main.go" "$ws/src/greeter/client/"
export GO111MODULE=off GOPATH="$ws:/usr/share/gocode" GOCACHE="$cache" GOFLAGS=
go build -o "$out/greeter-server-go" greeter/server
go build -o "$out/greeter-client-go" greeter/client
