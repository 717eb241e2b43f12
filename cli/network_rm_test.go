package cli

import (
	"net/http"
	"testing"
)

// TestNetworkRemoveForce: rm -f passes over a network the daemon answers
// 404 for, whatever its words; a 404 without -f, or another error with
// it, still fails.
func TestNetworkRemoveForce(t *testing.T) {
	d := newFakeDaemon(t)
	d.extra = func(w http.ResponseWriter, r *http.Request, path string) bool {
		if r.Method != http.MethodDelete {
			return false
		}
		switch path {
		case "/networks/gone":
			notFound(w, "no network called gone here") // no "not found", no "No such"
		case "/networks/busy":
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "error while removing network: network busy id x has active endpoints"})
		case "/networks/ok":
			w.WriteHeader(http.StatusNoContent)
		default:
			return false
		}
		return true
	}
	r := d.run(t, "", "", "network", "rm", "-f", "gone", "ok")
	if r.code != 0 || r.stdout != "ok\n" || r.stderr != "" {
		t.Errorf("rm -f gone ok: %+v", r)
	}
	if r := d.run(t, "", "", "network", "rm", "gone"); r.code != 1 {
		t.Errorf("rm gone without -f: %+v", r)
	}
	if r := d.run(t, "", "", "network", "rm", "-f", "busy"); r.code != 1 {
		t.Errorf("rm -f busy: %+v", r)
	}
}
