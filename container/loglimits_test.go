package container

import "testing"

// TestLogLimits: max-size is decimal, as dockerd's json-file logger reads
// it with go-units' FromHumanSize; max-file is at least 1.
func TestLogLimits(t *testing.T) {
	cases := []struct {
		opts  map[string]string
		size  int64
		files int
	}{
		{nil, 0, 1},
		{map[string]string{"max-size": "1k"}, 1000, 1},
		{map[string]string{"max-size": "1m", "max-file": "3"}, 1000000, 3},
		{map[string]string{"max-size": "10MB"}, 10000000, 1},
		{map[string]string{"max-size": "1.5g"}, 1500000000, 1},
		{map[string]string{"max-size": "512"}, 512, 1},
		{map[string]string{"max-size": "abc", "max-file": "x"}, 0, 1},
		{map[string]string{"max-size": "-1", "max-file": "0"}, 0, 1},
	}
	for _, c := range cases {
		size, files := logLimits(c.opts)
		if size != c.size || files != c.files {
			t.Errorf("logLimits(%v) = %d, %d; want %d, %d", c.opts, size, files, c.size, c.files)
		}
	}
}
