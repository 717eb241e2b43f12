package cli

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// parseRun parses run flags and arguments the way `berth run` does.
func parseRun(t *testing.T, env map[string]string, args ...string) (*containerConfig, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	o := addContainerFlags(fs, lookup)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	rest := fs.Args()
	if len(rest) > 0 {
		o.Image, o.Args = rest[0], rest[1:]
	}
	return parseContainerOptions(fs, o, lookup)
}

func mustParseRun(t *testing.T, args ...string) *containerConfig {
	t.Helper()
	cfg, err := parseRun(t, nil, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cfg
}

func TestParsePublish(t *testing.T) {
	cfg := mustParseRun(t, "-p", "8080:80", "-p", "127.0.0.1::53/udp", "-p", "[::1]:9000-9001:9000-9001", "-p", "90", "busybox")
	got := map[string][]string{}
	for p, bs := range cfg.HostConfig.PortBindings {
		for _, b := range bs {
			ip := ""
			if b.HostIP.IsValid() {
				ip = b.HostIP.String()
			}
			got[p.String()] = append(got[p.String()], ip+"|"+b.HostPort)
		}
	}
	want := map[string][]string{
		"80/tcp":   {"|8080"},
		"53/udp":   {"127.0.0.1|"},
		"9000/tcp": {"::1|9000"},
		"9001/tcp": {"::1|9001"},
		"90/tcp":   {"|"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bindings = %v, want %v", got, want)
	}
	if len(cfg.Config.ExposedPorts) != 5 {
		t.Errorf("exposed = %v", cfg.Config.ExposedPorts)
	}
	// The wire form is docker's: "80/tcp": [{"HostIp":"","HostPort":"8080"}].
	b, _ := json.Marshal(cfg.HostConfig.PortBindings[network.MustParsePort("80/tcp")])
	if string(b) != `[{"HostIp":"","HostPort":"8080"}]` {
		t.Errorf("binding JSON = %s", b)
	}

	cfg = mustParseRun(t, "--expose", "7000-7002", "--expose", "53/udp", "-p", "published=8081,target=81", "busybox")
	for _, p := range []string{"7000/tcp", "7001/tcp", "7002/tcp", "53/udp", "81/tcp"} {
		if _, ok := cfg.Config.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("%s not exposed: %v", p, cfg.Config.ExposedPorts)
		}
	}
	if bs := cfg.HostConfig.PortBindings[network.MustParsePort("81/tcp")]; len(bs) != 1 || bs[0].HostPort != "8081" {
		t.Errorf("long syntax binding = %v", bs)
	}

	for spec, msg := range map[string]string{
		"abc":             "invalid containerPort: abc",
		"99999:80":        "invalid hostPort: 99999",
		"80:abc":          "invalid containerPort: abc",
		"1.2.3:80:80":     "invalid IP address: 1.2.3",
		"80/xyz":          "invalid proto: xyz",
		"8000-8001:90-95": "invalid ranges specified for container and host Ports: 90-95 and 8000-8001",
	} {
		if _, err := parseRun(t, nil, "-p", spec, "busybox"); err == nil || err.Error() != msg {
			t.Errorf("-p %s: err = %v, want %q", spec, err, msg)
		}
	}
}

func TestParseEnvAndEnvFile(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("\xEF\xBB\xBFA=1\n  B=2 with spaces \n# comment\n\nHOME\nNOPE\nC=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": "/root", "FOO": "bar", "EMPTY": ""}
	cfg, err := parseRun(t, env, "--env-file", envFile, "-e", "FOO", "-e", "EMPTY", "-e", "UNSET", "-e", "X=y=z", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=2 with spaces ", "HOME=/root", "C=", "FOO=bar", "EMPTY=", "UNSET", "X=y=z"}
	if !reflect.DeepEqual(cfg.Config.Env, want) {
		t.Errorf("env = %q, want %q", cfg.Config.Env, want)
	}

	bad := filepath.Join(dir, "bad")
	for content, msg := range map[string]string{
		"C = 3\n":  "invalid env file (" + bad + "): variable 'C ' contains whitespaces",
		"=x\n":     "invalid env file (" + bad + "): no variable name on line '=x'",
		"A=\xff\n": "invalid env file (" + bad + "): env file " + bad + " contains invalid utf8 bytes at line 1: [65 61 255]",
	} {
		if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := parseRun(t, nil, "--env-file", bad, "busybox"); err == nil || err.Error() != msg {
			t.Errorf("env file %q: err = %v, want %q", content, err, msg)
		}
	}
	if _, err := parseRun(t, nil, "--env-file", filepath.Join(dir, "missing"), "busybox"); err == nil ||
		err.Error() != "open "+filepath.Join(dir, "missing")+": no such file or directory" {
		t.Errorf("missing env file: %v", err)
	}
	if _, err := parseRun(t, nil, "-e", "=x", "busybox"); err == nil ||
		err.Error() != `invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x` {
		t.Errorf("-e =x: %v", err)
	}
}

func TestParseUlimitsAndSizes(t *testing.T) {
	cfg := mustParseRun(t, "--ulimit", "nproc=10", "--ulimit", "nofile=100:200", "-m", "64m", "--memory-swap", "-1",
		"--memory-reservation", "1g", "--shm-size", "1k", "--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus", "0-1",
		"--pids-limit", "100", "--blkio-weight", "300", "busybox")
	ul := cfg.HostConfig.Ulimits
	if len(ul) != 2 || *ul[0] != (container.Ulimit{Name: "nofile", Soft: 100, Hard: 200}) || *ul[1] != (container.Ulimit{Name: "nproc", Soft: 10, Hard: 10}) {
		t.Errorf("ulimits = %+v %+v", ul[0], ul[1])
	}
	r := cfg.HostConfig.Resources
	if r.Memory != 64<<20 || r.MemorySwap != -1 || r.MemoryReservation != 1<<30 || cfg.HostConfig.ShmSize != 1024 {
		t.Errorf("memory = %d swap %d reservation %d shm %d", r.Memory, r.MemorySwap, r.MemoryReservation, cfg.HostConfig.ShmSize)
	}
	if r.NanoCPUs != 1_500_000_000 || r.CPUShares != 512 || r.CpusetCpus != "0-1" || r.BlkioWeight != 300 {
		t.Errorf("cpu = %d shares %d cpuset %q blkio %d", r.NanoCPUs, r.CPUShares, r.CpusetCpus, r.BlkioWeight)
	}
	if r.PidsLimit == nil || *r.PidsLimit != 100 {
		t.Errorf("pids limit = %v", r.PidsLimit)
	}
	if cfg := mustParseRun(t, "busybox"); cfg.HostConfig.PidsLimit == nil || *cfg.HostConfig.PidsLimit != 0 || *cfg.HostConfig.MemorySwappiness != -1 {
		t.Errorf("defaults: pids %v swappiness %v", cfg.HostConfig.PidsLimit, *cfg.HostConfig.MemorySwappiness)
	}

	for _, tt := range []struct{ args, msg string }{
		{"--ulimit nofile", `invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile`},
		{"--ulimit foo=1:2", `invalid argument "foo=1:2" for "--ulimit" flag: invalid ulimit type: foo`},
		{"--ulimit nofile=2:1", `invalid argument "nofile=2:1" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 2 > 1`},
		{"-m abc", `invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'`},
		{"--memory-swap 1x", `invalid argument "1x" for "--memory-swap" flag: invalid suffix: 'x'`},
		{"--cpus abc", `invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number`},
		{"--cpus 0.0000000001", `invalid argument "0.0000000001" for "--cpus" flag: value is too precise`},
		{"--blkio-weight x", `invalid argument "x" for "--blkio-weight" flag: strconv.ParseUint: parsing "x": invalid syntax`},
		{"--pids-limit x", `invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax`},
	} {
		if _, err := parseRun(t, nil, append(strings.Fields(tt.args), "busybox")...); err == nil || err.Error() != tt.msg {
			t.Errorf("%s: err = %v\nwant %s", tt.args, err, tt.msg)
		}
	}
}

func TestParseMounts(t *testing.T) {
	cfg := mustParseRun(t,
		"--mount", "type=bind,source=/src,target=/dst,readonly,bind-propagation=rslave",
		"--mount", "type=volume,src=data,dst=/data,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs",
		"--mount", "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770",
		"--mount", "target=/anon",
		"-v", "/host:/ctr:ro", "-v", "named:/n", "-v", "/anon2", "--tmpfs", "/run:rw,size=1m", "--tmpfs", "/x",
		"busybox")
	want := []mount.Mount{
		{Type: mount.TypeBind, Source: "/src", Target: "/dst", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}},
		{Type: mount.TypeVolume, Source: "data", Target: "/data", VolumeOptions: &mount.VolumeOptions{
			NoCopy: true, Labels: map[string]string{"a": "b"}, DriverConfig: &mount.Driver{Options: map[string]string{"type": "tmpfs"}}}},
		{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1770}},
		{Type: mount.TypeVolume, Target: "/anon"},
	}
	if !reflect.DeepEqual(cfg.HostConfig.Mounts, want) {
		got, _ := json.Marshal(cfg.HostConfig.Mounts)
		t.Errorf("mounts = %s", got)
	}
	if !reflect.DeepEqual(cfg.HostConfig.Binds, []string{"/host:/ctr:ro", "named:/n"}) {
		t.Errorf("binds = %q", cfg.HostConfig.Binds)
	}
	if _, ok := cfg.Config.Volumes["/anon2"]; !ok || len(cfg.Config.Volumes) != 1 {
		t.Errorf("volumes = %v", cfg.Config.Volumes)
	}
	if !reflect.DeepEqual(cfg.HostConfig.Tmpfs, map[string]string{"/run": "rw,size=1m", "/x": ""}) {
		t.Errorf("tmpfs = %v", cfg.HostConfig.Tmpfs)
	}

	wd, _ := os.Getwd()
	cfg = mustParseRun(t, "-v", "./data:/d", "busybox")
	if cfg.HostConfig.Binds[0] != filepath.Join(wd, "data")+":/d" {
		t.Errorf("relative bind = %q", cfg.HostConfig.Binds[0])
	}

	for _, tt := range []struct{ args, msg string }{
		{"--mount type=foo", `invalid argument "type=foo" for "--mount" flag: target is required`},
		{"--mount src=/x", `invalid argument "src=/x" for "--mount" flag: target is required`},
		{"--mount type=bind,src=/tmp,dst=/x,foo=bar", `invalid argument "type=bind,src=/tmp,dst=/x,foo=bar" for "--mount" flag: unexpected key 'foo' in 'foo=bar'`},
		{"--mount type=bind,dst=/x,volume-nocopy", `invalid argument "type=bind,dst=/x,volume-nocopy" for "--mount" flag: cannot mix 'volume-*' options with mount type 'bind'`},
		{"--mount type=bind,dst=/x,bogus", `invalid argument "type=bind,dst=/x,bogus" for "--mount" flag: invalid field 'bogus' must be a key=value pair`},
		{"-v /a:/b:/c:d", "invalid spec: /a:/b:/c:d: too many colons"},
		{"-v :/b", "invalid spec: :/b: empty section between colons"},
	} {
		if _, err := parseRun(t, nil, append(strings.Fields(tt.args), "busybox")...); err == nil || err.Error() != tt.msg {
			t.Errorf("%s: err = %v\nwant %s", tt.args, err, tt.msg)
		}
	}
}

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]container.RestartPolicy{
		"no":             {Name: "no"},
		"always":         {Name: "always"},
		"unless-stopped": {Name: "unless-stopped"},
		"on-failure":     {Name: "on-failure"},
		"on-failure:3":   {Name: "on-failure", MaximumRetryCount: 3},
		"":               {Name: ""},
	} {
		got, err := parseRestartPolicy(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"on-failure:x": "invalid restart policy format: maximum retry count must be an integer",
		":3":           "invalid restart policy format: no policy provided before colon",
	} {
		if _, err := parseRestartPolicy(in); err == nil || err.Error() != msg {
			t.Errorf("%q: err = %v, want %q", in, err, msg)
		}
	}
	if _, err := parseRun(t, nil, "--rm", "--restart", "always", "busybox"); err == nil ||
		err.Error() != "conflicting options: cannot specify both --restart and --rm" {
		t.Errorf("--rm --restart: %v", err)
	}
	cfg := mustParseRun(t, "busybox")
	if cfg.HostConfig.RestartPolicy.Name != "no" {
		t.Errorf("default restart policy = %+v", cfg.HostConfig.RestartPolicy)
	}
}

func TestParseGeneral(t *testing.T) {
	cfg := mustParseRun(t, "-it", "--entrypoint", "", "-l", "a=b", "-l", "c", "--add-host", "db:10.0.0.2", "--add-host", "gw=host-gateway",
		"--dns", "1.1.1.1", "--cap-add", "net_admin", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--stop-signal", "SIGUSR1", "--stop-timeout", "3", "--init", "--read-only", "--privileged", "--log-opt", "max-size=1m",
		"--log-opt", "max-file=2", "--hostname", "h", "-w", "/w", "-u", "1:2", "busybox", "sh", "-c", "true")
	c, h := cfg.Config, cfg.HostConfig
	if !c.Tty || !c.OpenStdin || !c.AttachStdin || c.Hostname != "h" || c.WorkingDir != "/w" || c.User != "1:2" {
		t.Errorf("config = %+v", c)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{""}) || !reflect.DeepEqual(c.Cmd, []string{"sh", "-c", "true"}) {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if !reflect.DeepEqual(c.Labels, map[string]string{"a": "b", "c": ""}) {
		t.Errorf("labels = %v", c.Labels)
	}
	if c.StopSignal != "SIGUSR1" || c.StopTimeout == nil || *c.StopTimeout != 3 {
		t.Errorf("stop = %q %v", c.StopSignal, c.StopTimeout)
	}
	if !reflect.DeepEqual(h.ExtraHosts, []string{"db:10.0.0.2", "gw:host-gateway"}) || len(h.DNS) != 1 || h.DNS[0].String() != "1.1.1.1" {
		t.Errorf("hosts %q dns %v", h.ExtraHosts, h.DNS)
	}
	if h.Init == nil || !*h.Init || !h.ReadonlyRootfs || !h.Privileged {
		t.Errorf("init %v ro %v priv %v", h.Init, h.ReadonlyRootfs, h.Privileged)
	}
	if !reflect.DeepEqual(h.LogConfig.Config, map[string]string{"max-size": "1m", "max-file": "2"}) {
		t.Errorf("log opts = %v", h.LogConfig.Config)
	}
	if !reflect.DeepEqual(h.SecurityOpt, []string{"no-new-privileges"}) {
		t.Errorf("security opts = %v", h.SecurityOpt)
	}
	if h.NetworkMode != "default" || len(cfg.NetworkingConfig.EndpointsConfig) != 1 || cfg.NetworkingConfig.EndpointsConfig["default"] == nil {
		t.Errorf("network = %q %v", h.NetworkMode, cfg.NetworkingConfig.EndpointsConfig)
	}

	cfg = mustParseRun(t, "--network", "mynet", "--network-alias", "web", "--ip", "10.1.0.5", "busybox")
	ep := cfg.NetworkingConfig.EndpointsConfig["mynet"]
	if cfg.HostConfig.NetworkMode != "mynet" || ep == nil || !reflect.DeepEqual(ep.Aliases, []string{"web"}) ||
		ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address.String() != "10.1.0.5" {
		t.Errorf("user network: mode %q endpoint %+v", cfg.HostConfig.NetworkMode, ep)
	}
	cfg = mustParseRun(t, "--net", "none", "busybox")
	if cfg.HostConfig.NetworkMode != "none" {
		t.Errorf("--net none: %q", cfg.HostConfig.NetworkMode)
	}

	for _, tt := range []struct{ args, msg string }{
		{"--network-alias x", "network-scoped aliases are only supported for user-defined networks"},
		{"--add-host foo", `invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo"`},
		{"--add-host foo:bar", `invalid argument "foo:bar" for "--add-host" flag: invalid IP address in add-host: "bar"`},
		{"--dns abc", `invalid argument "abc" for "--dns" flag: IP address is not correctly formatted: abc`},
		{"--security-opt foo", `Invalid --security-opt: "foo"`},
		{"--expose abc", `invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": invalid syntax`},
		{"-a foo", `invalid argument "foo" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`},
		{"-l =x", `invalid argument "=x" for "-l, --label" flag: invalid label '=x': empty name`},
		{"--stop-timeout x", `invalid argument "x" for "--stop-timeout" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{"--ip 1.2.3", "invalid IPv4 address: 1.2.3"},
	} {
		if _, err := parseRun(t, nil, append(strings.Fields(tt.args), "busybox")...); err == nil || err.Error() != tt.msg {
			t.Errorf("%s: err = %v\nwant %s", tt.args, err, tt.msg)
		}
	}
}

func TestDetachKeysAndEscapeProxy(t *testing.T) {
	for in, want := range map[string]string{
		"ctrl-p,ctrl-q": "\x10\x11",
		"ctrl-a,x":      "\x01x",
		"ctrl-@,ctrl-[": "\x00\x1b",
		"a,b,c":         "abc",
	} {
		got, err := parseDetachKeys(in)
		if err != nil || string(got) != want {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "foo", ""} {
		if _, err := parseDetachKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}

	r := newEscapeProxy(strings.NewReader("ab\x10c\x10\x11rest"), []byte("\x10\x11"))
	var got []byte
	buf := make([]byte, 64)
	var err error
	for {
		var n int
		n, err = r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if string(got) != "ab\x10c" || err != errDetached {
		t.Errorf("escape proxy read %q, %v", got, err)
	}
}

func TestDisplayablePorts(t *testing.T) {
	ps := func(s ...container.PortSummary) []container.PortSummary { return s }
	ip4 := netipMust("0.0.0.0")
	ip6 := netipMust("::")
	lo := netipMust("127.0.0.1")
	for _, tt := range []struct {
		in   []container.PortSummary
		want string
	}{
		{nil, ""},
		{ps(container.PortSummary{PrivatePort: 80, Type: "tcp"}), "80/tcp"},
		{ps(container.PortSummary{IP: ip4, PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
			container.PortSummary{IP: ip6, PrivatePort: 80, PublicPort: 8080, Type: "tcp"}), "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"},
		{ps(container.PortSummary{PrivatePort: 8000, Type: "tcp"}, container.PortSummary{PrivatePort: 8001, Type: "tcp"},
			container.PortSummary{PrivatePort: 8002, Type: "tcp"}, container.PortSummary{PrivatePort: 53, Type: "udp"}), "53/udp, 8000-8002/tcp"},
		{ps(container.PortSummary{IP: lo, PrivatePort: 90, PublicPort: 90, Type: "tcp"},
			container.PortSummary{IP: lo, PrivatePort: 91, PublicPort: 91, Type: "tcp"}), "127.0.0.1:90-91->90-91/tcp"},
	} {
		if got := displayablePorts(tt.in); got != tt.want {
			t.Errorf("displayablePorts(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNaturalLess(t *testing.T) {
	names := []string{"v10", "88cd", "406f", "v2", "a", "relative"}
	sortNatural(names)
	if want := []string{"88cd", "406f", "a", "relative", "v2", "v10"}; !reflect.DeepEqual(names, want) {
		t.Errorf("natural order = %v, want %v", names, want)
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

func sortNatural(s []string) {
	sort.SliceStable(s, func(i, j int) bool { return naturalLess(s[i], s[j]) })
}
