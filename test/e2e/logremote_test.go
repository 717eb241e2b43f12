package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Remote logging drivers (issue 11 item 5): syslog, gelf and fluentd
// against listeners the test makes on loopback; dual logging (docker logs
// reads a local cache); an endpoint that refuses fails the start with
// dockerd's words; one that stops reading never stalls the container.

// tcpCollector accepts connections and gathers all they send.
type tcpCollector struct {
	l    net.Listener
	data chan []byte
}

func newTCPCollector(t *testing.T) *tcpCollector {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &tcpCollector{l: l, data: make(chan []byte, 1024)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 64*1024)
				for {
					n, err := conn.Read(buf)
					if n > 0 {
						c.data <- append([]byte(nil), buf[:n]...)
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return c
}

func (c *tcpCollector) port() int { return c.l.Addr().(*net.TCPAddr).Port }

// waitFor gathers what arrives until all of parts were seen.
func waitFor(t *testing.T, ch <-chan []byte, parts ...string) string {
	t.Helper()
	var all bytes.Buffer
	deadline := time.After(30 * time.Second)
	for {
		ok := true
		for _, p := range parts {
			if !strings.Contains(all.String(), p) {
				ok = false
			}
		}
		if ok {
			return all.String()
		}
		select {
		case b := <-ch:
			all.Write(b)
		case <-deadline:
			t.Fatalf("the endpoint never got %q; got %q", parts, clip(all.String()))
		}
	}
}

func udpCollector(t *testing.T) (int, <-chan []byte) {
	t.Helper()
	pc, ch := packetCollector(t, "udp", "127.0.0.1:0")
	return pc.LocalAddr().(*net.UDPAddr).Port, ch
}

// packetCollector listens for datagrams on network/addr until the test
// ends and passes each one on.
func packetCollector(t *testing.T, network, addr string) (net.PacketConn, <-chan []byte) {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ch := make(chan []byte, 1024)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			ch <- append([]byte(nil), buf[:n]...)
		}
	}()
	return pc, ch
}

// TestLogRemoteRefused: a TCP endpoint that refuses fails the start with
// dockerd's words; the container stays created with that error.
func TestLogRemoteRefused(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	p := strconv.Itoa(closedPort(t))
	refused := "dial tcp 127.0.0.1:" + p + ": connect: connection refused"
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-address=tcp://127.0.0.1:" + p}, refused},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-address=tcp+tls://127.0.0.1:" + p}, refused},
		{[]string{"--log-driver", "fluentd", "--log-opt", "fluentd-address=127.0.0.1:" + p, "--log-opt", "fluentd-max-retries=0"}, refused},
		{[]string{"--log-driver", "gelf", "--log-opt", "gelf-address=tcp://127.0.0.1:" + p}, "gelf: cannot connect to GELF endpoint: 127.0.0.1:" + p + " " + refused},
	} {
		name := ctrName(t, "logrefused")
		c.ok(append(append([]string{"create", "--name", name}, tc.args...), "busybox", "echo", "x")...)
		c.fail([]string{"start", name}, "Error response from daemon: failed to initialize logging driver: "+tc.msg)
		ct := inspectCtr(t, a, name)
		if ct.State.Status != "created" || ct.State.ExitCode != 128 || !strings.Contains(ct.State.Error, tc.msg) {
			t.Errorf("%v: status %q exit %d error %q; want created, 128, %q", tc.args, ct.State.Status, ct.State.ExitCode, ct.State.Error, tc.msg)
		}
	}
	// fluentd-async connects later: the container runs.
	name := ctrName(t, "logasync")
	r := c.ok("run", "--name", name, "--log-driver", "fluentd", "--log-opt", "fluentd-address=127.0.0.1:"+p, "--log-opt", "fluentd-async=true", "busybox", "echo", "async-ok")
	if r.Stdout != "async-ok\n" {
		t.Errorf("fluentd-async run: %q", r.Stdout)
	}
}

// TestLogRemoteSyslog: RFC 3164-ish lines with the tag, over UDP and TCP;
// docker logs reads the local cache.
func TestLogRemoteSyslog(t *testing.T) {
	busybox(t)
	c := cli(t, "docker")
	up, uch := udpCollector(t)
	name := ctrName(t, "logsyslog")
	c.ok("run", "--name", name, "--log-driver", "syslog", "--log-opt", "syslog-address=udp://127.0.0.1:"+strconv.Itoa(up),
		"--log-opt", "tag=tag-{{.Name}}", "--log-opt", "syslog-facility=local3", "busybox", "sh", "-c", "echo hello-udp; echo oops-udp >&2")
	got := waitFor(t, uch, "hello-udp", "oops-udp")
	// local3 (19) * 8 + info (6) = 158; err (3) = 155.
	if !strings.Contains(got, "<158>") || !strings.Contains(got, "<155>") || !strings.Contains(got, "tag-"+name) {
		t.Errorf("syslog over udp: %q; want priorities <158> and <155> and the tag tag-%s", got, name)
	}
	if r := c.ok("logs", name); r.Stdout != "hello-udp\n" || r.Stderr != "oops-udp\n" {
		t.Errorf("docker logs (local cache): %q %q", r.Stdout, r.Stderr)
	}

	tc := newTCPCollector(t)
	name = ctrName(t, "logsyslog")
	c.ok("run", "--name", name, "--log-driver", "syslog", "--log-opt", "syslog-address=tcp://127.0.0.1:"+strconv.Itoa(tc.port()),
		"--log-opt", "syslog-format=rfc5424", "busybox", "echo", "hello-tcp")
	got = waitFor(t, tc.data, "hello-tcp")
	id := inspectCtr(t, env.d.api(), name).ID
	if !strings.Contains(got, "<30>1 ") || !strings.Contains(got, id[:12]) {
		t.Errorf("syslog rfc5424 over tcp: %q; want <30>1 and the default tag %s", got, id[:12])
	}
}

// gelfMessage decodes one GELF datagram (gzip, zlib or plain JSON).
func gelfMessage(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	switch {
	case len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b:
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case len(b) > 1 && b[0] == 0x78:
		zr, err := zlib.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	var m map[string]any
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		t.Fatalf("gelf message %q: %v", clip(string(b)), err)
	}
	return m
}

// TestLogRemoteGelf: GELF 1.1 over UDP (gzip by default) and TCP (JSON,
// NUL-delimited), with the container's fields.
func TestLogRemoteGelf(t *testing.T) {
	busybox(t)
	c := cli(t, "docker")
	up, uch := udpCollector(t)
	name := ctrName(t, "loggelf")
	c.ok("run", "--name", name, "--log-driver", "gelf", "--log-opt", "gelf-address=udp://127.0.0.1:"+strconv.Itoa(up),
		"--label", "team=x", "--log-opt", "labels=team", "busybox", "echo", "hello-gelf")
	select {
	case b := <-uch:
		m := gelfMessage(t, b)
		if m["short_message"] != "hello-gelf" || m["_container_name"] != name || m["_image_name"] != "busybox" || m["_team"] != "x" || m["version"] != "1.1" || m["level"] != float64(6) {
			t.Errorf("gelf message %v", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no GELF datagram")
	}
	if r := c.ok("logs", name); r.Stdout != "hello-gelf\n" {
		t.Errorf("docker logs (local cache): %q", r.Stdout)
	}

	tc := newTCPCollector(t)
	name = ctrName(t, "loggelf")
	c.ok("run", "--name", name, "--log-driver", "gelf", "--log-opt", "gelf-address=tcp://127.0.0.1:"+strconv.Itoa(tc.port()), "busybox", "sh", "-c", "echo bad-gelf >&2")
	got := waitFor(t, tc.data, "\x00")
	m := gelfMessage(t, []byte(strings.Split(got, "\x00")[0]))
	if m["short_message"] != "bad-gelf" || m["level"] != float64(3) {
		t.Errorf("gelf over tcp: %v", m)
	}
}

// TestLogRemoteFluentd: fluentd's forward protocol (msgpack) carries the
// tag, the line and the container's name.
func TestLogRemoteFluentd(t *testing.T) {
	busybox(t)
	c := cli(t, "docker")
	tc := newTCPCollector(t)
	name := ctrName(t, "logfluent")
	c.ok("run", "--name", name, "--log-driver", "fluentd", "--log-opt", "fluentd-address=127.0.0.1:"+strconv.Itoa(tc.port()),
		"--log-opt", "tag=ft.{{.Name}}", "busybox", "echo", "hello-fluentd")
	waitFor(t, tc.data, "ft."+name, "hello-fluentd", "container_name", "/"+name, "stdout")
	if r := c.ok("logs", name); r.Stdout != "hello-fluentd\n" {
		t.Errorf("docker logs (local cache): %q", r.Stdout)
	}
}

// stalledListener accepts connections and never reads from them.
func stalledListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// TestLogRemoteStalledNeverBlocks: an endpoint that takes the connection
// and then reads nothing: the container writes 300,000 lines and exits
// at once, with mode=non-blocking (past max-buffer-size entries are
// dropped for the endpoint) and in the default mode alike, and docker
// logs has every line from the local cache.
func TestLogRemoteStalledNeverBlocks(t *testing.T) {
	busybox(t)
	onlyBerth(t, "dockerd 20.10 never finishes such a container (docker wait hangs), even with mode=non-blocking: its ring drains into the stalled syslog connection at exit")
	c := cli(t, "docker")
	const n = 300000
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo line-$i-padding-padding-padding-padding; i=$((i+1)); done", n)
	run := func(mode ...string) string {
		name := ctrName(t, "logstall")
		args := []string{"run", "-d", "--name", name, "--log-driver", "syslog", "--log-opt", "syslog-address=tcp://127.0.0.1:" + strconv.Itoa(stalledListener(t))}
		args = append(args, mode...)
		c.ok(append(args, "busybox", "sh", "-c", script)...)
		r := c.runTimeout(120*time.Second, nil, "wait", name)
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
			t.Fatalf("%v: the container did not finish writing (wait: exit %d %q %q)", mode, r.Code, r.Stdout, r.Stderr)
		}
		return name
	}
	run("--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=1m")
	name := run()
	r := c.ok("logs", "--tail", "1", name)
	if want := fmt.Sprintf("line-%d-padding-padding-padding-padding\n", n-1); r.Stdout != want {
		t.Errorf("docker logs --tail 1: %q, want %q", r.Stdout, want)
	}
	cnt := 0
	sc := bufio.NewScanner(strings.NewReader(c.ok("logs", name).Stdout))
	for sc.Scan() {
		cnt++
	}
	if cnt != n {
		t.Errorf("docker logs: %d lines, want %d (the local cache keeps all)", cnt, n)
	}
}

// selfSignedTLS is a TLS listener on loopback with a throwaway
// certificate; it gathers what clients send.
func selfSignedTLS(t *testing.T) (int, <-chan []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan []byte, 1024)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 65536)
				for {
					n, err := conn.Read(buf)
					if n > 0 {
						ch <- append([]byte(nil), buf[:n]...)
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, ch
}

// TestLogRemoteSyslogTLSAndUnix: tcp+tls (RFC 5425 length framing with
// rfc5424) and a unix datagram socket.
func TestLogRemoteSyslogTLSAndUnix(t *testing.T) {
	busybox(t)
	c := cli(t, "docker")
	p, ch := selfSignedTLS(t)
	name := ctrName(t, "logtls")
	c.ok("run", "--name", name, "--log-driver", "syslog", "--log-opt", "syslog-address=tcp+tls://127.0.0.1:"+strconv.Itoa(p),
		"--log-opt", "syslog-tls-skip-verify=true", "--log-opt", "syslog-format=rfc5424", "--log-opt", "tag=tlstag",
		"busybox", "echo", "hello-tls")
	got := waitFor(t, ch, "hello-tls")
	// RFC 5425: the message's length, a space, the message.
	if n, rest, ok := strings.Cut(got, " "); !ok || !strings.HasPrefix(rest, "<30>1 ") || !strings.Contains(rest, " tlstag ") {
		t.Errorf("syslog over tls: %q; want a length-framed rfc5424 message with the tag", got)
	} else if _, err := strconv.Atoi(n); err != nil {
		t.Errorf("syslog over tls: no length frame: %q", got)
	}

	sock := filepath.Join(t.TempDir(), "syslog.sock")
	_, uch := packetCollector(t, "unixgram", sock)
	name = ctrName(t, "logunix")
	c.ok("run", "--name", name, "--log-driver", "syslog", "--log-opt", "syslog-address=unixgram://"+sock, "--log-opt", "tag=unixtag",
		"busybox", "echo", "hello-unix")
	if got := waitFor(t, uch, "hello-unix"); !strings.Contains(got, "<30>") || !strings.Contains(got, "unixtag") {
		t.Errorf("syslog over a unix socket: %q", got)
	}
}
