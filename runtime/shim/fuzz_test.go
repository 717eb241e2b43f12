package shim

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// FuzzProtocol feeds arbitrary bytes to both ends of the shim's control
// protocol: berthd's reading of a Response line, and ReadExit of an
// exit.json. No panic, no hang.
func FuzzProtocol(f *testing.F) {
	for _, s := range []string{
		`{"pid":42}` + "\n",
		`{"error":"exec: \"nosuch\": executable file not found","kind":"not-found"}` + "\n",
		`{"exit":{"pid":1,"exitCode":137,"exitedAt":"2026-12-05T05:00:00Z","oomKilled":true}}` + "\n",
		`{"pid":"x"}` + "\n", "\n", `{"exit":null}`, `{"exitCode":1,"exitedAt":"bad"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer server.Close()
			if _, err := bufio.NewReader(server).ReadBytes('\n'); err != nil {
				return
			}
			server.Write(data)
		}()
		_, _, _ = roundTrip(client, Request{Op: "state"})
		client.Close()
		<-done

		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ExitName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _ = ReadExit(dir)
	})
}
