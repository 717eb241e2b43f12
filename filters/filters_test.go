package filters

import "testing"

func TestParseBothForms(t *testing.T) {
	a, err := Parse(`{"dangling":{"true":true},"label":{"a=b":true}}`)
	if err != nil || a.Get("dangling")[0] != "true" || !a.MatchLabels("label", map[string]string{"a": "b"}) {
		t.Fatalf("modern: %v %v", a, err)
	}
	a, err = Parse(`{"reference":["nginx*"]}`)
	if err != nil || a.Get("reference")[0] != "nginx*" {
		t.Fatalf("legacy: %v %v", a, err)
	}
	if _, err := Parse(`{bad`); err == nil {
		t.Fatal("bad JSON accepted")
	}
	if err := a.Validate("dangling"); err == nil {
		t.Fatal("unknown key accepted")
	}
	if a.MatchLabels("label", nil) != true {
		t.Fatal("no label filter must match")
	}
	b, _ := Parse(`{"label":{"a":true}}`)
	if b.MatchLabels("label", map[string]string{"x": "y"}) {
		t.Fatal("missing label matched")
	}
	if _, _, err := (Args{"dangling": {"maybe"}}).Bool("dangling"); err == nil {
		t.Fatal("bad bool accepted")
	}
}
