// Package modtest holds a test that installs rally and its redisadapter and
// metrics modules the way a user does: from a module proxy, with no go.work
// and no replace.
//
// It is a module of its own so that the library and those modules do not
// depend on golang.org/x/mod, which the test uses to publish them.
package modtest
