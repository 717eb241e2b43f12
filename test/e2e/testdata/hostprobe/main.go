// hostprobe is what an unprivileged local user tries against a daemon's
// state (issue 12, item 1). The e2e test runs it as uid 65534 (setpriv).
//
//	hostprobe euid          print "euid=N uid=N" (copied into images as a setuid-root binary)
//	hostprobe reach         read paths from stdin, one a line, and print for each what
//	                        this user can do with it: "stat PATH", "list PATH" (a
//	                        directory's entries), "read PATH" (a file's bytes),
//	                        "write PATH" (a device node or file opened for writing),
//	                        "exec PATH" (the kernel would execute it)
package main

import (
	"bufio"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		usage()
	}
	switch os.Args[1] {
	case "euid":
		fmt.Printf("euid=%d uid=%d\n", os.Geteuid(), os.Getuid())
	case "reach":
		reach()
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: hostprobe euid | hostprobe reach < paths")
	os.Exit(2)
}

func reach() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for sc.Scan() {
		p := sc.Text()
		if p == "" {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			continue
		}
		fmt.Fprintf(w, "stat %s\n", p)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if f, err := os.Open(p); err == nil {
				if _, err := f.Readdirnames(1); err == nil {
					fmt.Fprintf(w, "list %s\n", p)
				}
				f.Close()
			}
		case unix.S_IFREG:
			if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
				fmt.Fprintf(w, "read %s\n", p)
				unix.Close(fd)
			}
			if unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS) == nil {
				fmt.Fprintf(w, "exec %s\n", p)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			// Opened for writing but never written: reaching it is the finding.
			if fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
				fmt.Fprintf(w, "write %s\n", p)
				unix.Close(fd)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "hostprobe:", err)
		os.Exit(1)
	}
}
