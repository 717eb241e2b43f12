package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/osutil"
)

// ensureSharedDir makes dir a mount point of its own with shared
// propagation, as iproute2 does for /run/netns: a network namespace
// bind-mounted inside it and later unmounted is then unmounted from every
// mount namespace that copied it too (runc's, a shim's), so a stopped
// container's namespace really goes away and its veth with it.
func ensureSharedDir(dir string) error {
	if err := osutil.MkdirPrivate(dir, osutil.PrivateMode); err != nil {
		return err
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", dir, err)
	}
	// Not a mount point yet.
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", dir, err)
	}
	return nil
}

// releaseSharedDir undoes ensureSharedDir when no namespace is pinned in
// dir any more (a stopping berthd whose containers are all gone): the
// next start makes the mount again. With namespaces in it, it stays.
func releaseSharedDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) > 0 {
		return err
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// Threads and namespaces. A goroutine that changes its thread's network
// namespace locks itself to the thread first; it must put the thread back
// into its own namespace before unlocking. Letting the goroutine exit
// still locked, so that the runtime ends the thread, is not enough: when
// the thread is the process's main thread, Go cannot end it and wedges it
// instead, and a wedged main thread keeps the namespace it is in (and a
// container's veth on the bridge with it) alive for as long as berthd
// runs. So the thread always goes home; only if it cannot (setns failing
// on a namespace we hold open, which should not happen) is it left locked
// to end with its goroutine.

// newNetNSHandle creates a network namespace held only by the returned
// handle (closing it lets the kernel destroy the namespace).
func newNetNSHandle() (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			rc <- result{-1, fmt.Errorf("open own netns: %w", err)}
			return
		}
		defer home.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			rc <- result{-1, fmt.Errorf("unshare netns: %w", err)}
			return
		}
		h, err := netns.Get()
		if err == nil {
			err = ignoreRAs()
			if err != nil {
				h.Close()
			}
		}
		if serr := netns.Set(home); serr != nil {
			// Stays locked: the thread ends with this goroutine.
			if err == nil {
				h.Close()
			}
			rc <- result{-1, fmt.Errorf("back to own netns: %w", serr)}
			return
		}
		runtime.UnlockOSThread()
		rc <- result{h, err}
	}()
	r := <-rc
	return r.h, r.err
}

// ignoreRAs makes the interfaces that will be made in the calling
// thread's (new) network namespace ignore IPv6 router advertisements
// (accept_ra=0 by default, as the namespace gets its veths after): a
// container on the same bridge (NET_RAW is a default capability) could
// otherwise give its neighbours addresses and routes of its choosing.
// Containers' IPv6 addresses and routes are static. A host without IPv6
// has no such file.
func ignoreRAs() error {
	err := os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_ra", []byte("0\n"), 0o644)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("set accept_ra=0 in a new namespace: %w", err)
	}
	return nil
}

// pinNetNS bind-mounts the namespace of handle h at path.
func pinNetNS(h netns.NsHandle, path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", int(h)), path, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("bind netns: %w", err)
	}
	return nil
}

// newNetNS creates a network namespace and pins it at path with a bind
// mount, so that it outlives berthd and runc can join it by path.
func newNetNS(path string) error {
	h, err := newNetNSHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	return pinNetNS(h, path)
}

// removeNetNS unpins the namespace at path. Missing is fine.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// isNetNS reports whether path is a mounted network namespace.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// inNetNS runs fn on a thread switched into the namespace at path, and
// switches the thread back before it runs anything else.
func inNetNS(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Stays locked: the thread ends with this goroutine. What
			// fn made (sockets) is the caller's either way.
			errc <- ferr
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func netnsDir(execRoot string) string { return filepath.Join(execRoot, "netns") }
