// Package msgpackparser is the wire format of socket.io-msgpack-parser 3.x
// for rally hubs and Go clients: each packet travels as one MessagePack
// map in one binary message, binary values inline.
//
//	hub := rally.NewHub(&rally.Options{Parser: msgpackparser.Parser{}})
//	c, err := client.New(url, &client.Options{Parser: msgpackparser.Parser{}})
//
// It speaks to the official client and server set up with
// parser: require("socket.io-msgpack-parser"). Values map as that
// package's codec, notepack.io 2.2, maps JavaScript values: handlers get
// the same Go values as with the default parser (binary as []byte
// anywhere in the arguments), with these differences, which are
// JavaScript's:
//
//   - NaN and ±Infinity arrive as null, as JSON would carry them;
//   - a Date arrives as its ISO 8601 string (decode it into time.Time);
//   - undefined is null in arrays and absent from objects;
//   - MessagePack extensions other than notepack's arrive as
//     [type, bytes], as in Node.
//
// Input that socket.io-msgpack-parser refuses (malformed MessagePack, a
// type, namespace, payload or id of the wrong kind), a text message, and
// what rally refuses with either parser (reserved or non-string,
// non-number event names, binary values in CONNECT data, names and ids
// past their limits) close the connection, as Node's server closes it on
// a parser error. Nesting is bounded by 1000 levels and a packet by 1000
// binary values; the size of a packet by the hub's MaxHTTPBufferSize.
//
// Importing this package links the MessagePack library
// (github.com/tinylib/msgp); programs that use the default parser do not.
package msgpackparser

import (
	"github.com/rallyhq/rally/internal/parser"
	"github.com/rallyhq/rally/internal/parser/msgpack"
)

// Parser is socket.io-msgpack-parser's format, for rally.Options.Parser
// and client.Options.Parser. Its zero value is ready to use.
type Parser struct{}

// Codec returns the implementation of the format.
func (Parser) Codec() parser.Codec { return msgpack.Codec }
