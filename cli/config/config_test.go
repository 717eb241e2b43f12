package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

func TestLoadMissingFile(t *testing.T) {
	f, err := Load(filepath.Join(t.TempDir(), "nope"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Auths) != 0 {
		t.Errorf("auths = %v", f.Auths)
	}
	if _, ok := f.GetAuth("127.0.0.1:5001"); ok {
		t.Error("GetAuth found credentials in an empty file")
	}
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.StoreAuth("127.0.0.1:5001", registry.AuthConfig{Username: "printfchamp", Password: "secret123"}); err != nil {
		t.Fatal(err)
	}

	// Byte for byte what docker writes for the same login.
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n\t\"auths\": {\n\t\t\"127.0.0.1:5001\": {\n\t\t\t\"auth\": \"cHJpbnRmY2hhbXA6c2VjcmV0MTIz\"\n\t\t}\n\t}\n}"
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, FileName): 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}

	g, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{"127.0.0.1:5001", "http://127.0.0.1:5001/", "https://127.0.0.1:5001/v2/"} {
		ac, ok := g.GetAuth(server)
		if !ok {
			t.Fatalf("GetAuth(%q): not found", server)
		}
		if ac.Username != "printfchamp" || ac.Password != "secret123" || ac.ServerAddress != "127.0.0.1:5001" {
			t.Errorf("GetAuth(%q) = %+v", server, ac)
		}
	}
	if _, ok := g.GetAuth("127.0.0.1:5000"); ok {
		t.Error("GetAuth matched another port")
	}

	if removed, err := g.EraseAuth("http://127.0.0.1:5001"); !removed || err != nil {
		t.Errorf("EraseAuth found nothing: %v", err)
	}
	if removed, _ := g.EraseAuth("127.0.0.1:5001"); removed {
		t.Error("EraseAuth removed twice")
	}
	data, _ = os.ReadFile(filepath.Join(dir, FileName))
	if want := "{\n\t\"auths\": {}\n}"; string(data) != want {
		t.Errorf("after logout: %q, want %q", data, want)
	}
}

func TestUnknownKeysSurvive(t *testing.T) {
	dir := t.TempDir()
	orig := `{
	"auths": {"https://index.docker.io/v1/": {"auth": "dTpw", "email": "u@example.com"}},
	"credHelpers": {"gcr.io": "gcloud"},
	"imagesFormat": "table {{.ID}}",
	"proxies": {"default": {"httpProxy": "http://proxy:3128"}}
}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.ImagesFormat != "table {{.ID}}" {
		t.Errorf("ImagesFormat = %q", f.ImagesFormat)
	}
	ac, ok := f.GetAuth("index.docker.io")
	if !ok || ac.Username != "u" || ac.Password != "p" || ac.ServerAddress != "https://index.docker.io/v1/" {
		t.Errorf("GetAuth = %+v, %v", ac, ok)
	}
	if _, err := f.StoreAuth("ghcr.io", registry.AuthConfig{Username: "a", IdentityToken: "tok", Password: "ignored"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, FileName))
	want := `{
	"auths": {
		"ghcr.io": {
			"auth": "YTo=",
			"identitytoken": "tok"
		},
		"https://index.docker.io/v1/": {
			"auth": "dTpw",
			"email": "u@example.com"
		}
	},
	"credHelpers": {
		"gcr.io": "gcloud"
	},
	"imagesFormat": "table {{.ID}}",
	"proxies": {
		"default": {
			"httpProxy": "http://proxy:3128"
		}
	}
}`
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	g, _ := Load(dir)
	ac, _ = g.GetAuth("ghcr.io")
	if ac.IdentityToken != "tok" || ac.Username != "a" || ac.Password != "" {
		t.Errorf("token entry = %+v", ac)
	}
}

func TestLoadBrokenFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("Load accepted a broken file")
	}
}

func TestHostname(t *testing.T) {
	tests := map[string]string{
		"https://index.docker.io/v1/": "index.docker.io",
		"http://127.0.0.1:5001":       "127.0.0.1:5001",
		"127.0.0.1:5001":              "127.0.0.1:5001",
		"registry.example.com/v2/":    "registry.example.com",
	}
	for in, want := range tests {
		if got := Hostname(in); got != want {
			t.Errorf("Hostname(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSaveFollowsSymlink: a config file that is a symlink (dotfiles kept
// elsewhere) is written through: the link stays, the file it names gets the
// content, and no temporary file is left on either side.
func TestSaveFollowsSymlink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	target := filepath.Join(t.TempDir(), "dotfiles", "berth.json")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.StoreAuth("127.0.0.1:5001", registry.AuthConfig{Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, FileName)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	g, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ac, ok := g.GetAuth("127.0.0.1:5001"); !ok || ac.Username != "u" {
		t.Fatalf("saved through the link: %+v %v", ac, ok)
	}
	for _, d := range []string{dir, filepath.Dir(target)} {
		if ents, _ := os.ReadDir(d); len(ents) != 1 {
			t.Errorf("%s: %v, want only the config file", d, ents)
		}
	}
}

// TestCredentialHelper: with credsStore set, credentials go to the helper
// (docker-credential-berthtest, the test helper) and the file keeps only an
// empty entry, as docker writes it; credHelpers picks a helper per host.
func TestCredentialHelper(t *testing.T) {
	helperDir, err := filepath.Abs("../../test/credhelper")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", helperDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	creds := t.TempDir()
	t.Setenv("BERTH_TEST_CREDS", creds)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(`{"credsStore":"berthtest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	plaintext, err := f.StoreAuth("127.0.0.1:5001", registry.AuthConfig{Username: "printfchamp", Password: "secret123"})
	if err != nil || plaintext {
		t.Fatalf("StoreAuth: plaintext %v, %v", plaintext, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, FileName))
	if want := "{\n\t\"auths\": {\n\t\t\"127.0.0.1:5001\": {}\n\t},\n\t\"credsStore\": \"berthtest\"\n}"; string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	if ents, _ := os.ReadDir(creds); len(ents) != 1 {
		t.Fatalf("helper store has %d entries, want 1", len(ents))
	}
	g, _ := Load(dir)
	ac, ok := g.GetAuth("127.0.0.1:5001")
	if !ok || ac.Username != "printfchamp" || ac.Password != "secret123" {
		t.Fatalf("GetAuth through the helper = %+v, %v", ac, ok)
	}
	if _, ok := g.GetAuth("127.0.0.1:5002"); ok {
		t.Error("GetAuth found credentials for another registry")
	}
	if removed, err := g.EraseAuth("127.0.0.1:5001"); !removed || err != nil {
		t.Fatalf("EraseAuth: %v %v", removed, err)
	}
	if ents, _ := os.ReadDir(creds); len(ents) != 0 {
		t.Fatalf("helper store still has %d entries", len(ents))
	}
	if _, ok := g.GetAuth("127.0.0.1:5001"); ok {
		t.Error("credentials still found after EraseAuth")
	}

	// credHelpers: one host through the helper, the rest in the file.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, FileName), []byte(`{"credHelpers":{"ghcr.io":"berthtest"}}`), 0o600)
	h, _ := Load(dir2)
	if h.Helper("ghcr.io") != "berthtest" || h.Helper("127.0.0.1:5001") != "" {
		t.Fatalf("helpers: %q %q", h.Helper("ghcr.io"), h.Helper("127.0.0.1:5001"))
	}
	if p, err := h.StoreAuth("127.0.0.1:5001", registry.AuthConfig{Username: "u", Password: "p"}); err != nil || !p {
		t.Fatalf("file store: %v %v", p, err)
	}
}
