package e2e

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// progressImage has five tiny layers above busybox's, so a pull after its
// removal downloads more layers than the daemons pull at once (dockerd 3,
// berthd 4) and some of them wait.
const progressImage = "busybox:layers"

// perLayerSteps are the messages of a layer's progress that carry no byte
// count: dockerd sends each with "progressDetail":{}.
var perLayerSteps = map[string]bool{
	"Already exists": true, "Pulling fs layer": true, "Waiting": true,
	"Verifying Checksum": true, "Download complete": true, "Pull complete": true,
}

// TestPullProgressMessages (issue 11 item 7): every per-layer status
// message of a pull carries "progressDetail":{} as dockerd's do; byte
// counts carry current and total; the "Pulling from" line carries none;
// layers queued behind the concurrency limit say Waiting.
func TestPullProgressMessages(t *testing.T) {
	a := requireEnv(t).api()
	busybox(t) // the shared base layer: "Already exists"
	removeImageEverywhere(t, a, progressImage)
	t.Cleanup(func() { removeImageEverywhere(t, a, progressImage) })
	r, _ := pullAPI(t, a, "busybox", "layers", nil)
	r.wantStatus(t, 200)
	seen := map[string]bool{}
	pulling := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(r.Body), []byte("\n")) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("message %q: %v", line, err)
		}
		var status, id string
		json.Unmarshal(m["status"], &status)
		json.Unmarshal(m["id"], &id)
		detail, hasDetail := m["progressDetail"]
		switch {
		case m["error"] != nil:
			t.Fatalf("pull failed: %s", line)
		case strings.HasPrefix(status, "Pulling from "), id == "":
			if hasDetail {
				t.Errorf("%s: a message without a layer carries progressDetail", line)
			}
		case perLayerSteps[status]:
			seen[status] = true
			if string(detail) != "{}" {
				t.Errorf(`%s: want "progressDetail":{} as dockerd sends`, line)
			}
			if status == "Pulling fs layer" {
				pulling[id] = true
			}
			if status == "Waiting" && !pulling[id] {
				t.Errorf("%s: Waiting before Pulling fs layer", line)
			}
		case status == "Downloading" || status == "Extracting":
			var d struct{ Current, Total int64 }
			if err := json.Unmarshal(detail, &d); err != nil || d.Current <= 0 || d.Total <= 0 {
				t.Errorf("%s: want progressDetail with current and total", line)
			}
		default:
			t.Errorf("unexpected message %s", line)
		}
	}
	for _, want := range []string{"Already exists", "Pulling fs layer", "Waiting", "Download complete", "Pull complete"} {
		if !seen[want] {
			t.Errorf("no %q message in the pull of %s:\n%s", want, progressImage, r.Body)
		}
	}
}

var layerIDRE = regexp.MustCompile(`\b[0-9a-f]{12}\b`)

// TestPullTerminalUpdatesInPlace (issue 11 item 7): on a terminal, the
// CLI draws one line per layer and updates it in place (the JSON messages
// carry progressDetail), so when the pull ends each layer's ID is on one
// line only, which says its last step, as against dockerd.
func TestPullTerminalUpdatesInPlace(t *testing.T) {
	a := requireEnv(t).api()
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		removeImageEverywhere(t, a, progressImage)
		t.Cleanup(func() { removeImageEverywhere(t, a, progressImage) })
		tm := newTerm(t, c, "pull", progressImage)
		if code := tm.exitCode(3 * time.Minute); code != 0 {
			t.Fatalf("%s pull exited %d:\n%s", c.name, code, tm.screen())
		}
		screen := tm.screen()
		if !strings.Contains(screen, "Status: Downloaded newer image for "+progressImage) {
			t.Fatalf("%s pull: no final status on the screen:\n%s", c.name, screen)
		}
		count := map[string]int{}
		last := map[string]string{}
		for _, l := range strings.Split(screen, "\n") {
			for _, id := range layerIDRE.FindAllString(l, -1) {
				count[id]++
				last[id] = strings.TrimSpace(l)
			}
		}
		if len(count) < 6 {
			t.Fatalf("%s pull: fewer than 6 layer lines on the screen:\n%s", c.name, screen)
		}
		for id, n := range count {
			if n != 1 {
				t.Errorf("%s pull: layer %s is on %d lines, want 1 updated in place:\n%s", c.name, id, n, screen)
				continue
			}
			if !strings.HasSuffix(last[id], "Pull complete") && !strings.HasSuffix(last[id], "Already exists") {
				t.Errorf("%s pull: layer %s's line %q does not end in its last step", c.name, id, last[id])
			}
		}
	})
}
