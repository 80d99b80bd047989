#!/usr/bin/env bash
# Runs every test of the repository: installs the npm packages the interop
# and browser tests drive (from their lockfiles), then the Go tests of every
# module (the library, redisadapter, metrics, the two examples and
# internal/modtest, which installs redisadapter and metrics as a user does;
# go.work ties them together), with the race detector.
# Tests that need Node, Chromium or redis-server skip with a message when
# the tool is missing, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")"
for dir in testdata stdexample/chat/web redisadapter/testdata admin/testdata; do
	npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
done
for module in . redisadapter metrics stdexample chiexample; do
	(cd "$module" && go test -race ./...)
done
# Never from the test cache: what it checks comes from the git history and
# from the files git lists, which the cache does not watch.
(cd internal/modtest && go test -race -count=1 ./...)
