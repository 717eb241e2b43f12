package logger

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	units "github.com/docker/go-units"
)

// The logging drivers berth has, by Docker's names.
const (
	JSONFile = "json-file"
	Local    = "local"
	None     = "none"
	Syslog   = "syslog"
	Journald = "journald"
	Fluentd  = "fluentd"
	Gelf     = "gelf"
)

// DefaultDriver is the driver of a container that names none, unless the
// daemon's configuration (log-driver) says otherwise.
const DefaultDriver = JSONFile

// Modes of delivery (log-opt mode): blocking (the default) and
// non-blocking, which buffers up to max-buffer-size and drops past it.
const (
	ModeBlocking    = "blocking"
	ModeNonBlocking = "non-blocking"
)

// Options every driver takes (dockerd's built-in log opts): the delivery
// mode and the local cache of drivers that cannot be read back.
var builtinOpts = map[string]bool{
	"mode":            true,
	"max-buffer-size": true,
	"cache-disabled":  true,
	"cache-max-size":  true,
	"cache-max-file":  true,
	"cache-compress":  true,
}

// cacheOpts are the built-in options a daemon default carries into every
// container, whatever its driver (dockerd's MergeDefaultLogConfig).
var cacheOpts = []string{"cache-disabled", "cache-max-size", "cache-max-file", "cache-compress"}

// metaOpts are the options of every driver that writes metadata: which
// labels and environment variables to attach, and the tag.
var metaOpts = []string{"env", "env-regex", "labels", "labels-regex", "tag"}

// driverOpts are each driver's own option names.
var driverOpts = map[string][]string{
	JSONFile: append([]string{"max-file", "max-size", "compress"}, metaOpts...),
	Local:    {"max-file", "max-size", "compress"},
	Syslog: append([]string{"syslog-address", "syslog-facility", "syslog-tls-ca-cert", "syslog-tls-cert",
		"syslog-tls-key", "syslog-tls-skip-verify", "syslog-format"}, metaOpts...),
	Journald: metaOpts,
	Fluentd: append([]string{"fluentd-address", "fluentd-async", "fluentd-async-connect", "fluentd-buffer-limit",
		"fluentd-max-retries", "fluentd-request-ack", "fluentd-retry-wait", "fluentd-sub-second-precision"}, metaOpts...),
	Gelf: append([]string{"gelf-address", "gelf-compression-level", "gelf-compression-type",
		"gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay"}, metaOpts...),
}

// Drivers lists the drivers berth has, for info.
func Drivers() []string {
	return []string{Fluentd, Gelf, JSONFile, Journald, Local, Syslog}
}

// Validate checks a container's (or the daemon's default) log
// configuration as dockerd does at create, with its words: the mode and
// buffer options, the cache options, that the driver exists and each
// option is one of the driver's. Values that only a driver's start reads
// (json-file's max-size, say) are checked by Parse at start, as dockerd
// does. The none driver takes anything (the docker CLI refuses options
// with it itself).
func Validate(driver string, opts map[string]string) error {
	if driver == None {
		return nil
	}
	switch opts["mode"] {
	case "", ModeBlocking, ModeNonBlocking:
	default:
		return fmt.Errorf("logger: logging mode not supported: %s", opts["mode"])
	}
	if s, ok := opts["max-buffer-size"]; ok {
		if opts["mode"] != ModeNonBlocking {
			return fmt.Errorf("logger: max-buffer-size option is only supported with 'mode=%s'", ModeNonBlocking)
		}
		if _, err := units.RAMInBytes(s); err != nil {
			return fmt.Errorf("error parsing option max-buffer-size: %w", err)
		}
	}
	if v := opts["cache-disabled"]; v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("invalid value for option cache-disabled: %s", v)
		}
	}
	known, ok := driverOpts[driver]
	if !ok {
		// dockerd looks for a plugin of that name and finds none.
		return fmt.Errorf("error looking up logging plugin %s: plugin %q not found", driver, driver)
	}
	// One key at a time in a fixed order, so that the error names the
	// same key every time (dockerd's map order picks one by chance).
	keys := make([]string, 0, len(opts))
	for k := range opts {
		if !builtinOpts[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if driver == Gelf {
		return validateGelf(keys, opts)
	}
	for _, k := range keys {
		if contains(known, k) {
			continue
		}
		if driver == Local {
			return fmt.Errorf("unknown log opt '%s' for log driver %s", k, driver)
		}
		return fmt.Errorf("unknown log opt '%s' for %s log driver", k, driver)
	}
	switch driver {
	case Syslog:
		if _, err := ParseSyslogAddress(opts["syslog-address"]); err != nil {
			return err
		}
		if _, err := SyslogFacility(opts["syslog-facility"]); err != nil {
			return err
		}
		switch opts["syslog-format"] {
		case "", "rfc3164", "rfc5424", "rfc5424micro":
		default:
			return errors.New("Invalid syslog format")
		}
	case Fluentd:
		if _, err := ParseFluentd(opts); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// MergeDefaults completes a container's log configuration from the
// daemon's default as dockerd does at create: no driver means the
// default's, the default's options fill in those of a container of the
// same driver, and the cache options apply to every driver.
func MergeDefaults(driver string, opts map[string]string, defDriver string, defOpts map[string]string) (string, map[string]string) {
	if defDriver == "" {
		defDriver = DefaultDriver
	}
	if driver == "" {
		driver = defDriver
	}
	if opts == nil {
		opts = map[string]string{}
	}
	if driver == defDriver {
		for k, v := range defOpts {
			if _, ok := opts[k]; !ok {
				opts[k] = v
			}
		}
	}
	for _, k := range cacheOpts {
		if v, ok := defOpts[k]; ok {
			if _, set := opts[k]; !set {
				opts[k] = v
			}
		}
	}
	return driver, opts
}

// FileLimits is how a log file rotates.
type FileLimits struct {
	MaxSize  int64 // bytes; 0: never rotate
	MaxFiles int   // files kept in all, at least 1
	Compress bool  // rotated files are gzipped
}

// ParseJSONFile reads json-file's options as its start does in dockerd,
// with its errors: max-size by go-units' FromHumanSize (decimal: "1k" is
// 1000 bytes) and positive, max-file an integer of at least 1, compress
// a boolean that needs both.
func ParseJSONFile(opts map[string]string) (FileLimits, error) {
	l := FileLimits{MaxFiles: 1}
	if v, ok := opts["max-size"]; ok {
		n, err := units.FromHumanSize(v)
		if err != nil {
			return l, err
		}
		if n <= 0 {
			return l, errors.New("max-size must be a positive number")
		}
		l.MaxSize = n
	}
	if v, ok := opts["max-file"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return l, err
		}
		if n < 1 {
			return l, errors.New("max-file cannot be less than 1")
		}
		l.MaxFiles = n
	}
	if v, ok := opts["compress"]; ok {
		c, err := strconv.ParseBool(v)
		if err != nil {
			return l, err
		}
		if c && (l.MaxFiles == 1 || l.MaxSize == 0) {
			return l, errors.New("compress cannot be true when max-file is less than 2 or max-size is not set")
		}
		l.Compress = c
	}
	return l, nil
}

// The local driver's defaults (and those of the cache of drivers that
// cannot be read back): 20 MB files, 5 of them, rotated ones compressed.
const (
	localDefaultMaxSize  = 20 * 1024 * 1024
	localDefaultMaxFiles = 5
)

// ParseLocal reads the local driver's options as its start does in
// dockerd, with its errors.
func ParseLocal(opts map[string]string) (FileLimits, error) { return parseLocal(opts, "") }

// ParseCache reads the cache options (cache-max-size, cache-max-file,
// cache-compress) of a driver that cannot be read back.
func ParseCache(opts map[string]string) (FileLimits, error) { return parseLocal(opts, "cache-") }

func parseLocal(opts map[string]string, prefix string) (FileLimits, error) {
	l := FileLimits{MaxSize: localDefaultMaxSize, MaxFiles: localDefaultMaxFiles, Compress: true}
	if v, ok := opts[prefix+"max-size"]; ok {
		n, err := units.FromHumanSize(v)
		if err != nil {
			return l, fmt.Errorf("invalid value for max-size: %s: %w", v, err)
		}
		l.MaxSize = n
	}
	if v, ok := opts[prefix+"max-file"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return l, fmt.Errorf("invalid value for max-file: %s: %w", v, err)
		}
		l.MaxFiles = n
	}
	if v, ok := opts[prefix+"compress"]; ok {
		c, err := strconv.ParseBool(v)
		if err != nil {
			return l, fmt.Errorf("error reading compress log option: %w", err)
		}
		l.Compress = c
	}
	if l.MaxSize < 0 {
		return l, errors.New("max size should be a positive number")
	}
	if l.MaxFiles < 0 {
		return l, errors.New("max file count cannot be less than 0")
	}
	if l.Compress && l.MaxFiles <= 1 {
		return l, errors.New("compression cannot be enabled when max file count is 1")
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = 1
	}
	return l, nil
}

// CacheEnabled says whether a driver that cannot be read back keeps a
// local copy for docker logs (dual logging; cache-disabled=true turns it
// off).
func CacheEnabled(opts map[string]string) bool {
	v := opts["cache-disabled"]
	if v == "" {
		return true
	}
	b, err := strconv.ParseBool(v)
	return err == nil && !b
}

// JournalSocket is where journald listens for native messages.
const JournalSocket = "/run/systemd/journal/socket"

// JournalAvailable says whether journald runs on this host.
func JournalAvailable() bool {
	_, err := os.Stat(JournalSocket)
	return err == nil
}

// Remote is what the shim needs to send a container's log to a remote
// driver (syslog, fluentd, gelf, journald): the options (parsed again in
// the shim with the functions above) and what berthd rendered from the
// container (the tag, the labels/env attributes, its names).
type Remote struct {
	Driver        string            `json:"driver"`
	Opts          map[string]string `json:"opts,omitempty"`
	Tag           string            `json:"tag"`
	Extra         map[string]string `json:"extra,omitempty"`
	ContainerID   string            `json:"containerID"`
	ContainerName string            `json:"containerName"` // with its leading '/'
	ImageID       string            `json:"imageID"`
	ImageName     string            `json:"imageName"`
	Command       string            `json:"command"`
	Created       time.Time         `json:"created"`
}

// BufferSize is how many bytes of log entries wait for a remote endpoint
// before newer ones are dropped: max-buffer-size with mode=non-blocking
// (default 1 MB, as dockerd's ring), else 16 MB. berth never lets a slow
// or dead endpoint stall a container's output, in either mode.
func (r *Remote) BufferSize() int64 {
	if r.Opts["mode"] == ModeNonBlocking {
		if v, ok := r.Opts["max-buffer-size"]; ok {
			if n, err := units.RAMInBytes(v); err == nil && n > 0 {
				return n
			}
		}
		return 1e6
	}
	return 16 << 20
}
