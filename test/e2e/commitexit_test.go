package e2e

import (
	"testing"
)

// TestCommitExitingContainer (issue 14 item 7): a commit that comes while
// the container is exiting (its record still says running, its process is
// gone) commits it, as dockerd does, instead of answering 500 for the
// failed pause. Each round starts a container that exits at once and
// commits it right away, with the default pause.
func TestCommitExitingContainer(t *testing.T) {
	busybox(t)
	a := env.d.api()
	for i := 0; i < 20; i++ {
		_, id := runDetached(t, a, "commitexit", nil, "sh", "-c", "echo x > /f")
		var out struct{ ID string }
		a.call(t, "POST", "/commit?container="+id+"&pause=1", []byte(`{}`), nil).wantStatus(t, 201).decode(t, &out)
		if out.ID == "" {
			t.Fatalf("round %d: commit answered no image ID", i)
		}
		removeImage(t, a, out.ID)
	}
}
