module github.com/rallyhq/rally

go 1.26.8

require (
	github.com/coder/websocket v1.8.15
	github.com/segmentio/encoding v0.5.4
	github.com/tinylib/msgp v1.6.5
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.59.0
)

require (
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/segmentio/asm v1.1.3 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
