package cgstats

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth/berth/runtime"
)

func TestParsers(t *testing.T) {
	kv := ParseKV([]byte("cache 10\nrss 20\ntotal_inactive_file 5\nbad line here\n"))
	if kv["cache"] != 10 || kv["total_inactive_file"] != 5 || len(kv) != 3 {
		t.Fatalf("kv %v", kv)
	}
	if ParseUint([]byte("max\n")) != 0 || ParseUint([]byte("42\n")) != 42 {
		t.Fatal("ParseUint")
	}
	e := ParseBlkioV1([]byte("8:0 Read 100\n8:0 Write 200\nTotal 300\n"))
	if len(e) != 2 || e[1].Op != "Write" || e[1].Value != 200 || e[0].Major != 8 {
		t.Fatalf("blkio %+v", e)
	}
	b, ops := ParseIOStatV2([]byte("259:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"))
	if len(b) != 2 || b[0].Op != "read" || b[1].Value != 8192 || len(ops) != 2 || ops[1].Value != 2 {
		t.Fatalf("io.stat %+v %+v", b, ops)
	}
}

// A sample reads each controller's files where runc's state.json says
// the task's cgroups are.
func TestSampleFromRuncPaths(t *testing.T) {
	root := t.TempDir()
	w := func(dir, name, s string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cg := filepath.Join(root, "cg")
	mem, cpu, pids := filepath.Join(cg, "memory"), filepath.Join(cg, "cpu,cpuacct"), filepath.Join(cg, "pids")
	w(filepath.Join(root, "runc", "c1"), "state.json", `{"cgroup_paths":{"memory":"`+mem+`","cpu":"`+cpu+`","cpuacct":"`+cpu+`","pids":"`+pids+`"}}`)
	w(mem, "memory.usage_in_bytes", "4096\n")
	w(mem, "memory.limit_in_bytes", "8192\n")
	w(mem, "memory.stat", "total_inactive_file 7\n")
	w(cpu, "cpuacct.usage", "123\n")
	w(cpu, "cpuacct.usage_percpu", "100 23 \n")
	w(cpu, "cpuacct.stat", "user 2\nsystem 1\n")
	w(pids, "pids.current", "3\n")
	w(pids, "pids.max", "max\n")
	paths, err := RuncPaths(filepath.Join(root, "runc"), "c1")
	if err != nil {
		t.Fatal(err)
	}
	var st runtime.Stats
	NewReader(paths, false).Sample(&st, 0)
	if st.Read.IsZero() || st.Memory.Usage != 4096 || st.Memory.Limit != 8192 || st.Memory.Stat["total_inactive_file"] != 7 {
		t.Errorf("memory %+v", st.Memory)
	}
	if st.CPU.Total != 123 || len(st.CPU.PerCPU) != 2 || st.CPU.User != 2e7 || st.CPU.Kernel != 1e7 {
		t.Errorf("cpu %+v", st.CPU)
	}
	if st.Pids.Current != 3 || st.Pids.Limit != 0 || st.Networks != nil {
		t.Errorf("pids %+v networks %v", st.Pids, st.Networks)
	}
	if _, err := RuncPaths(filepath.Join(root, "runc"), "gone"); !os.IsNotExist(err) {
		t.Errorf("no state: %v", err)
	}
}
