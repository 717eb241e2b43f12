package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func devRule(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major >= 0 {
		r.Major = ptr(major)
	}
	if minor >= 0 {
		r.Minor = ptr(minor)
	}
	return r
}

// defaultDeviceRules is Docker's device cgroup allow-list, written out in
// full (runc adds the same rules on its own; a runtime that does not still
// gets them): deny everything, allow mknod of any node, and allow the
// standard nodes runc creates, /dev/pts/*, /dev/console, /dev/ptmx and
// /dev/net/tun.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		devRule(true, "c", -1, -1, "m"),    // mknod any char device
		devRule(true, "b", -1, -1, "m"),    // mknod any block device
		devRule(true, "c", 1, 3, "rwm"),    // /dev/null
		devRule(true, "c", 1, 5, "rwm"),    // /dev/zero
		devRule(true, "c", 1, 7, "rwm"),    // /dev/full
		devRule(true, "c", 1, 8, "rwm"),    // /dev/random
		devRule(true, "c", 1, 9, "rwm"),    // /dev/urandom
		devRule(true, "c", 5, 0, "rwm"),    // /dev/tty
		devRule(true, "c", 5, 1, "rwm"),    // /dev/console
		devRule(true, "c", 5, 2, "rwm"),    // /dev/ptmx
		devRule(true, "c", 136, -1, "rwm"), // /dev/pts/*
		devRule(true, "c", 10, 200, "rwm"), // /dev/net/tun
	}
}

// parseDeviceCgroupRule parses a --device-cgroup-rule: "c 1:3 rwm",
// "b 8:* r", "a *:* rwm".
func parseDeviceCgroupRule(s string) (specs.LinuxDeviceCgroup, error) {
	bad := invalid("invalid device cgroup rule format: '%s'", s)
	f := strings.Fields(s)
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("acb", f[0]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(s string) (int64, bool) {
		if s == "*" {
			return -1, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n >= 0
	}
	a, ok1 := num(maj)
	b, ok2 := num(min)
	if !ok1 || !ok2 || !validAccess(f[2]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	return devRule(true, f[0], a, b, f[2]), nil
}

func validAccess(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' {
			return false
		}
	}
	return true
}

// hostDevice describes the device node at p (symlinks followed), or reports
// that p is not a device.
func hostDevice(p string) (specs.LinuxDevice, bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return specs.LinuxDevice{}, false, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, false, nil
	}
	mode := fs.FileMode(st.Mode & 0o777)
	return specs.LinuxDevice{
		Path:     p,
		Type:     typ,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      ptr(st.Uid),
		GID:      ptr(st.Gid),
	}, true, nil
}

// userDevices resolves --device mappings (a device node, or a directory of
// them) into device nodes and their cgroup rules. This stats host paths,
// unless checkOnly: then only the mappings' syntax is checked.
func userDevices(maps []container.DeviceMapping, checkOnly bool) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, m := range maps {
		perms := m.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if !validAccess(perms) {
			return nil, nil, invalid("invalid device mode: %s", perms)
		}
		dst := m.PathInContainer
		if dst == "" {
			dst = m.PathOnHost
		}
		if !path.IsAbs(dst) {
			return nil, nil, invalid("invalid device path in container: %s", dst)
		}
		if checkOnly {
			continue
		}
		add := func(src, dst string) error {
			d, ok, err := hostDevice(src)
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("not a device node")
			}
			d.Path = dst
			devs = append(devs, d)
			rules = append(rules, devRule(true, d.Type, d.Major, d.Minor, perms))
			return nil
		}
		fi, err := os.Stat(m.PathOnHost)
		if err == nil && fi.IsDir() {
			// Every device below it; none is not a device (dockerd).
			before := len(devs)
			err = filepath.WalkDir(m.PathOnHost, func(p string, de fs.DirEntry, err error) error {
				if err != nil || de.IsDir() || de.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
					return nil
				}
				return add(p, path.Join(dst, strings.TrimPrefix(p, m.PathOnHost)))
			})
			if err == nil && len(devs) == before {
				err = errors.New("not a device node")
			}
		} else if err == nil {
			err = add(m.PathOnHost, dst)
		}
		if err != nil {
			// Found at start; dockerd answers it with a 500.
			return nil, nil, fmt.Errorf("error gathering device information while adding custom device %q: %v", m.PathOnHost, unwrapPathErr(err))
		}
	}
	return devs, rules, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hostDevices lists the device nodes under the host's /dev, as Docker gives
// them to a privileged container; pts, shm, mqueue and the like are the
// container's own, and /dev/console is set up by runc.
func hostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p == "/dev" {
				return err
			}
			return nil
		}
		if de.IsDir() {
			switch de.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || de.Type()&fs.ModeDevice == 0 {
			return nil
		}
		d, ok, err := hostDevice(p)
		if err == nil && ok {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// blockIO converts per-device blkio weights and throttles; each names a host
// block device, which is stat'ed for its numbers.
func blockIO(r *container.Resources) (*specs.LinuxBlockIO, error) {
	if len(r.BlkioWeightDevice)+len(r.BlkioDeviceReadBps)+len(r.BlkioDeviceWriteBps)+
		len(r.BlkioDeviceReadIOps)+len(r.BlkioDeviceWriteIOps) == 0 {
		return nil, nil
	}
	bio := &specs.LinuxBlockIO{}
	blk := func(p string) (int64, int64, error) {
		d, ok, err := hostDevice(p)
		if err != nil {
			return 0, 0, invalid("invalid block device %q: %v", p, unwrapPathErr(err))
		}
		if !ok || d.Type != "b" {
			return 0, 0, invalid("%q is not a block device", p)
		}
		return d.Major, d.Minor, nil
	}
	for _, w := range r.BlkioWeightDevice {
		if w == nil {
			continue
		}
		if w.Weight != 0 && (w.Weight < 10 || w.Weight > 1000) {
			return nil, invalid("Range of blkio weight is from 10 to 1000")
		}
		maj, mnr, err := blk(w.Path)
		if err != nil {
			return nil, err
		}
		wd := specs.LinuxWeightDevice{Weight: ptr(w.Weight)}
		wd.Major, wd.Minor = maj, mnr
		bio.WeightDevice = append(bio.WeightDevice, wd)
	}
	throttle := func(list []*blkiodev.ThrottleDevice) ([]specs.LinuxThrottleDevice, error) {
		var out []specs.LinuxThrottleDevice
		for _, t := range list {
			if t == nil {
				continue
			}
			maj, mnr, err := blk(t.Path)
			if err != nil {
				return nil, err
			}
			td := specs.LinuxThrottleDevice{Rate: t.Rate}
			td.Major, td.Minor = maj, mnr
			out = append(out, td)
		}
		return out, nil
	}
	var err error
	if bio.ThrottleReadBpsDevice, err = throttle(r.BlkioDeviceReadBps); err != nil {
		return nil, err
	}
	if bio.ThrottleWriteBpsDevice, err = throttle(r.BlkioDeviceWriteBps); err != nil {
		return nil, err
	}
	if bio.ThrottleReadIOPSDevice, err = throttle(r.BlkioDeviceReadIOps); err != nil {
		return nil, err
	}
	if bio.ThrottleWriteIOPSDevice, err = throttle(r.BlkioDeviceWriteIOps); err != nil {
		return nil, err
	}
	return bio, nil
}
