package build

import (
	"encoding/base64"
	"testing"
)

func TestRegistryConfig(t *testing.T) {
	h := base64.URLEncoding.EncodeToString([]byte(`{"127.0.0.1:5001":{"username":"u","password":"p"}}`))
	got := registryConfig(h)
	if ac, ok := got["127.0.0.1:5001"]; !ok || ac.Username != "u" || ac.Password != "p" {
		t.Errorf("decoded %+v", got)
	}
	// As dockerd: what does not decode gives no credentials, no error.
	if got := registryConfig("%%%not base64"); len(got) != 0 {
		t.Errorf("garbage decoded to %+v", got)
	}
	if got := registryConfig(""); got != nil {
		t.Errorf("no header decoded to %+v", got)
	}
}
