package cli

import (
	"errors"
	"io"
	"net"
	"testing"
)

// TestIsClosedConnErr: the end of a hijacked stream is known by its error
// chain (EOF, reset, a closed connection), not by the error's words.
func TestIsClosedConnErr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !isClosedConnErr(err) {
		t.Fatalf("read on a closed conn: %v", err)
	}
	if !isClosedConnErr(io.EOF) || isClosedConnErr(errors.New("use of closed network connection")) {
		t.Fatal("words alone decide nothing")
	}
}
