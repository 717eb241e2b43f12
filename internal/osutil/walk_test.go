package osutil

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWalkSymlinks(t *testing.T) {
	links := map[string]string{
		"/etc/evil": "/",
		"/dots":     "../../../..",
		"/rel":      "etc/sub",
		"/abs":      "/etc",
		"/chain":    "rel/../../abs",
		"/loop1":    "loop2",
		"/loop2":    "loop1",
		"/trail":    "etc/",
	}
	var looked []string
	lookup := func(p string) (string, bool, error) {
		looked = append(looked, p)
		if p == "/broken" {
			return "", false, unix.EIO
		}
		t, ok := links[p]
		return t, ok, nil
	}
	for _, tc := range []struct {
		in          string
		followFinal bool
		want        string
	}{
		{"/etc/evil/etc/x", true, "/etc/x"},
		{"/dots/etc/x", true, "/etc/x"},
		{"/rel/x", true, "/etc/sub/x"},
		{"/abs/../x", true, "/x"}, // ".." after a link: from where the link led
		{"/chain/x", true, "/etc/x"},
		{"/etc/evil", true, "/"},
		{"/etc/evil", false, "/etc/evil"},
		{"/abs", false, "/abs"},
		{"/trail", true, "/etc"},
		{"/missing/../abs", true, "/etc"}, // a missing component is a plain directory
		{"/missing/x/../y", true, "/missing/y"},
		{"/..//./x", true, "/x"},
		{"", true, "/"},
	} {
		got, err := WalkSymlinks(tc.in, tc.followFinal, lookup)
		if err != nil || got != tc.want {
			t.Errorf("WalkSymlinks(%q, %v) = %q, %v; want %q", tc.in, tc.followFinal, got, err, tc.want)
		}
	}

	if _, err := WalkSymlinks("/loop1/x", true, lookup); !errors.Is(err, unix.ELOOP) {
		t.Errorf("loop: %v, want ELOOP", err)
	}
	if _, err := WalkSymlinks("/broken/x", true, lookup); !errors.Is(err, unix.EIO) {
		t.Errorf("lookup error: %v, want EIO", err)
	}

	// Exactly MaxSymlinks links are followed; one more is a loop.
	chain := func(n int) func(string) (string, bool, error) {
		return func(p string) (string, bool, error) {
			if len(p) <= n { // "/" + i x's, i < n: a link to one more x
				return p[1:] + "x", true, nil
			}
			return "", false, nil
		}
	}
	if got, err := WalkSymlinks("/x", true, chain(MaxSymlinks+1)); err != nil || len(got) != MaxSymlinks+2 {
		t.Errorf("%d links: %q, %v", MaxSymlinks, got, err)
	}
	if _, err := WalkSymlinks("/x", true, chain(MaxSymlinks+2)); !errors.Is(err, unix.ELOOP) {
		t.Errorf("%d links: %v, want ELOOP", MaxSymlinks+1, err)
	}

	// The final component is not looked up without followFinal.
	looked = nil
	WalkSymlinks("/etc/evil", false, lookup)
	if len(looked) != 1 || looked[0] != "/etc" {
		t.Errorf("looked up %q, want only /etc", looked)
	}
}
