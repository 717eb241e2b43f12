package container

import "testing"

// TestParseVolumesFrom: dockerd's accepted modes (ro or rw, with a label
// option) and its words for the rest.
func TestParseVolumesFrom(t *testing.T) {
	for _, c := range []struct {
		spec, ref string
		rw        bool
		err       string
	}{
		{spec: "data", ref: "data", rw: true},
		{spec: "data:ro", ref: "data"},
		{spec: "data:rw", ref: "data", rw: true},
		{spec: "data:ro,z", ref: "data"},
		{spec: "data:Z", ref: "data", rw: true},
		{spec: "", err: "volumes-from specification cannot be an empty string"},
		{spec: "data:bar", err: "invalid mode: bar"},
		{spec: "data:ro,shared", err: "invalid mode: ro,shared"},
		{spec: "data:nocopy", err: "invalid mode: nocopy"},
		{spec: "data:ro,rw", err: "invalid mode: ro,rw"},
	} {
		ref, rw, err := parseVolumesFrom(c.spec)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %q", c.spec, err, c.err)
			}
			continue
		}
		if err != nil || ref != c.ref || rw != c.rw {
			t.Errorf("%q: %q %v %v, want %q %v", c.spec, ref, rw, err, c.ref, c.rw)
		}
	}
}
