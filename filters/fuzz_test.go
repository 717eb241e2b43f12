package filters

import (
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

// FuzzParse decodes arbitrary filters parameters: either Args or an
// invalid-argument error, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", `{"label":{"a=b":true}}`, `{"dangling":["true"]}`, `{"x":{"y":false}}`, `[1]`, `{"a":null}`, `{"a":{"b":"c"}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if !cerrdefs.IsInvalidArgument(err) {
				t.Fatalf("Parse(%q): %v is not an invalid argument", s, err)
			}
			return
		}
		_ = a.Validate("label", "dangling", "before", "since", "reference", "until")
	})
}
