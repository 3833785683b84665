#!/bin/sh
# Build tools/vcsim/gpulab (GOPATH mode against Debian's packaged govmomi; no network needed).
# Requires: apt-get install golang-go golang-github-vmware-govmomi-dev
set -eu
cd "$(dirname "$0")"
GOVMOMI=/usr/share/gocode/src/github.com/vmware/govmomi
if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: error: 'go' not found; install it with: apt-get install golang-go" >&2
    exit 1
fi
if [ ! -d "$GOVMOMI/simulator" ]; then
    echo "build.sh: error: govmomi source not found at $GOVMOMI; install it with: apt-get install golang-github-vmware-govmomi-dev" >&2
    exit 1
fi
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/gpulab-gocache}"
GOPATH=/usr/share/gocode GO111MODULE=off go build -o gpulab .
echo "built $(pwd)/gpulab"
