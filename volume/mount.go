package volume

// Local driver options, as Docker's local driver takes them:
//
//	type    the filesystem type given to mount(2): tmpfs, nfs, cifs, ext4,
//	        none (with o=bind), ...
//	device  what to mount: "tmpfs", a block device, ":/export" for NFS, or a
//	        host directory for a bind mount
//	o       comma-separated mount options. The names mount(8) knows as flags
//	        (ro, rw, nosuid, nodev, noexec, noatime, bind, rbind, private, ...)
//	        become mount flags; the rest (size=64m, uid=1000, addr=10.0.0.1,
//	        vers=4 ...) go to the filesystem as its data string.
//	size    accepted only as 0: a quota needs filesystem support berth lacks
//	        (Docker: "quota size requested but no quota support").
//
// device needs type, type needs device, and o needs both (Docker's rules).
// A volume with options is mounted on <root>/<name>/_data by the first
// Acquire and unmounted by the last Release, so a tmpfs volume's content
// lasts as long as some container uses it. For nfs and cifs, a host name in
// addr= is resolved first, as Docker does. The mount is made with the
// mount(2) system call, not the mount(8) helpers: NFS needs addr=<ip> in o.

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

var validOpts = []string{"type", "o", "device", "size"}

// needsMount reports whether a volume's options ask for a mount.
func needsMount(opts map[string]string) bool {
	return opts["type"] != "" || opts["device"] != ""
}

// validateOpts checks the local driver's options with Docker's wording.
func validateOpts(opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(validOpts, k) {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid option: %q", k))
		}
	}
	if v, ok := opts["size"]; ok {
		size, err := units.RAMInBytes(v)
		if err != nil {
			return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		if size > 0 {
			return cerrdefs.ErrInvalidArgument.WithMessage("quota size requested but no quota support")
		}
	}
	for _, rule := range []struct {
		opt  string
		need []string
	}{
		{"device", []string{"type"}},
		{"type", []string{"device"}},
		{"o", []string{"device", "type"}},
	} {
		if _, ok := opts[rule.opt]; !ok {
			continue
		}
		for _, n := range rule.need {
			if _, ok := opts[n]; !ok {
				return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("missing required option: %q", n))
			}
		}
	}
	return nil
}

type flagOpt struct {
	clear bool
	flag  uintptr
}

var mountFlags = map[string]flagOpt{
	"defaults":      {false, 0},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"suid":          {true, unix.MS_NOSUID},
	"nosuid":        {false, unix.MS_NOSUID},
	"dev":           {true, unix.MS_NODEV},
	"nodev":         {false, unix.MS_NODEV},
	"exec":          {true, unix.MS_NOEXEC},
	"noexec":        {false, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"atime":         {true, unix.MS_NOATIME},
	"noatime":       {false, unix.MS_NOATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
}

var propagationFlags = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits o into mount flags, a propagation change and the
// filesystem's data string.
func parseMountOptions(o string) (flags, propagation uintptr, data string) {
	var rest []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if f, ok := mountFlags[opt]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[opt]; ok {
			propagation = p
			continue
		}
		rest = append(rest, opt)
	}
	return flags, propagation, strings.Join(rest, ",")
}

// mountVolume mounts the volume described by opts on target.
func mountVolume(opts map[string]string, target string) error {
	typ, device, o := opts["type"], opts["device"], opts["o"]
	if device == "" {
		return errors.New("missing device in volume options")
	}
	if typ == "nfs" || typ == "cifs" {
		var err error
		if o, err = resolveAddr(o); err != nil {
			return err
		}
	}
	flags, propagation, data := parseMountOptions(o)
	fail := func(err error, f uintptr, d string) error {
		msg := fmt.Sprintf("mount %s:%s, flags: %#x, data: %s: %v", device, target, f, d, err)
		return fmt.Errorf("failed to mount local volume: %s", maskPassword(msg, opts["o"]))
	}
	if flags&unix.MS_BIND != 0 {
		bind := flags & (unix.MS_BIND | unix.MS_REC)
		if err := unix.Mount(device, target, typ, bind, ""); err != nil {
			return fail(err, bind, "")
		}
		// A bind mount ignores other flags until it is remounted with them.
		if other := flags &^ (unix.MS_BIND | unix.MS_REC); other != 0 {
			f := unix.MS_REMOUNT | unix.MS_BIND | other
			if err := unix.Mount("", target, "", f, ""); err != nil {
				_ = unmountAll(target)
				return fail(err, f, "")
			}
		}
	} else if err := unix.Mount(device, target, typ, flags, data); err != nil {
		return fail(err, flags, data)
	}
	if propagation != 0 {
		if err := unix.Mount("", target, "", propagation, ""); err != nil {
			_ = unmountAll(target)
			return fail(err, propagation, "")
		}
	}
	return nil
}

// resolveAddr replaces a host name in an addr= option with its address.
func resolveAddr(o string) (string, error) {
	parts := strings.Split(o, ",")
	for i, p := range parts {
		host, ok := strings.CutPrefix(p, "addr=")
		if !ok || net.ParseIP(host) != nil {
			continue
		}
		ip, err := net.ResolveIPAddr("ip", host)
		if err != nil {
			return "", fmt.Errorf("error resolving passed in network volume address: %w", err)
		}
		parts[i] = "addr=" + ip.String()
	}
	return strings.Join(parts, ","), nil
}

// maskPassword hides a cifs password= value in an error message.
func maskPassword(msg, o string) string {
	for _, p := range strings.Split(o, ",") {
		if pw, ok := strings.CutPrefix(p, "password="); ok && pw != "" {
			msg = strings.ReplaceAll(msg, "password="+pw, "password=********")
		}
	}
	return msg
}

// unmountAll unmounts target until nothing is mounted there (mounts may be
// stacked). Lazy (MNT_DETACH), like Docker: a process still inside keeps its
// view, the host loses it at once.
func unmountAll(target string) error {
	for range 16 {
		err := unix.Unmount(target, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		mounted, merr := isMountPoint(target)
		if merr != nil {
			return merr
		}
		if !mounted {
			return nil
		}
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	if mounted, err := isMountPoint(target); err != nil || mounted {
		return fmt.Errorf("unmount %s: still mounted", target)
	}
	return nil
}

// unmountAllUnder unmounts everything mounted at or below dir, deepest first.
func unmountAllUnder(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for _, mp := range mps {
		if err := unmountAll(mp); err != nil {
			return err
		}
	}
	if mps, err = mountsUnder(dir); err != nil {
		return err
	} else if len(mps) > 0 {
		return fmt.Errorf("%s is still mounted", mps[0])
	}
	return nil
}

// isMountPoint reports whether something is mounted exactly at path.
func isMountPoint(path string) (bool, error) {
	mps, err := mountPoints()
	if err != nil {
		return false, err
	}
	return slices.Contains(mps, path), nil
}

// mountsUnder returns the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	mps, err := mountPoints()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mp := range mps {
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			if !slices.Contains(out, mp) {
				out = append(out, mp)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, nil
}

// mountPoints returns every mount point in this process's mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMountPath(fields[4]))
	}
	return out, sc.Err()
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
