#!/usr/bin/env bash
# Runs every test of the repository: installs the npm packages the interop
# and browser tests drive (from their lockfiles), then the Go tests of the
# root module and of the redisadapter module, with the race detector.
# Tests that need Node, Chromium or redis-server skip with a message when
# the tool is missing, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")"
for dir in testdata stdexample/chat/web redisadapter/testdata; do
	npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
done
go test -race ./...
(cd redisadapter && go test -race ./...)
