// Command benchtool is bench/run.sh's helper: it times commands (interleaved,
// so drift on a busy machine hits every engine alike), reads processes'
// memory from /proc, and summarises numbers. It is not part of berth.
//
//	benchtool time [-runs N] [-warmup W] [-timeout D] [-retries R] [-json FILE] NAME=COMMAND...
//	    Runs every COMMAND (split on blanks, no shell) W+N times, one round at
//	    a time with the starting command rotated each round. "{n}" in a
//	    command is replaced by the round number (1-based, warm-up rounds
//	    included) and "{id}" by a name unique to each run, for commands
//	    that need per-run files or names. A run that fails or outlasts the
//	    timeout (then it is killed) is counted, its stderr kept, and retried
//	    untimed in the same round; after R failures of one command the whole
//	    run aborts.
//	    Prints one line per command and writes the per-run seconds,
//	    statistics and failures as JSON.
//	benchtool run -o FILE COMMAND [ARG...]
//	    Runs COMMAND with this process's stdio and writes "USER SYS WALL"
//	    (seconds: its CPU time, children included, and wall time) to FILE;
//	    exits with COMMAND's exit status.
//	benchtool mem [-json FILE] PID...
//	    RSS (VmRSS), Pss and private memory (smaps_rollup) of each process,
//	    with medians and sums, in KiB.
//	benchtool stats
//	    Reads numbers (one per line) on stdin; prints "median min max n".
//	benchtool image -o FILE -tag REPO:TAG [-layers N] [-mb M] [-seed S] [-change-top]
//	    Writes a docker-save archive of a made-up image for the push
//	    benchmark (see image.go).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "time":
		err = timeCmd(os.Args[2:])
	case "run":
		err = runCmd(os.Args[2:])
	case "mem":
		err = memCmd(os.Args[2:])
	case "stats":
		err = statsCmd()
	case "image":
		err = imageCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool time|run|mem|stats|image ... (see the source)")
	os.Exit(2)
}

// Stats summarises a sample.
type Stats struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Mean   float64 `json:"mean"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Stddev float64 `json:"stddev"`
}

func summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	st := Stats{N: len(s), Min: s[0], Max: s[len(s)-1]}
	if len(s)%2 == 1 {
		st.Median = s[len(s)/2]
	} else {
		st.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	for _, x := range s {
		st.Mean += x
	}
	st.Mean /= float64(len(s))
	if len(s) > 1 {
		var v float64
		for _, x := range s {
			v += (x - st.Mean) * (x - st.Mean)
		}
		st.Stddev = math.Sqrt(v / float64(len(s)-1))
	}
	return st
}

// Timed is one command's result.
type Timed struct {
	Name     string    `json:"name"`
	Command  string    `json:"command"`
	Seconds  []float64 `json:"seconds"`
	Failures int       `json:"failures"`
	Errors   []string  `json:"errors,omitempty"`
	Stats
}

func timeCmd(args []string) error {
	fs := flag.NewFlagSet("time", flag.ContinueOnError)
	runs := fs.Int("runs", 20, "timed runs per command")
	warmup := fs.Int("warmup", 2, "untimed runs per command first")
	jsonOut := fs.String("json", "", "write results here")
	timeout := fs.Duration("timeout", time.Minute, "kill a run after this long and count it as failed")
	retries := fs.Int("retries", 0, "failed runs tolerated per command (each retried)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("time: no commands")
	}
	res := make([]*Timed, fs.NArg())
	for i, a := range fs.Args() {
		name, cmd, ok := strings.Cut(a, "=")
		if !ok || name == "" || strings.TrimSpace(cmd) == "" {
			return fmt.Errorf("time: want NAME=COMMAND, got %q", a)
		}
		res[i] = &Timed{Name: name, Command: cmd}
	}
	for round := range *warmup + *runs {
		for k := range res {
			t := res[(k+round)%len(res)]
			n := strconv.Itoa(round + 1)
			for try := 0; ; try++ {
				id := n
				if try > 0 {
					id = fmt.Sprintf("%s-r%d", n, try)
				}
				argv := strings.Fields(strings.NewReplacer("{n}", n, "{id}", id).Replace(t.Command))
				d, err := run1(argv, *timeout)
				if err == nil {
					if round >= *warmup && try == 0 {
						t.Seconds = append(t.Seconds, d.Seconds())
					}
					break
				}
				t.Failures++
				t.Errors = append(t.Errors, fmt.Sprintf("round %d after %.1fs: %v", round+1, d.Seconds(), err))
				fmt.Fprintf(os.Stderr, "  %s: round %d failed after %.1fs: %v\n", t.Name, round+1, d.Seconds(), err)
				if t.Failures > *retries {
					_ = writeJSON(*jsonOut, res)
					return fmt.Errorf("%s: %d failed runs", t.Name, t.Failures)
				}
			}
		}
	}
	for _, t := range res {
		t.Stats = summarize(t.Seconds)
		fail := ""
		if t.Failures > 0 {
			fail = fmt.Sprintf("  FAILED %d", t.Failures)
		}
		fmt.Fprintf(os.Stderr, "  %-22s median %7.1f ms  min %7.1f  max %7.1f  (n=%d)%s\n",
			t.Name, t.Median*1e3, t.Min*1e3, t.Max*1e3, t.N, fail)
	}
	return writeJSON(*jsonOut, res)
}

// run1 runs argv once with stdin from /dev/null and stdout discarded, and
// returns the wall time from fork to reaped exit. A run longer than timeout
// is killed and fails.
func run1(argv []string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after the %v timeout", timeout)
	}
	if err != nil {
		return d, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.Join(strings.Fields(stderr.String()), " "))
	}
	return d, nil
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	out := fs.String("o", "", "write USER SYS WALL seconds here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *out == "" {
		return fmt.Errorf("run: want -o FILE COMMAND [ARG...]")
	}
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		return err
	}
	line := fmt.Sprintf("%.3f %.3f %.3f\n", cmd.ProcessState.UserTime().Seconds(),
		cmd.ProcessState.SystemTime().Seconds(), wall.Seconds())
	if werr := os.WriteFile(*out, []byte(line), 0o644); werr != nil {
		return werr
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		os.Exit(code)
	}
	return err
}

// Mem is one process's memory in KiB.
type Mem struct {
	PID     int `json:"pid"`
	RSS     int `json:"rss_kib"`
	Pss     int `json:"pss_kib"`
	Private int `json:"private_kib"`
	Shared  int `json:"shared_kib"`
}

// MemReport is what mem writes.
type MemReport struct {
	Procs  []Mem `json:"procs"`
	Median Mem   `json:"median"`
	Sum    Mem   `json:"sum"`
}

func memCmd(args []string) error {
	fs := flag.NewFlagSet("mem", flag.ContinueOnError)
	jsonOut := fs.String("json", "", "write results here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rep MemReport
	for _, a := range fs.Args() {
		pid, err := strconv.Atoi(a)
		if err != nil {
			return fmt.Errorf("mem: bad pid %q", a)
		}
		m, err := readMem(pid)
		if err != nil {
			return err
		}
		rep.Procs = append(rep.Procs, m)
	}
	med := func(f func(Mem) int) int {
		xs := make([]float64, len(rep.Procs))
		for i, p := range rep.Procs {
			xs[i] = float64(f(p))
		}
		return int(math.Round(summarize(xs).Median))
	}
	rep.Median = Mem{RSS: med(func(m Mem) int { return m.RSS }), Pss: med(func(m Mem) int { return m.Pss }),
		Private: med(func(m Mem) int { return m.Private }), Shared: med(func(m Mem) int { return m.Shared })}
	for _, p := range rep.Procs {
		rep.Sum.RSS += p.RSS
		rep.Sum.Pss += p.Pss
		rep.Sum.Private += p.Private
		rep.Sum.Shared += p.Shared
	}
	fmt.Printf("n=%d median: rss %d KiB pss %d KiB private %d KiB | sum: rss %d KiB pss %d KiB private %d KiB\n",
		len(rep.Procs), rep.Median.RSS, rep.Median.Pss, rep.Median.Private, rep.Sum.RSS, rep.Sum.Pss, rep.Sum.Private)
	return writeJSON(*jsonOut, rep)
}

// readMem reads VmRSS from /proc/PID/status and Pss, Private_* and Shared_*
// from /proc/PID/smaps_rollup.
func readMem(pid int) (Mem, error) {
	m := Mem{PID: pid}
	fields := map[string]*int{}
	add := func(path string, want map[string]*int) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			p, ok := want[k]
			if !ok {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err == nil {
				*p += n
			}
		}
		return sc.Err()
	}
	fields["VmRSS"] = &m.RSS
	if err := add(fmt.Sprintf("/proc/%d/status", pid), fields); err != nil {
		return m, err
	}
	roll := map[string]*int{"Pss": &m.Pss, "Private_Clean": &m.Private, "Private_Dirty": &m.Private,
		"Shared_Clean": &m.Shared, "Shared_Dirty": &m.Shared}
	if err := add(fmt.Sprintf("/proc/%d/smaps_rollup", pid), roll); err != nil {
		return m, err
	}
	return m, nil
}

func statsCmd() error {
	var xs []float64
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" {
			continue
		}
		x, err := strconv.ParseFloat(l, 64)
		if err != nil {
			return fmt.Errorf("stats: %q: %w", l, err)
		}
		xs = append(xs, x)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(xs) == 0 {
		return fmt.Errorf("stats: no numbers")
	}
	st := summarize(xs)
	fmt.Printf("%.4f %.4f %.4f %d\n", st.Median, st.Min, st.Max, st.N)
	return nil
}

func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
