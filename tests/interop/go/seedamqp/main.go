// main for the seed's send/receive program (seed.go): `seedamqp send` publishes "Hello
// World!" to the queue "hello"; `seedamqp receive` consumes it and logs each message until
// it is stopped. The broker is $AMQP_URL.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 2 || os.Getenv("AMQP_URL") == "" {
		fmt.Fprintln(os.Stderr, "usage: AMQP_URL=amqp://... seedamqp send|receive")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "send":
		send()
	case "receive":
		receive()
	default:
		fmt.Fprintln(os.Stderr, "seedamqp: unknown command", os.Args[1])
		os.Exit(2)
	}
}
