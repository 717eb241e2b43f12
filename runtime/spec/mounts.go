package spec

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultShmSize is the size of /dev/shm when the request does not say
// (Docker's daemon default, 64 MiB).
const DefaultShmSize = 64 << 20

// InitDest is where the --init binary is mounted, as in Docker.
const InitDest = "/sbin/docker-init"

// defaultMounts returns Docker's default mounts, in Docker's order, fresh
// each call (a spec is the caller's to change). shmPath, when set, is a
// host directory bound at /dev/shm in place of a tmpfs of the container's
// own (a shareable IPC namespace's, or its donor's, as dockerd's ShmPath).
func defaultMounts(shmSize int64, shmPath string, ipcHost, ipcNone bool) []specs.Mount {
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	switch {
	case ipcNone:
	case ipcHost:
		// The host's IPC namespace: share its /dev/shm too, as Docker does.
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
	case shmPath != "":
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: shmPath, Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
	default:
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize, 10)}})
	}
	return ms
}

// tmpfsFlags maps each mount flag a tmpfs accepts to the group it belongs
// to: of the options in one group only the last one given counts.
var tmpfsFlags = map[string]string{
	"ro": "ro", "rw": "ro",
	"exec": "exec", "noexec": "exec",
	"suid": "suid", "nosuid": "suid",
	"dev": "dev", "nodev": "dev",
	"sync": "sync", "async": "sync",
	"dirsync": "dirsync",
	"mand":    "mand", "nomand": "mand",
	"atime": "atime", "noatime": "atime",
	"diratime": "diratime", "nodiratime": "diratime",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
	"private": "propagation", "rprivate": "propagation",
	"shared": "propagation", "rshared": "propagation",
	"slave": "propagation", "rslave": "propagation",
	"unbindable": "propagation", "runbindable": "propagation",
}

// tmpfsData are the key=value options a tmpfs accepts (Docker's list).
var tmpfsData = map[string]bool{"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "mpol": true}

// mergeTmpfsOptions keeps, for each flag group and each data key, only the
// last option given, in the order the survivors appeared.
func mergeTmpfsOptions(opts []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i := len(opts) - 1; i >= 0; i-- {
		o := strings.TrimSpace(opts[i])
		if o == "" || o == "defaults" {
			continue
		}
		key, ok := tmpfsFlags[o]
		if !ok {
			k, _, hasValue := strings.Cut(o, "=")
			if !hasValue || !tmpfsData[k] {
				return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid tmpfs option %q", o))
			}
			key = "=" + k
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, o)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// tmpfsMount builds a --tmpfs mount: Docker's defaults noexec,nosuid,nodev
// and rprivate, then the user's options on top.
func tmpfsMount(dest, data string) (specs.Mount, error) {
	if err := checkMountDest("tmpfs", dest); err != nil {
		return specs.Mount{}, err
	}
	opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
	if data != "" {
		opts = append(opts, strings.Split(data, ",")...)
	}
	merged, err := mergeTmpfsOptions(opts)
	if err != nil {
		return specs.Mount{}, err
	}
	return specs.Mount{Destination: path.Clean(dest), Type: "tmpfs", Source: "tmpfs", Options: merged}, nil
}

func checkMountDest(kind, dest string) error {
	if !path.IsAbs(dest) {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", kind, dest))
	}
	if path.Clean(dest) == "/" {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: destination can't be '/'", kind))
	}
	return nil
}

// tmpfsParam renders --mount type=tmpfs options as tmpfs mount data, as
// Docker does (size with the largest exact k/m/g suffix, mode in octal).
func tmpfsParam(m mount.Mount) string {
	var opts []string
	if t := m.TmpfsOptions; t != nil {
		if t.SizeBytes != 0 {
			size, suffix := t.SizeBytes, ""
			for _, s := range []string{"k", "m", "g"} {
				if size%1024 != 0 {
					break
				}
				size, suffix = size/1024, s
			}
			opts = append(opts, fmt.Sprintf("size=%d%s", size, suffix))
		}
		if t.Mode != 0 {
			opts = append(opts, fmt.Sprintf("mode=%o", uint32(t.Mode)))
		}
		for _, o := range t.Options {
			opts = append(opts, strings.Join(o, "="))
		}
	}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	return strings.Join(opts, ",")
}

// userTmpfs returns the tmpfs mounts of --tmpfs and --mount type=tmpfs,
// ordered by destination (a map has no order; the sort by depth comes later).
func userTmpfs(hc *container.HostConfig) ([]specs.Mount, error) {
	var out []specs.Mount
	dests := make([]string, 0, len(hc.Tmpfs))
	for d := range hc.Tmpfs {
		dests = append(dests, d)
	}
	slices.Sort(dests)
	for _, d := range dests {
		m, err := tmpfsMount(d, hc.Tmpfs[d])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for _, mm := range hc.Mounts {
		if mm.Type != mount.TypeTmpfs {
			continue
		}
		if mm.Source != "" {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: field Source must not be specified", "tmpfs"))
		}
		m, err := tmpfsMount(mm.Target, tmpfsParam(mm))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// combineMounts puts the defaults first (less any a user mount replaces:
// the same destination, or anything under /dev when /dev itself is the
// user's), then the user mounts — later wins on a duplicate destination —
// sorted so that a parent is mounted before its children.
func combineMounts(defaults, user []specs.Mount) ([]specs.Mount, error) {
	byDest := make(map[string]int, len(user))
	var ums []specs.Mount
	for _, m := range user {
		if !path.IsAbs(m.Destination) {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config: mount path must be absolute: '%s'", m.Destination))
		}
		m.Destination = path.Clean(m.Destination)
		if i, ok := byDest[m.Destination]; ok {
			ums[i] = m
			continue
		}
		byDest[m.Destination] = len(ums)
		ums = append(ums, m)
	}
	_, userDev := byDest["/dev"]
	out := make([]specs.Mount, 0, len(defaults)+len(ums))
	for _, m := range defaults {
		if _, ok := byDest[m.Destination]; ok {
			continue
		}
		if userDev && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		out = append(out, m)
	}
	slices.SortStableFunc(ums, func(a, b specs.Mount) int { return depth(a.Destination) - depth(b.Destination) })
	return append(out, ums...), nil
}

// depth counts the components of a clean absolute path ("/" is 0).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
