package httputils

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

func TestCheckForJSON(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		ok       bool
	}{
		{"application/json", `{}`, true},
		{"application/json; charset=utf-8", `{}`, true},
		{"Application/JSON", `{}`, true},
		{"", "", true},
		{"", `{}`, false},
		{"text/plain", `{}`, false},
		{"text/plain", "", false},
		{"application/jsonx", `{}`, false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tc.body))
		if tc.body == "" {
			r = httptest.NewRequest(http.MethodPost, "/x", http.NoBody)
		}
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		err := CheckForJSON(r)
		if (err == nil) != tc.ok || (err != nil && !cerrdefs.IsInvalidArgument(err)) {
			t.Errorf("Content-Type %q, body %q: %v, want ok=%v", tc.ct, tc.body, err, tc.ok)
		}
	}
}
