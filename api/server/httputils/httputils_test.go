package httputils

import (
	"net/http/httptest"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

// TestReadJSONBody: where dockerd needs a body, an empty one (no body,
// zero length, or a chunked body with nothing in it) and a malformed one
// are invalid arguments with dockerd's words; ReadJSON lets an empty body
// through.
func TestReadJSONBody(t *testing.T) {
	var v struct{ Name string }
	for _, body := range []string{"", " "} {
		r := httptest.NewRequest("POST", "/volumes/create", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		err := ReadJSONBody(r, &v)
		if !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "got EOF while reading request body") {
			t.Errorf("body %q: %v, want invalid argument \"got EOF while reading request body\"", body, err)
		}
		r = httptest.NewRequest("POST", "/volumes/create", strings.NewReader(body))
		if err := ReadJSON(r, &v); err != nil {
			t.Errorf("ReadJSON, body %q: %v", body, err)
		}
	}
	r := httptest.NewRequest("POST", "/volumes/create", strings.NewReader("{invalid json"))
	r.Header.Set("Content-Type", "application/json")
	if err := ReadJSONBody(r, &v); !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "invalid character 'i' looking for beginning of object key string") {
		t.Errorf("malformed: %v", err)
	}
	r = httptest.NewRequest("POST", "/volumes/create", strings.NewReader(`{"Name":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	if err := ReadJSONBody(r, &v); err != nil || v.Name != "x" {
		t.Errorf("good body: %v %+v", err, v)
	}
}
