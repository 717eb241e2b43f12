// Command berth-shim supervises one container for berthd: it holds the
// container's stdio, writes its log and records its exit status, and
// outlives berthd. See package runtime/shim for its lifecycle. It imports
// little on purpose: one runs per container, so its memory counts.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/container/logger"
	"github.com/berth/berth/runtime/shim"
)

type multi []string

func (m *multi) String() string     { return fmt.Sprint(*m) }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// adopt waits for berthd to hand this spare shim its container: the
// options as one JSON line on stdin. Until then the shim has booted but
// done nothing; if berthd goes away first (stdin ends) it just exits.
// Afterwards it is the same as a shim spawned with flags: its working
// directory is the state directory and its stderr goes to shim.log there.
func adopt() shim.Options {
	// Meanwhile, what the first process start costs once: Go checks
	// whether pidfds work by cloning a child (os.FindProcess does it).
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Release()
	}
	var o shim.Options
	line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
	if err != nil {
		os.Exit(0)
	}
	if err := json.Unmarshal(line, &o); err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim: bad options:", err)
		os.Exit(2)
	}
	if o.StateDir == "" {
		fmt.Fprintln(os.Stderr, "berth-shim: no state dir in the options")
		os.Exit(2)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		os.Exit(1)
	}
	logf, err := os.OpenFile(filepath.Join(o.StateDir, "shim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		os.Exit(1)
	}
	_ = unix.Dup2(int(logf.Fd()), 2)
	logf.Close()
	if err := os.Chdir(o.StateDir); err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		os.Exit(1)
	}
	setTitle(os.Args[0] + " --id " + o.ID + " --state-dir " + o.StateDir)
	return o
}

// setTitle rewrites this process's command line (what ps and
// /proc/<pid>/cmdline show) in place, within the room the original
// arguments took: a spare started as "berth-shim --spare --title-space=___"
// then names its container like a shim started for it. The kernel laid the
// arguments out one after another; os.Args points into that memory.
func setTitle(title string) {
	if len(os.Args) == 0 {
		return
	}
	first, last := os.Args[0], os.Args[len(os.Args)-1]
	start := unsafe.StringData(first)
	end := uintptr(unsafe.Pointer(unsafe.StringData(last))) + uintptr(len(last))
	n := int(end - uintptr(unsafe.Pointer(start)))
	if n <= 0 || n > 1<<16 {
		return
	}
	buf := unsafe.Slice(start, n)
	k := copy(buf, title)
	clear(buf[k:])
}

// deleteTask is `berth-shim delete --id ID --runtime R --runtime-root DIR`:
// berthd's way to remove what a task whose shim is gone left behind, so
// that only the shim runs the OCI runtime.
func deleteTask(args []string) {
	fs := flag.NewFlagSet("delete", flag.ExitOnError)
	var o shim.Options
	fs.StringVar(&o.ID, "id", "", "container ID")
	fs.StringVar(&o.Runtime, "runtime", "runc", "OCI runtime binary")
	fs.StringVar(&o.RuntimeRoot, "runtime-root", "/run/berth/runc", "runtime state root")
	_ = fs.Parse(args)
	if o.ID == "" {
		fmt.Fprintln(os.Stderr, "berth-shim delete: --id is required")
		os.Exit(2)
	}
	if err := shim.RunDelete(o); err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim delete:", err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "delete" {
		deleteTask(os.Args[2:])
		return
	}
	debug.SetGCPercent(25)
	var o shim.Options
	var cgroups multi
	var maxFiles int
	flag.StringVar(&o.ID, "id", "", "container ID")
	flag.StringVar(&o.Bundle, "bundle", "", "OCI bundle directory")
	flag.StringVar(&o.StateDir, "state-dir", "", "directory for the socket and status files")
	flag.StringVar(&o.Runtime, "runtime", "runc", "OCI runtime binary")
	flag.StringVar(&o.RuntimeRoot, "runtime-root", "/run/berth/runc", "runtime state root")
	flag.StringVar(&o.LogPath, "log-path", "", "json-file log path")
	flag.Int64Var(&o.LogMaxSize, "log-max-size", 0, "rotate the log past this many bytes (0 = never)")
	flag.IntVar(&maxFiles, "log-max-files", 1, "log files to keep")
	flag.BoolVar(&o.LogCompress, "log-compress", false, "gzip rotated log files")
	flag.StringVar(&o.LogFormat, "log-format", "json-file", "log file encoding: json-file or local (dockerd's local driver format)")
	flag.Func("log-remote", "remote log driver configuration (JSON)", func(v string) error {
		o.LogRemote = &logger.Remote{}
		return json.Unmarshal([]byte(v), o.LogRemote)
	})
	flag.Func("log-attr", "key=value attribute of every log entry (repeatable)", func(v string) error {
		k, val, _ := strings.Cut(v, "=")
		if o.LogAttrs == nil {
			o.LogAttrs = map[string]string{}
		}
		o.LogAttrs[k] = val
		return nil
	})
	flag.BoolVar(&o.Tty, "tty", false, "allocate a TTY")
	flag.BoolVar(&o.OpenStdin, "stdin", false, "keep stdin open")
	flag.BoolVar(&o.StdinOnce, "stdin-once", false, "close stdin after the first attach ends")
	flag.Var(&cgroups, "cgroup", "cgroup directory to check for OOM kills (repeatable)")
	spare := flag.Bool("spare", false, "boot, then read the options as one JSON line on stdin (berthd's spare shim)")
	flag.String("title-space", "", "room in the command line for the title a spare takes once it has its container")
	flag.Parse()
	o.LogMaxFiles = maxFiles
	o.CgroupPaths = cgroups
	if *spare {
		o = adopt()
	}
	if o.ID == "" || o.Bundle == "" || o.StateDir == "" {
		fmt.Fprintln(os.Stderr, "berth-shim: --id, --bundle and --state-dir are required")
		os.Exit(2)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim: subreaper:", err)
		os.Exit(1)
	}
	s, err := shim.NewServer(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		os.Exit(1)
	}
	// Opened now, so that replacing stdin and stdout below never leaves
	// fd 0 or 1 free for a moment: a connection accepted meanwhile would
	// take that number and then be overwritten.
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		os.Exit(1)
	}
	_ = s.Serve(func() {
		os.Stdout.WriteString("ready\n")
		// Nothing of ours may keep berthd's pipe or terminal open. dup2
		// closes the old descriptor and installs the new one atomically.
		_ = unix.Dup2(int(devnull.Fd()), 1)
		_ = unix.Dup2(int(devnull.Fd()), 0)
	})
}
