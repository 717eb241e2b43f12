package network

import (
	"errors"
	"fmt"
	"net"
	"testing"
)

// TestIsClosed: the DNS server's loops stop on a closed socket, known by
// net.ErrClosed through the error chain, not by the error's words.
func TestIsClosed(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	_, _, err = pc.ReadFrom(make([]byte, 1))
	if !isClosed(err) {
		t.Fatalf("read on a closed socket: %v not closed", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Accept(); !isClosed(err) {
		t.Fatalf("accept on a closed listener: %v not closed", err)
	}
	if isClosed(nil) || isClosed(errors.New("use of closed network connection")) || isClosed(fmt.Errorf("read: %w", net.ErrWriteToConnected)) {
		t.Fatal("only net.ErrClosed is closed")
	}
}
