package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/pflag"
)

// This file holds the flag value types of the container, volume and network
// commands. Each one checks its input when the flag is parsed, so that a bad
// value gets docker's `invalid argument "X" for "-p, --publish" flag: ...`
// message and exit status 125 before anything is sent to the daemon.

// listOpts is a repeatable string flag (type "list") with an optional
// validator that may also normalize the value.
type listOpts struct {
	values   []string
	validate func(string) (string, error)
	// showEmpty prints "[]" for an empty list, which makes the help show
	// "(default [])" as docker does for some of its list flags.
	showEmpty bool
}

func newListOpts(validate func(string) (string, error)) *listOpts {
	return &listOpts{validate: validate}
}

func (l *listOpts) String() string {
	if len(l.values) == 0 && !l.showEmpty {
		return ""
	}
	return "[" + strings.Join(l.values, " ") + "]"
}

func (l *listOpts) Set(s string) error {
	if l.validate != nil {
		v, err := l.validate(s)
		if err != nil {
			return err
		}
		s = v
	}
	l.values = append(l.values, s)
	return nil
}

func (l *listOpts) Type() string { return "list" }

// GetAll returns the values in the order they were given.
func (l *listOpts) GetAll() []string { return l.values }

// Len is the number of values.
func (l *listOpts) Len() int { return len(l.values) }

// mapOpts is a repeatable key=value flag shown as type "map".
type mapOpts struct {
	values   map[string]string
	validate func(string) (string, error)
}

func newMapOpts(validate func(string) (string, error)) *mapOpts {
	return &mapOpts{values: map[string]string{}, validate: validate}
}

func (m *mapOpts) String() string { return fmt.Sprintf("%v", m.values) }

func (m *mapOpts) Set(s string) error {
	if m.validate != nil {
		v, err := m.validate(s)
		if err != nil {
			return err
		}
		s = v
	}
	k, v, _ := strings.Cut(s, "=")
	m.values[k] = v
	return nil
}

func (m *mapOpts) Type() string { return "map" }

// memBytes is a size flag ("512m", "1g") of type "bytes".
type memBytes int64

func (m *memBytes) String() string {
	if *m == 0 {
		return ""
	}
	return units.BytesSize(float64(*m))
}

func (m *memBytes) Set(s string) error {
	v, err := units.RAMInBytes(s)
	*m = memBytes(v)
	return err
}

func (m *memBytes) Type() string { return "bytes" }

// memSwapBytes is a size flag that also accepts -1 (unlimited).
type memSwapBytes int64

func (m *memSwapBytes) String() string {
	if *m == 0 {
		return ""
	}
	if *m == -1 {
		return "-1"
	}
	return units.BytesSize(float64(*m))
}

func (m *memSwapBytes) Set(s string) error {
	if s == "-1" {
		*m = -1
		return nil
	}
	v, err := units.RAMInBytes(s)
	*m = memSwapBytes(v)
	return err
}

func (m *memSwapBytes) Type() string { return "bytes" }

// nanoCPUs is --cpus: a decimal number of CPUs kept in units of 1e-9 CPU.
type nanoCPUs int64

func (n *nanoCPUs) String() string {
	if *n == 0 {
		return ""
	}
	return big.NewRat(int64(*n), 1e9).FloatString(3)
}

func (n *nanoCPUs) Set(s string) error {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	*n = nanoCPUs(nano.Num().Int64())
	return nil
}

func (n *nanoCPUs) Type() string { return "decimal" }

// uint16Value is a uint16 flag; docker shows its zero default in help.
type uint16Value uint16

func (u *uint16Value) String() string { return strconv.FormatUint(uint64(*u), 10) }
func (u *uint16Value) Set(s string) error {
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil {
		return numError(err)
	}
	*u = uint16Value(v)
	return nil
}
func (u *uint16Value) Type() string { return "uint16" }

// numError reduces a strconv error to what pflag reports for its own
// numeric flags.
func numError(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne
	}
	return err
}

// durationValue is a duration flag printed as "0s" when zero, which makes
// docker's help show "(default 0s)".
type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	*d = durationValue(v)
	return err
}
func (d *durationValue) Type() string { return "duration" }

// ulimitOpt is a repeatable --ulimit name=soft[:hard].
type ulimitOpt struct {
	values map[string]*container.Ulimit
	order  []string
}

func newUlimitOpt() *ulimitOpt { return &ulimitOpt{values: map[string]*container.Ulimit{}} }

func (u *ulimitOpt) String() string {
	var parts []string
	for _, n := range u.order {
		parts = append(parts, ulimitString(u.values[n]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func ulimitString(l *container.Ulimit) string {
	return (&units.Ulimit{Name: l.Name, Soft: l.Soft, Hard: l.Hard}).String()
}

func (u *ulimitOpt) Set(s string) error {
	l, err := units.ParseUlimit(s)
	if err != nil {
		return err
	}
	if _, ok := u.values[l.Name]; !ok {
		u.order = append(u.order, l.Name)
	}
	u.values[l.Name] = &container.Ulimit{Name: l.Name, Soft: l.Soft, Hard: l.Hard}
	return nil
}

func (u *ulimitOpt) Type() string { return "ulimit" }

// GetList returns the ulimits sorted by name.
func (u *ulimitOpt) GetList() []*container.Ulimit {
	out := make([]*container.Ulimit, 0, len(u.values))
	for _, l := range u.values {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// mountOpt is a repeatable --mount type=...,source=...,target=... flag.
type mountOpt struct {
	values []mount.Mount
}

func (m *mountOpt) String() string {
	var parts []string
	for _, v := range m.values {
		parts = append(parts, fmt.Sprintf("%v", v))
	}
	return strings.Join(parts, ", ")
}

func (m *mountOpt) Type() string { return "mount" }

// Set parses one --mount value (CSV of key=value fields).
func (m *mountOpt) Set(value string) error {
	mnt, err := parseMountSpec(value)
	if err != nil {
		return err
	}
	m.values = append(m.values, mnt)
	return nil
}

func parseMountSpec(value string) (mount.Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return mount.Mount{}, err
	}
	mnt := mount.Mount{Type: mount.TypeVolume}
	volumeOpts := func() *mount.VolumeOptions {
		if mnt.VolumeOptions == nil {
			mnt.VolumeOptions = &mount.VolumeOptions{}
		}
		return mnt.VolumeOptions
	}
	bindOpts := func() *mount.BindOptions {
		if mnt.BindOptions == nil {
			mnt.BindOptions = &mount.BindOptions{}
		}
		return mnt.BindOptions
	}
	tmpfsOpts := func() *mount.TmpfsOptions {
		if mnt.TmpfsOptions == nil {
			mnt.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return mnt.TmpfsOptions
	}
	// The type decides which options apply, so find it first.
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		if strings.ToLower(strings.TrimSpace(k)) == "type" {
			mnt.Type = mount.Type(strings.ToLower(v))
		}
	}
	for _, f := range fields {
		key, val, hasVal := strings.Cut(f, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !hasVal {
			switch key {
			case "readonly", "ro":
				mnt.ReadOnly = true
				continue
			case "volume-nocopy":
				volumeOpts().NoCopy = true
				continue
			case "bind-nonrecursive":
				bindOpts().NonRecursive = true
				continue
			default:
				return mount.Mount{}, fmt.Errorf("invalid field '%s' must be a key=value pair", f)
			}
		}
		switch key {
		case "type":
		case "source", "src":
			mnt.Source = val
			if mnt.Type == mount.TypeBind && strings.HasPrefix(val, ".") {
				if abs, err := filepath.Abs(val); err == nil {
					mnt.Source = abs
				}
			}
		case "target", "dst", "destination":
			mnt.Target = val
		case "readonly", "ro":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			mnt.ReadOnly = b
		case "consistency":
			mnt.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bindOpts().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-nonrecursive":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			bindOpts().NonRecursive = b
		case "bind-create-src":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			bindOpts().CreateMountpoint = b
		case "volume-nocopy":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for volume-nocopy: %s", val)
			}
			volumeOpts().NoCopy = b
		case "volume-subpath":
			volumeOpts().Subpath = val
		case "volume-label":
			lk, lv, _ := strings.Cut(val, "=")
			o := volumeOpts()
			if o.Labels == nil {
				o.Labels = map[string]string{}
			}
			o.Labels[lk] = lv
		case "volume-driver":
			o := volumeOpts()
			if o.DriverConfig == nil {
				o.DriverConfig = &mount.Driver{}
			}
			o.DriverConfig.Name = val
		case "volume-opt":
			o := volumeOpts()
			if o.DriverConfig == nil {
				o.DriverConfig = &mount.Driver{}
			}
			if o.DriverConfig.Options == nil {
				o.DriverConfig.Options = map[string]string{}
			}
			ok, ov, _ := strings.Cut(val, "=")
			o.DriverConfig.Options[ok] = ov
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts().Mode = os.FileMode(n)
		default:
			return mount.Mount{}, fmt.Errorf("unexpected key '%s' in '%s'", key, f)
		}
	}
	if mnt.Type == "" {
		return mount.Mount{}, errors.New("type is required")
	}
	if mnt.Target == "" {
		return mount.Mount{}, errors.New("target is required")
	}
	if mnt.VolumeOptions != nil && mnt.Type != mount.TypeVolume {
		return mount.Mount{}, fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", mnt.Type)
	}
	if mnt.BindOptions != nil && mnt.Type != mount.TypeBind {
		return mount.Mount{}, fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", mnt.Type)
	}
	if mnt.TmpfsOptions != nil && mnt.Type != mount.TypeTmpfs {
		return mount.Mount{}, fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", mnt.Type)
	}
	return mnt, nil
}

// networkAttachOpt is one --network value: a name, or the advanced
// "name=NET,alias=A,ip=IP,driver-opt=K=V" form.
type networkAttachOpt struct {
	Target       string
	Aliases      []string
	DriverOpts   map[string]string
	IPv4Address  string
	IPv6Address  string
	LinkLocalIPs []string
	MacAddress   string
	GwPriority   int
}

// networkOpt is the repeatable --network (alias --net) flag.
type networkOpt struct {
	options []networkAttachOpt
}

func (n *networkOpt) String() string { return "" }
func (n *networkOpt) Type() string   { return "network" }

func (n *networkOpt) Set(value string) error {
	if !strings.Contains(value, "=") {
		n.options = append(n.options, networkAttachOpt{Target: value})
		return nil
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	var o networkAttachOpt
	for _, f := range fields {
		key, val, ok := strings.Cut(f, "=")
		if !ok || val == "" {
			return fmt.Errorf("invalid field key %s", key)
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "name":
			o.Target = val
		case "alias":
			o.Aliases = append(o.Aliases, val)
		case "ip":
			o.IPv4Address = val
		case "ip6":
			o.IPv6Address = val
		case "link-local-ip":
			o.LinkLocalIPs = append(o.LinkLocalIPs, val)
		case "mac-address":
			o.MacAddress = val
		case "gw-priority":
			p, err := strconv.Atoi(val)
			if err != nil {
				return fmt.Errorf("invalid gw-priority: %w", err)
			}
			o.GwPriority = p
		case "driver-opt":
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				return fmt.Errorf("invalid key value pair format in driver options")
			}
			if o.DriverOpts == nil {
				o.DriverOpts = map[string]string{}
			}
			o.DriverOpts[k] = v
		default:
			return fmt.Errorf("invalid field key %s", key)
		}
	}
	n.options = append(n.options, o)
	return nil
}

// gpuOpts is --gpus: "all", a count, or CSV fields count=, device=,
// driver=, capabilities=, options=. Each value is one device request.
type gpuOpts struct{ values []container.DeviceRequest }

func (g *gpuOpts) String() string { return "" }
func (g *gpuOpts) Type() string   { return "gpu-request" }
func (g *gpuOpts) Set(s string) error {
	req := container.DeviceRequest{Capabilities: [][]string{{"gpu"}}}
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			if len(fields) > 1 || seen["count"] {
				return fmt.Errorf("invalid field '%s' must be a key=value pair", f)
			}
			k, v = "count", f
		}
		if seen[k] {
			return fmt.Errorf("gpu request key '%s' can be specified only once", k)
		}
		seen[k] = true
		switch k {
		case "count":
			if v == "all" {
				req.Count = -1
			} else {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("invalid count (%s): value must be either \"all\" or an integer: %w", v, err)
				}
				req.Count = n
			}
		case "device":
			req.DeviceIDs = strings.Split(v, ",")
		case "driver":
			req.Driver = v
		case "capabilities":
			req.Capabilities = [][]string{append(strings.Split(v, ","), "gpu")}
		case "options":
			ro, err := csv.NewReader(strings.NewReader(v)).Read()
			if err != nil {
				return err
			}
			req.Options = map[string]string{}
			for _, o := range ro {
				ok, ov, _ := strings.Cut(o, "=")
				req.Options[ok] = ov
			}
		default:
			return fmt.Errorf("unexpected key '%s' in '%s'", k, f)
		}
	}
	if req.Count != 0 && len(req.DeviceIDs) > 0 {
		return errors.New("cannot set both Count and DeviceIDs on device request")
	}
	g.values = append(g.values, req)
	return nil
}

// Validators used by list flags.

// validateEnv completes "NAME" with the value of NAME in the CLI's
// environment when it is set.
func validateEnv(getenv func(string) (string, bool)) func(string) (string, error) {
	return func(val string) (string, error) {
		k, _, hasValue := strings.Cut(val, "=")
		if k == "" {
			return "", fmt.Errorf("invalid environment variable: %s", val)
		}
		if hasValue {
			return val, nil
		}
		if v, ok := getenv(val); ok {
			return val + "=" + v, nil
		}
		return val, nil
	}
}

// validateLabel accepts "key[=value]".
func validateLabel(val string) (string, error) {
	if strings.TrimSpace(val) == "" || strings.HasPrefix(val, "=") {
		return "", fmt.Errorf("invalid label '%s': empty name", val)
	}
	return val, nil
}

// validateIPAddress accepts an IPv4 or IPv6 address (--dns).
func validateIPAddress(val string) (string, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(val))
	if err != nil {
		return "", fmt.Errorf("IP address is not correctly formatted: %s", val)
	}
	return a.String(), nil
}

// validateExtraHost accepts "host:ip" and "host=ip" (IPv6 addresses may be
// in brackets) and returns the "host:ip" form the API takes.
func validateExtraHost(val string) (string, error) {
	k, v, ok := strings.Cut(val, "=")
	if !ok {
		k, v, ok = strings.Cut(val, ":")
	}
	if !ok || k == "" {
		return "", fmt.Errorf("bad format for add-host: %q", val)
	}
	if len(v) > 1 && v[0] == '[' && v[len(v)-1] == ']' {
		v = v[1 : len(v)-1]
	}
	if v != "host-gateway" {
		if _, err := netip.ParseAddr(v); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", v)
		}
	}
	return k + ":" + v, nil
}

// validateAttach accepts stdin, stdout or stderr in any case.
func validateAttach(val string) (string, error) {
	s := strings.ToLower(val)
	for _, str := range []string{"stdin", "stdout", "stderr"} {
		if s == str {
			return s, nil
		}
	}
	return val, errors.New("valid streams are STDIN, STDOUT and STDERR")
}

// validateSysctl accepts "name=value".
func validateSysctl(val string) (string, error) {
	k, _, ok := strings.Cut(val, "=")
	if !ok || k == "" {
		return "", fmt.Errorf("sysctl '%s' is not allowed", val)
	}
	return val, nil
}

// readKVFile reads an --env-file or --label-file: one KEY=VALUE per line,
// blank lines and lines starting with # skipped. A line holding only a name
// takes its value from the CLI's environment (and is dropped when it is
// not set there).
func readKVFile(name string, getenv func(string) (string, bool)) ([]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		raw := sc.Bytes()
		if n == 0 {
			raw = bytes.TrimPrefix(raw, []byte("\xEF\xBB\xBF"))
		}
		n++
		if !utf8.Valid(raw) {
			return nil, fmt.Errorf("env file %s contains invalid utf8 bytes at line %d: %v", name, n, raw)
		}
		line := strings.TrimLeftFunc(string(raw), unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		if hasValue {
			lines = append(lines, line)
			continue
		}
		if v, ok := getenv(line); ok {
			lines = append(lines, line+"="+v)
		}
	}
	return lines, sc.Err()
}

// withDefaultNote appends docker's "(default X)" to a flag's usage where
// pflag would consider the default a zero value and leave it out.
func withDefaultNote(fs *pflag.FlagSet, name, def string) {
	if f := fs.Lookup(name); f != nil {
		f.Usage += " (default " + def + ")"
	}
}
