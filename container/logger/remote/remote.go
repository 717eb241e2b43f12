// Package remote sends container log entries to the remote logging
// drivers (syslog, fluentd, gelf, journald) with the libraries dockerd
// uses, from the shim. A Queue stands between the container's output
// and the endpoint: the output is never held up by it, whatever the
// endpoint does (down, slow, gone): past the queue's size, entries are
// dropped and counted.
package remote

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Graylog2/go-gelf/gelf"
	syslog "github.com/RackSec/srslog"
	"github.com/fluent/fluent-logger-golang/fluent"

	"github.com/berth/berth/container/logger"
)

// Sender delivers entries to one endpoint. Send may block (the Queue
// runs it on its own goroutine).
type Sender interface {
	Send(e logger.Entry) error
	Close() error
}

// Dial connects to the endpoint a configuration names, as dockerd's
// drivers do when the container starts: a TCP endpoint that refuses is
// an error here (the start fails), UDP and async fluentd are not.
func Dial(r *logger.Remote) (Sender, error) {
	switch r.Driver {
	case logger.Syslog:
		return dialSyslog(r)
	case logger.Fluentd:
		return dialFluentd(r)
	case logger.Gelf:
		return dialGelf(r)
	case logger.Journald:
		return dialJournald(r)
	}
	return nil, fmt.Errorf("logger: no log driver named '%s' is registered", r.Driver)
}

// line is an entry's text as the drivers send it: without its newline.
func line(e logger.Entry) string { return strings.TrimSuffix(e.Log, "\n") }

type syslogSender struct{ w *syslog.Writer }

func dialSyslog(r *logger.Remote) (Sender, error) {
	ep, err := logger.ParseSyslogAddress(r.Opts["syslog-address"])
	if err != nil {
		return nil, err
	}
	facility, err := logger.SyslogFacility(r.Opts["syslog-facility"])
	if err != nil {
		return nil, err
	}
	prio := syslog.Priority(facility << 3)
	formatter, framer := syslog.UnixFormatter, syslog.Framer(syslog.DefaultFramer)
	tlsProto := ep.Network == "tcp+tls"
	switch r.Opts["syslog-format"] {
	case "rfc3164":
		formatter = syslog.RFC3164Formatter
	case "rfc5424":
		formatter = rfc5424(time.RFC3339)
	case "rfc5424micro":
		formatter = rfc5424("2006-01-02T15:04:05.000000Z07:00")
	}
	if tlsProto && strings.HasPrefix(r.Opts["syslog-format"], "rfc5424") {
		framer = syslog.RFC5425MessageLengthFramer
	}
	var w *syslog.Writer
	if tlsProto {
		cfg, err := syslogTLS(r.Opts)
		if err != nil {
			return nil, err
		}
		w, err = syslog.DialWithTLSConfig(ep.Network, ep.Addr, prio, r.Tag, cfg)
		if err != nil {
			return nil, err
		}
	} else if w, err = syslog.Dial(ep.Network, ep.Addr, prio, r.Tag); err != nil {
		return nil, err
	}
	w.SetFormatter(formatter)
	w.SetFramer(framer)
	return &syslogSender{w: w}, nil
}

// rfc5424 formats as dockerd's syslog driver does: the tag is the
// app-name too, the process ID the sender's.
func rfc5424(layout string) syslog.Formatter {
	return func(p syslog.Priority, hostname, tag, content string) string {
		return fmt.Sprintf("<%d>%d %s %s %s %d %s - %s", p, 1, time.Now().Format(layout), hostname, tag, os.Getpid(), tag, content)
	}
}

// syslogTLS is the client side of tcp+tls: the CA, client certificate
// and key files the options name, or no verification at all.
func syslogTLS(opts map[string]string) (*tls.Config, error) {
	_, skip := opts["syslog-tls-skip-verify"]
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skip} //nolint:gosec // the user's choice
	if ca := opts["syslog-tls-ca-cert"]; ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("could not read CA certificate %q: %w", ca, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("failed to append certificates from PEM file: %q", ca)
		}
		cfg.RootCAs = pool
	}
	if cert, key := opts["syslog-tls-cert"], opts["syslog-tls-key"]; cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("could not load X509 key pair: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func (s *syslogSender) Send(e logger.Entry) error {
	l := line(e)
	if l == "" {
		return nil
	}
	if e.Stream == "stderr" {
		return s.w.Err(l)
	}
	return s.w.Info(l)
}

func (s *syslogSender) Close() error { return s.w.Close() }

type fluentdSender struct {
	f    *fluent.Fluent
	r    *logger.Remote
	base map[string]string
}

func dialFluentd(r *logger.Remote) (Sender, error) {
	c, err := logger.ParseFluentd(r.Opts)
	if err != nil {
		return nil, err
	}
	cfg := fluent.Config{
		FluentNetwork:      c.Endpoint.Network,
		BufferLimit:        int(c.BufferLimit),
		RetryWait:          int(c.RetryWait / time.Millisecond),
		MaxRetry:           c.MaxRetries,
		Async:              c.Async,
		ForceStopAsyncSend: c.Async,
		SubSecondPrecision: c.SubSecondPrecision,
		RequestAck:         c.RequestAck,
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = 1
	}
	if cfg.MaxRetry == 0 {
		cfg.MaxRetry = 1 // the library's 0 means its default (13)
	}
	if c.Endpoint.Network == "unix" || c.Endpoint.Network == "unixgram" {
		cfg.FluentSocketPath = c.Endpoint.Addr
	} else {
		host, port, err := net.SplitHostPort(c.Endpoint.Addr)
		if err != nil {
			return nil, err
		}
		cfg.FluentHost = host
		if cfg.FluentPort, err = strconv.Atoi(port); err != nil {
			return nil, err
		}
	}
	f, err := fluent.New(cfg)
	if err != nil {
		return nil, err
	}
	base := map[string]string{"container_id": r.ContainerID, "container_name": r.ContainerName}
	return &fluentdSender{f: f, r: r, base: base}, nil
}

func (s *fluentdSender) Send(e logger.Entry) error {
	data := make(map[string]string, len(s.base)+len(s.r.Extra)+2)
	for k, v := range s.base {
		data[k] = v
	}
	data["source"] = e.Stream
	data["log"] = line(e)
	for k, v := range s.r.Extra {
		data[k] = v
	}
	return s.f.PostWithTime(s.r.Tag, e.Time, data)
}

func (s *fluentdSender) Close() error { return s.f.Close() }

type gelfSender struct {
	w        gelf.Writer
	host     string
	rawExtra json.RawMessage
}

func dialGelf(r *logger.Remote) (Sender, error) {
	ep, err := logger.ParseGelfAddress(r.Opts["gelf-address"])
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, errors.New("gelf: cannot access hostname to set source field")
	}
	extra := map[string]any{
		"_container_id":   r.ContainerID,
		"_container_name": strings.TrimPrefix(r.ContainerName, "/"),
		"_image_id":       r.ImageID,
		"_image_name":     r.ImageName,
		"_command":        r.Command,
		"_tag":            r.Tag,
		"_created":        r.Created,
	}
	for k, v := range r.Extra {
		if !strings.HasPrefix(k, "_") {
			k = "_" + k
		}
		extra[k] = v
	}
	raw, err := json.Marshal(extra)
	if err != nil {
		return nil, err
	}
	var w gelf.Writer
	if ep.Network == "udp" {
		uw, err := gelf.NewUDPWriter(ep.Addr)
		if err != nil {
			return nil, fmt.Errorf("gelf: cannot connect to GELF endpoint: %s %v", ep.Addr, err)
		}
		switch r.Opts["gelf-compression-type"] {
		case "zlib":
			uw.CompressionType = gelf.CompressZlib
		case "none":
			uw.CompressionType = gelf.CompressNone
		}
		if v := r.Opts["gelf-compression-level"]; v != "" {
			_, _ = fmt.Sscan(v, &uw.CompressionLevel)
		}
		w = uw
	} else {
		tw, err := gelf.NewTCPWriter(ep.Addr)
		if err != nil {
			return nil, fmt.Errorf("gelf: cannot connect to GELF endpoint: %s %v", ep.Addr, err)
		}
		if v := r.Opts["gelf-tcp-max-reconnect"]; v != "" {
			_, _ = fmt.Sscan(v, &tw.MaxReconnect)
		}
		if v := r.Opts["gelf-tcp-reconnect-delay"]; v != "" {
			var secs int
			_, _ = fmt.Sscan(v, &secs)
			tw.ReconnectDelay = time.Duration(secs)
		}
		w = tw
	}
	return &gelfSender{w: w, host: host, rawExtra: raw}, nil
}

func (s *gelfSender) Send(e logger.Entry) error {
	level := int32(gelf.LOG_INFO)
	if e.Stream == "stderr" {
		level = gelf.LOG_ERR
	}
	m := gelf.Message{
		Version:  "1.1",
		Host:     s.host,
		Short:    line(e),
		TimeUnix: float64(e.Time.UnixNano()) / float64(time.Second),
		Level:    level,
		RawExtra: s.rawExtra,
	}
	if err := s.w.WriteMessage(&m); err != nil {
		return fmt.Errorf("gelf: cannot send GELF message: %v", err)
	}
	return nil
}

func (s *gelfSender) Close() error { return s.w.Close() }

// Queue hands entries to a Sender from its own goroutine. Log never
// blocks: past max bytes waiting, an entry is dropped and counted.
type Queue struct {
	s      Sender
	max    int64
	report func(string)

	mu      sync.Mutex
	cond    *sync.Cond
	q       []logger.Entry
	size    int64
	closing bool
	dropped int64
	failing bool

	done chan struct{}
}

// NewQueue starts delivering to s; report (if any) hears when entries
// start being dropped or fail to send, and when they stop.
func NewQueue(s Sender, max int64, report func(string)) *Queue {
	q := &Queue{s: s, max: max, report: report, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// Log queues e for sending, or drops it when the queue is full.
func (q *Queue) Log(e logger.Entry) {
	n := int64(len(e.Log))
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return
	}
	if q.size+n > q.max && len(q.q) > 0 {
		if q.dropped == 0 && q.report != nil {
			q.report(fmt.Sprintf("log endpoint too slow: buffer of %d bytes full, dropping entries", q.max))
		}
		q.dropped++
		return
	}
	q.q = append(q.q, e)
	q.size += n
	q.cond.Signal()
}

// Dropped is how many entries were dropped for want of room.
func (q *Queue) Dropped() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

func (q *Queue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.q) == 0 && !q.closing {
			q.cond.Wait()
		}
		if len(q.q) == 0 {
			q.mu.Unlock()
			return
		}
		e := q.q[0]
		q.q[0] = logger.Entry{}
		q.q = q.q[1:]
		q.size -= int64(len(e.Log))
		q.mu.Unlock()
		err := q.s.Send(e)
		q.mu.Lock()
		if err != nil && !q.failing && q.report != nil {
			q.report("sending log entries: " + err.Error())
		}
		if err == nil && q.failing && q.report != nil {
			q.report("sending log entries again")
		}
		q.failing = err != nil
		q.mu.Unlock()
	}
}

// Close sends what is queued, waiting at most d for the endpoint, then
// closes the sender.
func (q *Queue) Close(d time.Duration) error {
	q.mu.Lock()
	q.closing = true
	q.cond.Signal()
	q.mu.Unlock()
	select {
	case <-q.done:
	case <-time.After(d):
		if q.report != nil {
			q.report("log endpoint did not take the last entries in time; leaving them")
		}
	}
	return q.s.Close()
}
