package formatter

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type row struct {
	ID   string
	Name string
	Size string
}

func (r row) MarshalJSON() ([]byte, error) {
	type plain row
	return json.Marshal(plain(r))
}

var header = map[string]string{"ID": "IMAGE ID", "Name": "NAME", "Size": "SIZE"}

var rows = []row{
	{ID: "e73ac3d7001c", Name: "busybox", Size: "1.98MB"},
	{ID: "5146dd08d7a7", Name: "127.0.0.1:5300/library/nginx", Size: "187MB"},
	{ID: "0123456789ab", Name: "<none>", Size: "0B"},
}

func TestFormatTemplate(t *testing.T) {
	tests := []struct {
		in        Format
		want      string
		table, js bool
	}{
		{"table", "", true, false},
		{"table {{.ID}}\\t{{.Name}}", "{{.ID}}\t{{.Name}}", true, false},
		{"json", "{{json .}}", false, true},
		{" json ", "{{json .}}", false, true},
		{"{{.ID}}\\n", "{{.ID}}\n", false, false},
		{"{{.ID}}", "{{.ID}}", false, false},
	}
	for _, tt := range tests {
		if got := tt.in.Template(); got != tt.want {
			t.Errorf("Format(%q).Template() = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in.IsTable() != tt.table || tt.in.IsJSON() != tt.js {
			t.Errorf("Format(%q): IsTable=%v IsJSON=%v", tt.in, tt.in.IsTable(), tt.in.IsJSON())
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "table {{.Name}}\t{{.ID}}\t{{.Size}}", header, rows); err != nil {
		t.Fatal(err)
	}
	// Columns are as wide as their widest cell plus 3, and at least 10; the
	// last column is not padded.
	want := "" +
		"NAME                           IMAGE ID       SIZE\n" +
		"busybox                        e73ac3d7001c   1.98MB\n" +
		"127.0.0.1:5300/library/nginx   5146dd08d7a7   187MB\n" +
		"<none>                         0123456789ab   0B\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteTableMinimumWidthAndEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "table {{.Size}}\t{{.Name}}", header, []row(nil)); err != nil {
		t.Fatal(err)
	}
	// With no rows the header still prints; SIZE is padded to 10 columns.
	if want := "SIZE      NAME\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestWriteTableHeaderIgnoresFunctions(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, `table {{upper .Name}}\t{{truncate .ID 4}}`, header, rows[:1]); err != nil {
		t.Fatal(err)
	}
	want := "NAME      IMAGE ID\nBUSYBOX   e73a\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestWriteRawTemplate(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, `{{.Name}}\t{{.ID}}|`, header, rows[:2]); err != nil {
		t.Fatal(err)
	}
	// Not a table: real tabs, no alignment, no header.
	want := "busybox\te73ac3d7001c|\n127.0.0.1:5300/library/nginx\t5146dd08d7a7|\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "json", header, rows[2:]); err != nil {
		t.Fatal(err)
	}
	want := `{"ID":"0123456789ab","Name":"\u003cnone\u003e","Size":"0B"}` + "\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestWriteErrors(t *testing.T) {
	var b bytes.Buffer
	err := Write(&b, "{{.ID", header, rows)
	if err == nil || !strings.HasPrefix(err.Error(), "template parsing error: ") {
		t.Errorf("unclosed action: err = %v", err)
	}
	err = Write(&b, "{{.Nope}}", header, rows)
	if err == nil || !strings.Contains(err.Error(), "can't evaluate field Nope") {
		t.Errorf("unknown field: err = %v", err)
	}
}

func TestFuncs(t *testing.T) {
	data := map[string]any{
		"S":    "hello world",
		"L":    []string{"a", "b"},
		"HTML": map[string]string{"k": "<v>"},
	}
	tests := map[string]string{
		`{{json .L}}`:              `["a","b"]`,
		`{{json .HTML}}`:           `{"k":"<v>"}`,
		`{{join .L ","}}`:          `a,b`,
		`{{split "a:b" ":"}}`:      `[a b]`,
		`{{title .S}}`:             `Hello World`,
		`{{upper .S}}`:             `HELLO WORLD`,
		`{{lower "AB"}}`:           `ab`,
		`{{pad "x" 2 1}}|`:         `  x |`,
		`{{truncate .S 5}}`:        `hello`,
		`{{truncate .S 50}}`:       `hello world`,
		`{{println "x"}}`:          "x\n",
		`{{range .L}}{{.}}{{end}}`: "ab",
	}
	for text, want := range tests {
		tmpl, err := Parse(text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if b.String() != want {
			t.Errorf("%s = %q, want %q", text, b.String(), want)
		}
	}
}

func TestSize(t *testing.T) {
	tests := map[int64]string{
		0:             "0B",
		61:            "61B",
		1982352:       "1.98MB",
		4_260_000:     "4.26MB",
		187_000_000:   "187MB",
		1_500_000_000: "1.5GB",
	}
	for n, want := range tests {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	if got := SizeFull(1982352); got != "1.982MB" {
		t.Errorf("SizeFull = %q", got)
	}
	if got := BinarySize(25276514304); got != "23.54GiB" {
		t.Errorf("BinarySize = %q", got)
	}
}

func TestSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := map[time.Duration]string{
		0:                    "Less than a second ago",
		-time.Minute:         "Less than a second ago", // clocks out of step
		time.Second:          "1 second ago",
		90 * time.Second:     "About a minute ago",
		14 * time.Minute:     "14 minutes ago",
		time.Hour:            "About an hour ago",
		20 * time.Hour:       "20 hours ago",
		3 * 24 * time.Hour:   "3 days ago",
		15 * 24 * time.Hour:  "2 weeks ago",
		70 * 24 * time.Hour:  "2 months ago",
		800 * 24 * time.Hour: "2 years ago",
	}
	for d, want := range tests {
		if got := Since(now.Add(-d), now); got != want {
			t.Errorf("Since(now-%v) = %q, want %q", d, got, want)
		}
	}
}

func TestEllipsis(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  string
	}{
		// From docker history nginx:alpine.
		{`/bin/sh -c #(nop)  CMD ["sh" "-c" "echo 'nginx stand-in: busybox httpd serving /var/www on :80'"]`, 45,
			`/bin/sh -c #(nop)  CMD ["sh" "-c" "echo 'ngi…`},
		{`/bin/sh -c echo "Hello from Docker!" > /hello.txt`, 45, `/bin/sh -c echo "Hello from Docker!" > /hell…`},
		{`/bin/sh -c #(nop)  EXPOSE 80`, 45, `/bin/sh -c #(nop)  EXPOSE 80`},
		{"exactly10!", 10, "exactly10!"},
		{"abcdef", 1, "…"},
		{"abcdef", 0, ""},
		{"日本語のテキスト", 7, "日本語…"}, // wide characters take two cells
		{"", 5, ""},
	}
	for _, tt := range tests {
		if got := Ellipsis(tt.in, tt.width); got != tt.want {
			t.Errorf("Ellipsis(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}

func TestShortID(t *testing.T) {
	tests := map[string]string{
		"sha256:e73ac3d7001c972dbf834cd16afb76f48fa0559862d6b5560b6e8b8229c807e4": "e73ac3d7001c",
		"e73ac3d7001c972dbf834cd16afb76f48fa0559862d6b5560b6e8b8229c807e4":        "e73ac3d7001c",
		"<missing>": "<missing>",
	}
	for in, want := range tests {
		if got := ShortID(in); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", in, got, want)
		}
	}
}
