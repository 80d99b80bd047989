#!/usr/bin/env bash
# What CI runs for the benchmark harness: install the Node peer from the
# lockfile, vet and test the harness, then run every scenario against every
# server in the smoke configuration (well under a minute once built). It
# fails if a server or the load generator fails.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
go vet ./...
go test ./...
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go run . -smoke -out "$out"
