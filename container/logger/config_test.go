package logger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseJSONFile: max-size is decimal, as dockerd's json-file logger
// reads it with go-units' FromHumanSize; max-file is at least 1; what
// does not parse is an error in dockerd's words.
func TestParseJSONFile(t *testing.T) {
	cases := []struct {
		opts  map[string]string
		size  int64
		files int
		err   string
	}{
		{nil, 0, 1, ""},
		{map[string]string{"max-size": "1k"}, 1000, 1, ""},
		{map[string]string{"max-size": "1m", "max-file": "3"}, 1000000, 3, ""},
		{map[string]string{"max-size": "10MB"}, 10000000, 1, ""},
		{map[string]string{"max-size": "1.5g"}, 1500000000, 1, ""},
		{map[string]string{"max-size": "512"}, 512, 1, ""},
		{map[string]string{"max-size": "abc"}, 0, 1, "invalid size: 'abc'"},
		{map[string]string{"max-size": "0"}, 0, 1, "max-size must be a positive number"},
		{map[string]string{"max-file": "x"}, 0, 1, `strconv.Atoi: parsing "x": invalid syntax`},
		{map[string]string{"max-file": "0"}, 0, 1, "max-file cannot be less than 1"},
		{map[string]string{"compress": "true"}, 0, 1, "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{map[string]string{"compress": "yes"}, 0, 1, `strconv.ParseBool: parsing "yes": invalid syntax`},
		{map[string]string{"compress": "true", "max-file": "2", "max-size": "1k"}, 1000, 2, ""},
	}
	for _, c := range cases {
		l, err := ParseJSONFile(c.opts)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("ParseJSONFile(%v): error %v, want %q", c.opts, err, c.err)
			}
			continue
		}
		if err != nil || l.MaxSize != c.size || l.MaxFiles != c.files {
			t.Errorf("ParseJSONFile(%v) = %+v, %v; want %d, %d", c.opts, l, err, c.size, c.files)
		}
	}
}

// TestValidate: dockerd's create-time checks, with its words.
func TestValidate(t *testing.T) {
	cases := []struct {
		driver string
		opts   map[string]string
		err    string
	}{
		{"json-file", nil, ""},
		{"json-file", map[string]string{"max-size": "bogus"}, ""}, // found at start
		{"bogus", nil, `error looking up logging plugin bogus: plugin "bogus" not found`},
		{"json-file", map[string]string{"foo": "bar"}, "unknown log opt 'foo' for json-file log driver"},
		{"none", map[string]string{"foo": "bar"}, ""},
		{"json-file", map[string]string{"mode": "bogus"}, "logger: logging mode not supported: bogus"},
		{"json-file", map[string]string{"max-buffer-size": "4m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
		{"json-file", map[string]string{"mode": "non-blocking", "max-buffer-size": "bogus"}, "error parsing option max-buffer-size: invalid size: 'bogus'"},
		{"json-file", map[string]string{"mode": "non-blocking", "max-buffer-size": "4m"}, ""},
		{"json-file", map[string]string{"cache-disabled": "maybe"}, "invalid value for option cache-disabled: maybe"},
		{"local", map[string]string{"foo": "bar"}, "unknown log opt 'foo' for log driver local"},
		{"local", map[string]string{"max-size": "10m", "max-file": "3", "compress": "false"}, ""},
		{"syslog", map[string]string{"foo": "bar"}, "unknown log opt 'foo' for syslog log driver"},
		{"syslog", map[string]string{"syslog-address": "bogus://x"}, "syslog-address should be in form proto://address, got bogus://x"},
		{"syslog", map[string]string{"syslog-address": "unix:///nonexistent/sock"}, "stat /nonexistent/sock: no such file or directory"},
		{"syslog", map[string]string{"syslog-facility": "bogus"}, "invalid syslog facility"},
		{"syslog", map[string]string{"syslog-format": "bogus"}, "Invalid syslog format"},
		{"syslog", map[string]string{"syslog-address": "tcp+tls://127.0.0.1:1", "syslog-facility": "local3", "syslog-format": "rfc5424micro", "tag": "x"}, ""},
		{"fluentd", map[string]string{"foo": "bar"}, "unknown log opt 'foo' for fluentd log driver"},
		{"fluentd", map[string]string{"fluentd-async": "true", "fluentd-async-connect": "true"}, "conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect"},
		{"fluentd", map[string]string{"fluentd-address": "127.0.0.1:x"}, "invalid fluentd-address 127.0.0.1:x: strconv.Atoi: parsing \"x\": invalid syntax"},
		{"fluentd", map[string]string{"fluentd-retry-wait": "x"}, `time: invalid duration "x"`},
		{"fluentd", map[string]string{"fluentd-address": "127.0.0.1:24224", "fluentd-async": "true", "fluentd-buffer-limit": "8m"}, ""},
		{"gelf", nil, "gelf-address is a required parameter"},
		{"gelf", map[string]string{"gelf-address": "127.0.0.1:1"}, "gelf-address should be in form proto://address, got 127.0.0.1:1"},
		{"gelf", map[string]string{"gelf-address": "unix:///x"}, "gelf: endpoint needs to be TCP or UDP"},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1"}, "gelf: please provide gelf-address as proto://host:port"},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1:1", "foo": "bar"}, `unknown log opt "foo" for gelf log driver`},
		{"gelf", map[string]string{"gelf-address": "tcp://127.0.0.1:1", "gelf-compression-type": "gzip"}, "compression is only supported on UDP"},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1:1", "gelf-compression-type": "bogus"}, `unknown value "bogus" for log opt "gelf-compression-type" for gelf log driver`},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1:1", "gelf-tcp-max-reconnect": "3"}, `"gelf-tcp-max-reconnect" is only valid for TCP`},
		{"gelf", map[string]string{"gelf-address": "tcp://127.0.0.1:1", "gelf-tcp-reconnect-delay": "-1"}, `"gelf-tcp-reconnect-delay" must be a positive integer`},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1:1", "gelf-compression-level": "9", "mode": "non-blocking"}, ""},
		{"journald", map[string]string{"foo": "bar"}, "unknown log opt 'foo' for journald log driver"},
		{"journald", map[string]string{"tag": "{{.Name}}", "labels": "a"}, ""},
	}
	for _, c := range cases {
		err := Validate(c.driver, c.opts)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.err {
			t.Errorf("Validate(%s, %v) = %q, want %q", c.driver, c.opts, got, c.err)
		}
	}
}

// TestMergeDefaults: the daemon's default driver and its options fill in
// a container's as dockerd's mergeAndVerifyLogConfig does.
func TestMergeDefaults(t *testing.T) {
	def := map[string]string{"max-size": "10m", "cache-disabled": "true"}
	d, o := MergeDefaults("", nil, "json-file", def)
	if d != "json-file" || o["max-size"] != "10m" || o["cache-disabled"] != "true" {
		t.Errorf("no driver: %s %v", d, o)
	}
	d, o = MergeDefaults("json-file", map[string]string{"max-size": "1m"}, "json-file", def)
	if d != "json-file" || o["max-size"] != "1m" {
		t.Errorf("own option: %s %v", d, o)
	}
	d, o = MergeDefaults("syslog", nil, "json-file", def)
	if d != "syslog" || o["max-size"] != "" || o["cache-disabled"] != "true" {
		t.Errorf("other driver: only the cache options: %s %v", d, o)
	}
	d, o = MergeDefaults("", nil, "", nil)
	if d != "json-file" || o == nil || len(o) != 0 {
		t.Errorf("nothing: %s %v", d, o)
	}
}

// TestParseLocal: the local driver's and the cache's defaults (20 MiB, 5
// files, compressed) and errors.
func TestParseLocal(t *testing.T) {
	l, err := ParseLocal(nil)
	if err != nil || l.MaxSize != 20*1024*1024 || l.MaxFiles != 5 || !l.Compress {
		t.Errorf("defaults: %+v %v", l, err)
	}
	if _, err := ParseLocal(map[string]string{"max-file": "1"}); err == nil || err.Error() != "compression cannot be enabled when max file count is 1" {
		t.Errorf("max-file 1 with compression: %v", err)
	}
	if _, err := ParseLocal(map[string]string{"max-size": "bogus"}); err == nil || err.Error() != "invalid value for max-size: bogus: invalid size: 'bogus'" {
		t.Errorf("bad max-size: %v", err)
	}
	l, err = ParseCache(map[string]string{"cache-max-size": "1m", "cache-max-file": "2", "max-size": "bogus"})
	if err != nil || l.MaxSize != 1000000 || l.MaxFiles != 2 {
		t.Errorf("cache: %+v %v", l, err)
	}
}

// TestCompressedRotation: with compress, rotated files are gzipped
// (path.1.gz, path.2.gz) and read back in order with the current one.
func TestCompressedRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 300, 3, WithCompress(true))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := w.Write(Entry{Log: fmt.Sprintf("line-%02d\n", i), Stream: "stdout", Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	for _, p := range []string{path + ".1.gz", path + ".2.gz"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("rotated file: %v", err)
		}
	}
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Errorf("an uncompressed rotated file is left")
	}
	var got []string
	if err := Read(context.Background(), path, 3, ReadOptions{Tail: -1}, func(e Entry) error {
		got = append(got, strings.TrimSpace(e.Log))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) < 5 || got[len(got)-1] != "line-19" {
		t.Fatalf("read back %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order: %v", got)
		}
	}
}
