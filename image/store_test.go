package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A damaged images.db (garbled: bbolt refuses it or panics on it; empty:
// bbolt would start it anew without a word) is kept aside, a new one is
// made, and the damage is said (issue 13 item 9). A sound one opens with
// its records.
func TestDamagedRecordStore(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"garbled", []byte("\x00\x01 not a bolt file \x00")},
		{"garbled-long", []byte(strings.Repeat("\xde\xad\xbe\xef", 4096))},
		{"empty", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "images.db")
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			rs, damage, err := openRecordStoreChecked(path)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			if damage == nil || !strings.Contains(damage.Error(), path+".damaged") {
				t.Errorf("damage = %v, want it said, naming the kept file", damage)
			}
			if b, err := os.ReadFile(path + ".damaged"); err != nil || string(b) != string(c.data) {
				t.Errorf("the damaged file is not kept as it was: %v", err)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "images.db")
	rs, damage, err := openRecordStoreChecked(path)
	if err != nil || damage != nil {
		t.Fatalf("a new database: damage %v, err %v", damage, err)
	}
	rs.Close()
	rs, damage, err = openRecordStoreChecked(path)
	if err != nil || damage != nil {
		t.Fatalf("reopened: damage %v, err %v", damage, err)
	}
	rs.Close()
}
