package cli

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/image"
)

const (
	busyboxID = "sha256:e73ac3d7001c972dbf834cd16afb76f48fa0559862d6b5560b6e8b8229c807e4"
	nginxID   = "sha256:5146dd08d7a7c0a05c43f03a4f9c621b0324a8e90844f7eb156427c20fc72200"
	danglerID = "sha256:2be3516ca2145fb5c4c8d0d2b48a8e3a3fb3b4a1d2c4e5f60718293a4b5c6d7e"
	digestBB  = "sha256:38bcb170e10580e8378cd10f3656734153dcc1a69962539bd657240e52e957a0"
)

func sampleImages() []image.Summary {
	return []image.Summary{
		{ // oldest first: the CLI sorts by creation time itself
			ID: busyboxID, Created: fixedNow.Add(-15 * 24 * time.Hour).Unix(), Size: 1982352,
			RepoTags:    []string{"busybox:latest", "127.0.0.1:5000/library/busybox:latest"},
			RepoDigests: []string{"127.0.0.1:5000/library/busybox@" + digestBB},
			Containers:  -1, SharedSize: -1,
		},
		{
			ID: nginxID, Created: fixedNow.Add(-14 * time.Minute).Unix(), Size: 187_000_000,
			RepoTags: []string{"nginx:alpine"}, Containers: -1, SharedSize: -1,
		},
		{
			ID: danglerID, Created: fixedNow.Unix(), Size: 4_260_000,
			RepoTags: []string{"<none>:<none>"}, RepoDigests: []string{"<none>@<none>"}, Containers: 2, SharedSize: 1_000_000,
		},
	}
}

func TestImagesTable(t *testing.T) {
	d := newFakeDaemon(t)
	d.images = sampleImages()

	r := d.run(t, "", "", "images")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	checkOutput(t, "images", r.stdout, ""+
		"REPOSITORY                       TAG       IMAGE ID       CREATED                  SIZE\n"+
		"<none>                           <none>    2be3516ca214   Less than a second ago   4.26MB\n"+
		"nginx                            alpine    5146dd08d7a7   14 minutes ago           187MB\n"+
		"busybox                          latest    e73ac3d7001c   2 weeks ago              1.98MB\n"+
		"127.0.0.1:5000/library/busybox   latest    e73ac3d7001c   2 weeks ago              1.98MB\n")
	if got := d.calls(); len(got) != 1 || got[0] != "GET /images/json" {
		t.Errorf("requests = %v", got)
	}
}

func TestImagesVariants(t *testing.T) {
	d := newFakeDaemon(t)
	d.images = sampleImages()

	r := d.run(t, "", "", "images", "-q")
	checkOutput(t, "images -q", r.stdout, "2be3516ca214\n5146dd08d7a7\ne73ac3d7001c\ne73ac3d7001c\n")

	r = d.run(t, "", "", "image", "ls", "--digests", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}")
	checkOutput(t, "image ls --digests", r.stdout, ""+
		"REPOSITORY                       TAG       DIGEST\n"+
		"<none>                           <none>    <none>\n"+
		"nginx                            alpine    <none>\n"+
		"busybox                          latest    <none>\n"+
		"127.0.0.1:5000/library/busybox   latest    "+digestBB+"\n")

	r = d.run(t, "", "", "images", "--no-trunc", "--format", "{{.ID}} {{.Containers}} {{.SharedSize}} {{.UniqueSize}} {{.VirtualSize}}", "nginx")
	checkOutput(t, "images --no-trunc --format", r.stdout, ""+
		danglerID+" 2 1MB 3.26MB 4.26MB\n"+
		nginxID+" N/A N/A N/A 187MB\n"+
		busyboxID+" N/A N/A N/A 1.982MB\n"+
		busyboxID+" N/A N/A N/A 1.982MB\n")
	calls := d.calls()
	if last := calls[len(calls)-1]; last != "GET /images/json?filters="+url.QueryEscape(`{"reference":{"nginx":true}}`) {
		t.Errorf("REPOSITORY argument not sent as a reference filter: %s", last)
	}

	r = d.run(t, "", "", "images", "--format", "json", "-a", "-f", "dangling=false")
	first := strings.SplitN(r.stdout, "\n", 2)[0]
	want := `{"Containers":"2","CreatedAt":"` + time.Unix(fixedNow.Unix(), 0).String() + `","CreatedSince":"Less than a second ago",` +
		`"Digest":"\u003cnone\u003e","ID":"2be3516ca214","Repository":"\u003cnone\u003e","SharedSize":"1MB","Size":"4.26MB",` +
		`"Tag":"\u003cnone\u003e","UniqueSize":"3.26MB","VirtualSize":"4.26MB"}`
	checkOutput(t, "images --format json", first, want)
	calls = d.calls()
	if last := calls[len(calls)-1]; last != "GET /images/json?all=1&filters="+url.QueryEscape(`{"dangling":{"false":true}}`) {
		t.Errorf("-a -f not sent: %s", last)
	}
}

func TestImagesFormatFromConfig(t *testing.T) {
	d := newFakeDaemon(t)
	d.images = sampleImages()[1:2]
	dir := writeConfig(t, `{"auths":{},"imagesFormat":"{{.Repository}}:{{.Tag}}"}`)
	r := d.run(t, dir, "", "images")
	checkOutput(t, "images with imagesFormat", r.stdout, "nginx:alpine\n")
	r = d.run(t, dir, "", "images", "-q")
	checkOutput(t, "images -q ignores imagesFormat", r.stdout, "5146dd08d7a7\n")
}

func TestHistory(t *testing.T) {
	d := newFakeDaemon(t)
	d.history["nginx:alpine"] = []image.HistoryResponseItem{
		{ID: nginxID, Created: fixedNow.Add(-14 * time.Minute).Unix(),
			CreatedBy: `/bin/sh -c #(nop)  CMD ["sh" "-c" "echo 'nginx stand-in: busybox httpd serving /var/www on :80'"]`},
		{ID: "<missing>", Created: fixedNow.Add(-14 * time.Minute).Unix(), CreatedBy: "/bin/sh -c #(nop)  EXPOSE 80"},
		{ID: "<missing>", Created: fixedNow.Add(-20 * time.Minute).Unix(), Size: 1982352, Comment: "Imported from -"},
	}
	r := d.run(t, "", "", "history", "nginx:alpine")
	checkOutput(t, "history", r.stdout, ""+
		"IMAGE          CREATED          CREATED BY                                      SIZE      COMMENT\n"+
		"5146dd08d7a7   14 minutes ago   /bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"echo 'ngi…   0B        \n"+
		"<missing>      14 minutes ago   /bin/sh -c #(nop)  EXPOSE 80                    0B        \n"+
		"<missing>      20 minutes ago                                                   1.98MB    Imported from -\n")

	r = d.run(t, "", "", "image", "history", "-H=false", "-q", "nginx:alpine")
	checkOutput(t, "history -q", r.stdout, "5146dd08d7a7\n<missing>\n<missing>\n")

	r = d.run(t, "", "", "history", "-H=false", "--no-trunc", "--format", "{{.ID}}|{{.CreatedSince}}|{{.Size}}|{{.CreatedBy}}", "nginx:alpine")
	at := time.Unix(fixedNow.Add(-20*time.Minute).Unix(), 0).Format(time.RFC3339)
	if lines := strings.Split(r.stdout, "\n"); len(lines) != 4 || lines[2] != "<missing>|"+at+"|1982352|" ||
		!strings.HasPrefix(lines[0], nginxID+"|") || !strings.HasSuffix(lines[0], `:80'"]`) {
		t.Errorf("history -H=false --no-trunc:\n%s", r.stdout)
	}

	r = d.run(t, "", "", "history", "nosuch")
	if r.code != 1 || r.stderr != "Error response from daemon: No such image: nosuch:latest\n" || r.stdout != "" {
		t.Errorf("history nosuch: %+v", r)
	}
}

const busyboxInspect = `{"Id":"` + busyboxID + `","RepoTags":["busybox:latest"],"RepoDigests":[],"Parent":"","Comment":"",` +
	`"Created":"2026-11-27T10:48:24.65929567Z","Config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Labels":{"a":"<b>"}},` +
	`"Architecture":"amd64","Os":"linux","Size":1982352,"VirtualSize":1982352,` +
	`"RootFS":{"Type":"layers","Layers":["sha256:621fb2b08aeae3b370d41f7778310ccbc67519efbba7a518cc2cb7e932792b8f"]},"Metadata":{"LastTagTime":"0001-01-01T00:00:00Z"}}`

func TestInspect(t *testing.T) {
	d := newFakeDaemon(t)
	d.inspect["busybox"] = busyboxInspect

	r := d.run(t, "", "", "inspect", "busybox")
	if r.code != 0 {
		t.Fatalf("inspect busybox: %+v", r)
	}
	if !strings.HasPrefix(r.stdout, "[\n    {\n        \"Id\": \""+busyboxID+"\",\n        \"RepoTags\": [\n            \"busybox:latest\"\n        ],\n") ||
		!strings.HasSuffix(r.stdout, "        }\n    }\n]\n") || !strings.Contains(r.stdout, `"VirtualSize": 1982352,`) {
		t.Errorf("inspect busybox:\n%s", r.stdout)
	}
	// The container lookup comes first; the image one answers.
	if got := d.calls(); strings.Join(got, ",") != "GET /containers/busybox/json,GET /images/busybox/json" {
		t.Errorf("requests = %v", got)
	}

	r = d.run(t, "", "", "inspect", "-f", "json", "busybox")
	checkOutput(t, "inspect -f json", r.stdout, "["+busyboxInspect+"]\n")

	// Typed fields and functions that need the typed values.
	r = d.run(t, "", "", "image", "inspect", "--format", "{{.Size}} {{json .Config.Labels}} {{join .Config.Cmd \",\"}} {{.Metadata.LastTagTime}}", "busybox")
	checkOutput(t, "image inspect --format", r.stdout, "1982352 {\"a\":\"<b>\"} sh 0001-01-01 00:00:00 +0000 UTC\n")
	// A field only the raw JSON has: the template runs on the decoded JSON.
	r = d.run(t, "", "", "image", "inspect", "--format", "{{.VirtualSize}} {{.Config.Cmd}}", "busybox")
	checkOutput(t, "image inspect --format (raw)", r.stdout, "1982352 [sh]\n")

	r = d.run(t, "", "", "inspect", "-f", "{{.Nope}}", "busybox")
	if r.code != 1 || r.stdout != "\n" || !strings.Contains(r.stderr, `template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"`) {
		t.Errorf("inspect -f {{.Nope}}: %+v", r)
	}
	r = d.run(t, "", "", "inspect", "-f", "{{.Id", "busybox")
	if r.code != 64 || !strings.HasPrefix(r.stderr, "template parsing error: ") {
		t.Errorf("inspect -f {{.Id: %+v", r)
	}
}

func TestInspectNotFound(t *testing.T) {
	d := newFakeDaemon(t)
	d.inspect["busybox"] = busyboxInspect

	r := d.run(t, "", "", "inspect", "nosuchthing")
	checkOutput(t, "stdout", r.stdout, "[]\n")
	checkOutput(t, "stderr", r.stderr, "Error: No such object: nosuchthing\n")
	if r.code != 1 {
		t.Errorf("code %d", r.code)
	}
	want := "GET /containers/nosuchthing/json,GET /images/nosuchthing/json,GET /networks/nosuchthing,GET /volumes/nosuchthing"
	if got := strings.Join(d.calls(), ","); got != want {
		t.Errorf("lookups:\n%s\nwant\n%s", got, want)
	}

	r = d.run(t, "", "", "image", "inspect", "nosuch")
	checkOutput(t, "image inspect nosuch", r.stdout+r.stderr, "[]\nError response from daemon: no such image: nosuch: No such image: nosuch:latest\n")

	r = d.run(t, "", "", "inspect", "--type", "image", "-f", "{{.Os}}", "nosuch", "busybox")
	checkOutput(t, "inspect --type image", r.stdout+r.stderr, "linux\nError response from daemon: no such image: nosuch: No such image: nosuch:latest\n")

	r = d.run(t, "", "", "inspect", "--type", "foo", "x")
	if r.code != 1 || !strings.HasPrefix(r.stderr, `unknown type: "foo": must be one of "container", "image"`) {
		t.Errorf("--type foo: %+v", r)
	}
}

func TestPull(t *testing.T) {
	d := newFakeDaemon(t)
	d.pullStream = []string{
		`{"status":"Pulling from library/nginx","id":"alpine"}`,
		`{"status":"Already exists","progressDetail":{},"id":"f08dec7a1699"}`,
		`{"status":"Pulling fs layer","progressDetail":{},"id":"0d7d77748570"}`,
		`{"status":"Downloading","progressDetail":{"current":78,"total":78},"progress":"[==\u003e]","id":"0d7d77748570"}`,
		`{"status":"Pull complete","progressDetail":{},"id":"0d7d77748570"}`,
		`{"status":"Digest: sha256:271d9ab737e13a9ba1e0ff0de7c2f7111aa239c784ea3f5687b3ad05b4d079da"}`,
		`{"status":"Status: Downloaded newer image for nginx:alpine"}`,
	}
	r := d.run(t, "", "", "pull", "nginx:alpine")
	checkOutput(t, "pull", r.stdout, ""+
		"alpine: Pulling from library/nginx\n"+
		"f08dec7a1699: Already exists\n"+
		"0d7d77748570: Pulling fs layer\n"+
		"0d7d77748570: Pull complete\n"+
		"Digest: sha256:271d9ab737e13a9ba1e0ff0de7c2f7111aa239c784ea3f5687b3ad05b4d079da\n"+
		"Status: Downloaded newer image for nginx:alpine\n"+
		"docker.io/library/nginx:alpine\n")
	if got := d.calls(); len(got) != 1 || got[0] != "POST /images/create?fromImage=docker.io%2Flibrary%2Fnginx&tag=alpine" {
		t.Errorf("requests = %v", got)
	}
	if auth := d.headers[0].Get("X-Registry-Auth"); auth != "e30=" {
		t.Errorf("X-Registry-Auth without credentials = %q, want e30=", auth)
	}

	r = d.run(t, "", "", "image", "pull", "-q", "busybox")
	checkOutput(t, "pull -q", r.stdout, "docker.io/library/busybox:latest\n")
	r = d.run(t, "", "", "pull", "busybox")
	if !strings.HasPrefix(r.stdout, "Using default tag: latest\n") {
		t.Errorf("pull without tag:\n%s", r.stdout)
	}

	d.pullStream = []string{`{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`}
	r = d.run(t, "", "", "pull", "127.0.0.1:5000/library/nginx:nosuchtag")
	if r.code != 1 || r.stderr != "manifest unknown\n" {
		t.Errorf("pull error in stream: %+v", r)
	}
	r = d.run(t, "", "", "pull", "BAD:NAME::")
	if r.code != 1 || r.stderr != "invalid reference format: repository name (library/BAD) must be lowercase\n" {
		t.Errorf("pull bad name: %+v", r)
	}
}

func TestPullSendsStoredCredentials(t *testing.T) {
	d := newFakeDaemon(t)
	dir := writeConfig(t, `{"auths":{"127.0.0.1:5001":{"auth":"cHJpbnRmY2hhbXA6c2VjcmV0MTIz"}}}`)
	r := d.run(t, dir, "", "pull", "-q", "127.0.0.1:5001/printfchamp/mytest@"+digestBB)
	checkOutput(t, "pull by digest", r.stdout, "127.0.0.1:5001/printfchamp/mytest@"+digestBB+"\n")
	if got := d.calls(); got[0] != "POST /images/create?fromImage=127.0.0.1%3A5001%2Fprintfchamp%2Fmytest&tag="+url.QueryEscape(digestBB) {
		t.Errorf("request = %s", got[0])
	}
	raw, err := base64.URLEncoding.DecodeString(d.headers[0].Get("X-Registry-Auth"))
	if err != nil {
		t.Fatal(err)
	}
	var ac map[string]string
	if err := json.Unmarshal(raw, &ac); err != nil {
		t.Fatal(err)
	}
	if ac["username"] != "printfchamp" || ac["password"] != "secret123" || ac["serveraddress"] != "127.0.0.1:5001" || len(ac) != 3 {
		t.Errorf("X-Registry-Auth = %s", raw)
	}
}

func TestTagAndRmi(t *testing.T) {
	d := newFakeDaemon(t)
	r := d.run(t, "", "", "tag", "mytest:1.0", "127.0.0.1:5001/printfchamp/mytest:1.0")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("tag: %+v", r)
	}
	if got := d.calls(); got[0] != "POST /images/mytest:1.0/tag?repo=127.0.0.1%3A5001%2Fprintfchamp%2Fmytest&tag=1.0" {
		t.Errorf("tag request = %v", got)
	}
	r = d.run(t, "", "", "tag", "busybox", "BAD:NAME::")
	checkOutput(t, "tag bad target", r.stderr, `Error parsing reference: "BAD:NAME::" is not a valid repository/tag: invalid reference format: repository name (library/BAD) must be lowercase`+"\n")

	d.deletes["mytest:1.0"] = []image.DeleteResponse{
		{Untagged: "mytest:1.0"},
		{Deleted: "sha256:2862baf0dd93b12f6d110a9228b69894ccd6e603438d81464010d4ae5677c073"},
	}
	r = d.run(t, "", "", "rmi", "nosuch", "mytest:1.0", "nosuch2")
	checkOutput(t, "rmi stdout", r.stdout, "Untagged: mytest:1.0\nDeleted: sha256:2862baf0dd93b12f6d110a9228b69894ccd6e603438d81464010d4ae5677c073\n")
	checkOutput(t, "rmi stderr", r.stderr, "Error response from daemon: No such image: nosuch:latest\nError response from daemon: No such image: nosuch2:latest\n")
	if r.code != 1 {
		t.Errorf("rmi code %d", r.code)
	}
	calls := d.calls()
	if got := calls[len(calls)-2]; got != "DELETE /images/mytest:1.0" {
		t.Errorf("rmi request = %s", got)
	}
	r = d.run(t, "", "", "image", "rm", "-f", "--no-prune", "mytest:1.0")
	calls = d.calls()
	if got := calls[len(calls)-1]; got != "DELETE /images/mytest:1.0?force=1&noprune=1" || r.code != 0 {
		t.Errorf("image rm -f --no-prune request = %s (%+v)", got, r)
	}
}
