package e2e

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// psIDs lists the containers GET /containers/json?all=1 answers for the
// filters (plus the test's label), sorted.
func psIDs(t *testing.T, a *apiClient, label string, kv ...string) []string {
	t.Helper()
	m := map[string][]string{"label": {label}}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = append(m[kv[i]], kv[i+1])
	}
	b, _ := json.Marshal(m)
	var out []psEntry
	a.call(t, "GET", "/containers/json?all=1&filters="+url.QueryEscape(string(b)), nil, nil).wantStatus(t, 200).decode(t, &out)
	ids := []string{}
	for _, e := range out {
		ids = append(ids, e.ID)
	}
	sort.Strings(ids)
	return ids
}

func wantPsIDs(t *testing.T, a *apiClient, label string, filter []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if want == nil {
		want = []string{}
	}
	if got := psIDs(t, a, label, filter...); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("containers/json filters %q: %q, want %q", filter, got, want)
	}
}

// TestPsFilterConfig (issue 14 item 8): the volume=, is-task=, isolation=
// filters and the answers to bad filter values, as dockerd 20.10's; the
// IMAGE column turns into the image's ID once the reference the container
// was made from names another image (or none).
func TestPsFilterConfig(t *testing.T) {
	busybox(t)
	a := env.d.api()
	u := uniq()
	label := "e2e.psfilter=" + u
	vol := "e2e-psvol-" + u
	t.Cleanup(func() { a.call(t, "DELETE", "/volumes/"+vol, nil, nil) })
	dir := t.TempDir()
	labels := map[string]string{"e2e.psfilter": u}
	named := createCtr(t, a, ctrName(t, "psvol"), map[string]any{
		"Image": "busybox", "Cmd": []string{"true"}, "Labels": labels,
		"HostConfig": map[string]any{"Binds": []string{vol + ":/data", dir + ":/mnt"}},
	})
	anon := createCtr(t, a, ctrName(t, "psanon"), map[string]any{
		"Image": "busybox", "Cmd": []string{"true"}, "Labels": labels, "Volumes": map[string]any{"/data2": map[string]any{}},
	})
	plain := createCtr(t, a, ctrName(t, "psplain"), map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "Labels": labels})

	wantPsIDs(t, a, label, nil, named, anon, plain)
	wantPsIDs(t, a, label, []string{"volume", vol}, named)
	wantPsIDs(t, a, label, []string{"volume", "/data"}, named)
	wantPsIDs(t, a, label, []string{"volume", "/mnt"}, named)
	wantPsIDs(t, a, label, []string{"volume", dir}, named)
	wantPsIDs(t, a, label, []string{"volume", "/data2"}, anon)
	wantPsIDs(t, a, label, []string{"volume", "/data2", "volume", vol}, named, anon)
	wantPsIDs(t, a, label, []string{"volume", "/dat"})
	wantPsIDs(t, a, label, []string{"is-task", "true"})
	wantPsIDs(t, a, label, []string{"is-task", "false"}, named, anon, plain)
	wantPsIDs(t, a, label, []string{"isolation", "default"}, named, anon, plain)

	get := func(f string) *apiResp {
		return a.call(t, "GET", "/containers/json?all=1&filters="+url.QueryEscape(f), nil, nil)
	}
	get(`{"is-task":{"maybe":true}}`).wantError(t, 400, "Invalid filter 'is-task=[maybe]'")
	get(`{"status":{"nope":true}}`).wantError(t, 400, "Invalid filter 'status=nope'")
	get(`{"publish":{"80:80":true}}`).wantError(t, 500, "filter for 'publish' should not contain ':': 80:80")
	get(`{"expose":{"http":true}}`).wantError(t, 500, "error while looking up for expose http")
	get(`{"exited":{"x":true}}`).wantError(t, 500, `strconv.Atoi: parsing "x": invalid syntax`)
	// A before=/since= container that does not exist: dockerd 20.10
	// answers 500 "no such container <name>" (its view's error is
	// unclassed; later dockerd answer 404); berth answers 404.
	notFound := 404
	if env.target == "docker" {
		notFound = 500
	}
	get(`{"before":{"e2e-nosuch-`+u+`":true}}`).wantError(t, notFound, "o such container", "e2e-nosuch-"+u)
	get(`{"since":{"e2e-nosuch-`+u+`":true}}`).wantError(t, notFound, "o such container", "e2e-nosuch-"+u)

	// The IMAGE column.
	bb := inspectImage(t, a, "busybox:latest")
	img := "e2e/psimg:" + u
	a.call(t, "POST", "/images/busybox:latest/tag?repo=e2e/psimg&tag="+u, nil, nil).wantStatus(t, 201)
	t.Cleanup(func() { removeImage(t, a, img) })
	tagged := createCtr(t, a, ctrName(t, "psimg"), map[string]any{"Image": img, "Cmd": []string{"true"}, "Labels": labels})
	short := createCtr(t, a, ctrName(t, "psimgid"), map[string]any{"Image": strings.TrimPrefix(bb.ID, "sha256:")[:12], "Cmd": []string{"true"}, "Labels": labels})
	image := func(id string) string {
		t.Helper()
		var out []psEntry
		a.call(t, "GET", "/containers/json?all=1&filters="+url.QueryEscape(`{"id":{"`+id+`":true}}`), nil, nil).wantStatus(t, 200).decode(t, &out)
		if len(out) != 1 {
			t.Fatalf("containers/json id=%s: %d entries", id, len(out))
		}
		return out[0].Image
	}
	if got := image(tagged); got != img {
		t.Errorf("Image of a container made from %s: %q", img, got)
	}
	if got, want := image(short), strings.TrimPrefix(bb.ID, "sha256:")[:12]; got != want {
		t.Errorf("Image of a container made from the image ID %s: %q", want, got)
	}
	a.call(t, "DELETE", "/images/"+img, nil, nil).wantStatus(t, 200)
	if got := image(tagged); got != bb.ID {
		t.Errorf("Image of a container whose tag %s is gone: %q, want the image ID %s", img, got, bb.ID)
	}
}

// TestPsFilterNetworkPorts (issue 14 item 8): network= (by name or ID
// prefix), publish= (a published host port) and expose= (a container port
// ps lists), as dockerd 20.10 matches them.
func TestPsFilterNetworkPorts(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	u := uniq()
	label := "e2e.psnet=" + u
	labels := map[string]string{"e2e.psnet": u}
	netw := netName("psnet")
	var created struct{ ID string }
	a.call(t, "POST", "/networks/create", []byte(`{"Name":"`+netw+`"}`), nil).wantStatus(t, 201).decode(t, &created)
	nd.rmNetLater(t, netw)

	run := func(name string, body map[string]any) string {
		t.Helper()
		nd.rmLater(t, name)
		body["Image"], body["Cmd"], body["Labels"] = "busybox", []string{"sleep", "300"}, labels
		b, _ := json.Marshal(body)
		var out struct{ ID string }
		a.call(t, "POST", "/containers/create?name="+name, b, nil).wantStatus(t, 201).decode(t, &out)
		a.call(t, "POST", "/containers/"+out.ID+"/start", nil, nil).wantStatus(t, 204)
		return out.ID
	}
	pub := run(netName("pspub"), map[string]any{
		"ExposedPorts": map[string]any{"80/tcp": map[string]any{}},
		"HostConfig":   map[string]any{"NetworkMode": netw, "PortBindings": map[string]any{"80/tcp": []map[string]string{{"HostPort": "18081"}}}},
	})
	exp := run(netName("psexp"), map[string]any{"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}}})

	wantPsIDs(t, a, label, nil, pub, exp)
	wantPsIDs(t, a, label, []string{"network", netw}, pub)
	wantPsIDs(t, a, label, []string{"network", created.ID[:12]}, pub)
	wantPsIDs(t, a, label, []string{"network", "bridge"}, exp)
	wantPsIDs(t, a, label, []string{"network", "e2e-nosuch-" + u})
	wantPsIDs(t, a, label, []string{"publish", "18081"}, pub)
	wantPsIDs(t, a, label, []string{"publish", "18081/udp"})
	wantPsIDs(t, a, label, []string{"publish", "80"})
	wantPsIDs(t, a, label, []string{"expose", "80"}, pub)
	wantPsIDs(t, a, label, []string{"expose", "79-81/tcp"}, pub)
	wantPsIDs(t, a, label, []string{"expose", "8080/tcp"}, exp)
	wantPsIDs(t, a, label, []string{"expose", "8080/udp"})
	wantPsIDs(t, a, label, []string{"expose", "8080", "publish", "18081"}, pub, exp)
}

// TestPsAncestorChildImages (issue 14 item 8): ps --filter ancestor=X
// lists the containers of X and of the images built on X (a commit is),
// as dockerd walks the image graph down; a missing image matches nothing.
func TestPsAncestorChildImages(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		label := "e2e.anc=" + uniq()
		parent := ctrName(t, "ancparent")
		c.ok("run", "-l", label, "--name", parent, "busybox", "touch", "/committed")
		child := "e2e-anc-child-" + uniq()
		c.ok("commit", parent, child)
		t.Cleanup(func() { removeImage(t, a, child+":latest") })
		sibling := "e2e-anc-sibling-" + uniq()
		c.ok("commit", parent, sibling)
		t.Cleanup(func() { removeImage(t, a, sibling+":latest") })
		childCtr := ctrName(t, "ancchild")
		c.ok("create", "-l", label, "--name", childCtr, child, "true")
		ids := func(ancestor string) []string {
			t.Helper()
			got := lines(c.ok("ps", "-aq", "--no-trunc", "--filter", "label="+label, "--filter", "ancestor="+ancestor).Stdout)
			sort.Strings(got)
			return got
		}
		pid, cid := inspectCtr(t, a, parent).ID, inspectCtr(t, a, childCtr).ID
		both := []string{pid, cid}
		sort.Strings(both)
		if got := ids("busybox"); strings.Join(got, ",") != strings.Join(both, ",") {
			t.Errorf("%s ps --filter ancestor=busybox: %q, want %s's and %s's (its image is a commit on busybox)", c.name, got, parent, childCtr)
		}
		if got := ids(child); len(got) != 1 || got[0] != cid {
			t.Errorf("%s ps --filter ancestor=%s: %q, want only %s", c.name, child, got, childCtr)
		}
		if got := ids(sibling); len(got) != 0 {
			t.Errorf("%s ps --filter ancestor=%s (a sibling): %q, want none", c.name, sibling, got)
		}
		if got := ids("e2e-no-such-image-" + uniq()); len(got) != 0 {
			t.Errorf("%s ps --filter ancestor=<missing image>: %q, want none", c.name, got)
		}
	})
}
