package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/berth/berth/cli/formatter"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type statsOptions struct {
	all      bool
	noStream bool
	noTrunc  bool
	format   string
}

// newStatsCommand is "berth stats".
func newStatsCommand(c *CLI) *cobra.Command {
	var opts statsOptions
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd.Context(), c, opts, args)
		},
	}
	aliases(cmd, "container stats", "stats")
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all", "a", false, "Show all containers (default shows just running)")
	flags.BoolVar(&opts.noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	flags.BoolVar(&opts.noTrunc, "no-trunc", false, "Do not truncate output")
	flags.StringVar(&opts.format, "format", "", formatHelpTable)
	return cmd
}

// statsRow is one line of `stats`.
type statsRow struct {
	BlockIO   string
	CPUPerc   string
	Container string
	ID        string
	MemPerc   string
	MemUsage  string
	Name      string
	NetIO     string
	PIDs      string
}

// MarshalJSON escapes HTML characters like docker's JSON output.
func (r statsRow) MarshalJSON() ([]byte, error) {
	type plain statsRow
	return json.Marshal(plain(r))
}

var statsHeader = map[string]string{
	"BlockIO":   "BLOCK I/O",
	"CPUPerc":   "CPU %",
	"Container": "CONTAINER",
	"ID":        "CONTAINER ID",
	"MemPerc":   "MEM %",
	"MemUsage":  "MEM USAGE / LIMIT",
	"Name":      "NAME",
	"NetIO":     "NET I/O",
	"PIDs":      "PIDS",
}

// statsEntry is the latest sample of one container.
type statsEntry struct {
	container string // as the user named it (or the short ID)
	id, name  string
	cpu, mem  float64
	memUsage  float64
	memLimit  float64
	netRx     float64
	netTx     float64
	blkRead   float64
	blkWrite  float64
	pids      uint64
	seen      bool
	err       error
}

func (e *statsEntry) row(trunc bool) statsRow {
	id := e.id
	if trunc {
		id = formatter.ShortID(id)
	}
	r := statsRow{Container: e.container, ID: id, Name: strings.TrimPrefix(e.name, "/")}
	if e.err != nil || !e.seen {
		r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs = "--", "-- / --", "--", "--", "--", "--"
		if r.Name == "" {
			r.Name = "--"
		}
		return r
	}
	r.CPUPerc = fmt.Sprintf("%.2f%%", e.cpu)
	r.MemUsage = units.BytesSize(e.memUsage) + " / " + units.BytesSize(e.memLimit)
	r.MemPerc = fmt.Sprintf("%.2f%%", e.mem)
	r.NetIO = units.HumanSizeWithPrecision(e.netRx, 3) + " / " + units.HumanSizeWithPrecision(e.netTx, 3)
	r.BlockIO = units.HumanSizeWithPrecision(e.blkRead, 3) + " / " + units.HumanSizeWithPrecision(e.blkWrite, 3)
	r.PIDs = fmt.Sprintf("%d", e.pids)
	return r
}

// update computes the displayed values from one sample.
func (e *statsEntry) update(s *container.StatsResponse) {
	if s.ID != "" {
		e.id = s.ID
	}
	if s.Name != "" {
		e.name = s.Name
	}
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	e.cpu = 0
	if sysDelta > 0 && cpuDelta > 0 {
		e.cpu = cpuDelta / sysDelta * online * 100
	}
	usage := float64(s.MemoryStats.Usage)
	// The page cache is not counted, as docker does: cgroup v1 reports it as
	// total_inactive_file, v2 as inactive_file.
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && float64(v) < usage {
		usage -= float64(v)
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && float64(v) < usage {
		usage -= float64(v)
	}
	e.memUsage = usage
	e.memLimit = float64(s.MemoryStats.Limit)
	e.mem = 0
	if e.memLimit != 0 {
		e.mem = usage / e.memLimit * 100
	}
	e.netRx, e.netTx = 0, 0
	for _, n := range s.Networks {
		e.netRx += float64(n.RxBytes)
		e.netTx += float64(n.TxBytes)
	}
	e.blkRead, e.blkWrite = 0, 0
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			e.blkRead += float64(b.Value)
		case "write":
			e.blkWrite += float64(b.Value)
		}
	}
	e.pids = s.PidsStats.Current
	e.seen = true
}

func runStats(ctx context.Context, c *CLI, opts statsOptions, names []string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	format := opts.format
	if format == "" {
		format = c.ConfigFile().StatsFormat
	}
	if format == "" || format == formatter.TableFormatKey {
		format = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
	}

	var (
		mu      sync.Mutex
		entries []*statsEntry
		byID    = map[string]*statsEntry{}
		wg      sync.WaitGroup
		errs    []string
	)
	sampled := make(chan struct{}, 1)
	notify := func() {
		select {
		case sampled <- struct{}{}:
		default:
		}
	}
	collect := func(e *statsEntry) {
		defer wg.Done()
		res, err := cl.ContainerStats(ctx, e.container, client.ContainerStatsOptions{Stream: !opts.noStream, IncludePreviousSample: true})
		if err != nil {
			mu.Lock()
			e.err = err
			mu.Unlock()
			notify()
			return
		}
		defer res.Body.Close()
		dec := json.NewDecoder(res.Body)
		for {
			var s container.StatsResponse
			if err := dec.Decode(&s); err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					mu.Lock()
					e.err = err
					mu.Unlock()
				}
				notify()
				return
			}
			mu.Lock()
			e.update(&s)
			mu.Unlock()
			notify()
			if opts.noStream {
				return
			}
		}
	}
	add := func(container, id, name string) {
		mu.Lock()
		defer mu.Unlock()
		if id != "" {
			if _, ok := byID[id]; ok {
				return
			}
		}
		e := &statsEntry{container: container, id: id, name: name}
		entries = append(entries, e)
		if id != "" {
			byID[id] = e
		}
		wg.Add(1)
		go collect(e)
	}

	listRunning := func() error {
		res, err := cl.ContainerList(ctx, client.ContainerListOptions{All: opts.all})
		if err != nil {
			return err
		}
		for _, s := range res.Items {
			name := ""
			if len(s.Names) > 0 {
				name = s.Names[0]
			}
			add(formatter.ShortID(s.ID), s.ID, name)
		}
		return nil
	}

	if len(names) == 0 {
		if err := listRunning(); err != nil {
			return interrupted(ctx, err)
		}
	} else {
		for _, n := range names {
			add(n, "", "")
		}
	}

	render := func() ([]byte, error) {
		mu.Lock()
		rows := make([]statsRow, 0, len(entries))
		for _, e := range entries {
			if e.err != nil && len(names) > 0 {
				continue
			}
			rows = append(rows, e.row(!opts.noTrunc))
		}
		mu.Unlock()
		var b bytes.Buffer
		err := formatter.Write(&b, formatter.Format(format), statsHeader, rows)
		return b.Bytes(), err
	}

	if opts.noStream {
		wg.Wait()
		for _, e := range entries {
			if e.err != nil {
				errs = append(errs, e.err.Error())
			}
		}
		// Like docker, any container that cannot be read fails the whole
		// snapshot.
		if len(errs) > 0 {
			return errors.New(strings.Join(errs, "\n"))
		}
		out, err := render()
		if err != nil {
			return err
		}
		_, err = c.Out.Write(out)
		return err
	}

	// Streaming: redraw every half second, in place on a terminal.
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	relist := time.NewTicker(2 * time.Second)
	defer relist.Stop()
	first := true
	for {
		select {
		case <-ctx.Done():
			return errCanceled
		case <-sampled:
			continue
		case <-relist.C:
			if len(names) == 0 {
				_ = listRunning()
			}
			continue
		case <-ticker.C:
		}
		if len(names) > 0 {
			mu.Lock()
			var failed []string
			for _, e := range entries {
				if e.err != nil {
					failed = append(failed, e.err.Error())
				}
			}
			all := len(failed) == len(entries)
			mu.Unlock()
			if all && len(failed) > 0 {
				return errors.New(strings.Join(failed, "\n"))
			}
		}
		out, err := render()
		if err != nil {
			return err
		}
		if c.Out.IsTerminal() {
			var b bytes.Buffer
			if first {
				b.WriteString("\x1b[2J")
			}
			b.WriteString("\x1b[H")
			for _, line := range strings.SplitAfter(string(out), "\n") {
				if line == "" {
					continue
				}
				b.WriteString(strings.TrimSuffix(line, "\n") + "\x1b[K\n")
			}
			b.WriteString("\x1b[J")
			out = b.Bytes()
		}
		first = false
		_, _ = c.Out.Write(out)
	}
}
