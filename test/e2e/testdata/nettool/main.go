// nettool is bind-mounted into busybox containers by the networking e2e
// tests. The test images' busybox is a static glibc build: its wget
// segfaults and its ping cannot resolve names, and its nc has no UDP.
// nettool is static Go: its resolver reads the container's /etc/hosts and
// /etc/resolv.conf, as any program's would.
//
//	nettool get [-t SECONDS] [-once] URL   print the body (retrying until the deadline unless -once)
//	nettool lookup [-t SECONDS] NAME       print NAME's addresses, one a line
//	nettool udpecho PORT                    answer every datagram with "echo:<datagram>"
//	nettool ra IFACE PREFIX                 send IPv6 router advertisements for PREFIX (a /64) out of IFACE
//	nettool whoami PORT                     serve HTTP on PORT (all addresses, both families), answering "from <client address>"
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	timeout := fs.Float64("t", 10, "deadline in seconds")
	once := fs.Bool("once", false, "one attempt only")
	fs.Parse(os.Args[2:])
	deadline := time.Now().Add(time.Duration(*timeout * float64(time.Second)))
	switch os.Args[1] {
	case "get":
		if fs.NArg() != 1 {
			usage()
		}
		retry(deadline, *once, func() error { return get(fs.Arg(0), deadline) })
	case "lookup":
		if fs.NArg() != 1 {
			usage()
		}
		retry(deadline, *once, func() error {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			addrs, err := net.DefaultResolver.LookupHost(ctx, fs.Arg(0))
			if err != nil {
				return err
			}
			fmt.Println(strings.Join(addrs, "\n"))
			return nil
		})
	case "ra":
		if fs.NArg() != 2 {
			usage()
		}
		if err := sendRA(fs.Arg(0), fs.Arg(1), 3); err != nil {
			fmt.Fprintln(os.Stderr, "nettool:", err)
			os.Exit(1)
		}
	case "udpecho":
		if fs.NArg() != 1 {
			usage()
		}
		udpecho(fs.Arg(0))
	case "whoami":
		if fs.NArg() != 1 {
			usage()
		}
		err := http.ListenAndServe(":"+fs.Arg(0), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "from %s\n", r.RemoteAddr)
		}))
		fmt.Fprintln(os.Stderr, "nettool:", err)
		os.Exit(1)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: nettool get|lookup [-t SECONDS] [-once] URL|NAME, nettool udpecho PORT, nettool ra IFACE PREFIX, nettool whoami PORT")
	os.Exit(2)
}

func retry(deadline time.Time, once bool, fn func() error) {
	for {
		err := fn()
		if err == nil {
			os.Exit(0)
		}
		if once || time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "nettool:", err)
			os.Exit(1)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string, deadline time.Time) error {
	per := time.Until(deadline)
	if per > 3*time.Second {
		per = 3 * time.Second
	}
	if per < 500*time.Millisecond {
		per = 500 * time.Millisecond
	}
	hc := &http.Client{Timeout: per, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	os.Stdout.Write(b)
	return nil
}

func udpecho(port string) {
	pc, err := net.ListenPacket("udp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		msg := strings.TrimRight(string(buf[:n]), "\n")
		fmt.Printf("%s from %s\n", msg, from)
		pc.WriteTo([]byte("echo:"+msg), from)
	}
}
