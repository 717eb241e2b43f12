package formatter

import (
	"time"
	"unicode"

	"github.com/docker/go-units"
	"github.com/moby/moby/client/pkg/stringid"
)

// Size renders a byte count the way docker's tables do: decimal units with
// three significant digits ("1.98MB", "187MB", "0B").
func Size(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// SizeFull renders a byte count with go-units' default precision of four
// significant digits ("1.982MB"), as docker does for VirtualSize and for the
// space reclaimed by prune.
func SizeFull(n int64) string {
	return units.HumanSize(float64(n))
}

// Since renders how long ago t was, relative to now: "2 weeks ago",
// "Less than a second ago".
func Since(t, now time.Time) string {
	return units.HumanDuration(now.UTC().Sub(t)) + " ago"
}

// ShortID shortens an object ID for display: the algorithm prefix
// ("sha256:") is dropped and 12 characters are kept.
func ShortID(id string) string {
	return stringid.TruncateID(id)
}

// Ellipsis shortens s to at most width display cells, replacing the cut-off
// part with "…". Wide (east-asian) characters count as two cells.
func Ellipsis(s string, width int) string {
	if width <= 0 {
		return ""
	}
	if displayWidth(s) <= width {
		return s
	}
	var out []rune
	used := 0
	for _, r := range s {
		w := runeWidth(r)
		if used+w > width-1 {
			break
		}
		out = append(out, r)
		used += w
	}
	return string(out) + "…"
}

func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

// runeWidth approximates the number of terminal cells a rune takes: zero for
// combining marks and control characters, two for wide characters.
func runeWidth(r rune) int {
	switch {
	case r == 0 || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || unicode.IsControl(r):
		return 0
	case isWide(r):
		return 2
	}
	return 1
}

func isWide(r rune) bool {
	return (r >= 0x1100 && r <= 0x115F) || // Hangul Jamo
		(r >= 0x2E80 && r <= 0x303E) || // CJK radicals, punctuation
		(r >= 0x3041 && r <= 0x33FF) || // Hiragana .. CJK compatibility
		(r >= 0x3400 && r <= 0x4DBF) || // CJK extension A
		(r >= 0x4E00 && r <= 0x9FFF) || // CJK unified ideographs
		(r >= 0xA000 && r <= 0xA4CF) || // Yi
		(r >= 0xAC00 && r <= 0xD7A3) || // Hangul syllables
		(r >= 0xF900 && r <= 0xFAFF) || // CJK compatibility ideographs
		(r >= 0xFE30 && r <= 0xFE4F) || // CJK compatibility forms
		(r >= 0xFF00 && r <= 0xFF60) || // fullwidth forms
		(r >= 0xFFE0 && r <= 0xFFE6) ||
		(r >= 0x1F300 && r <= 0x1F64F) || // emoji
		(r >= 0x1F900 && r <= 0x1F9FF) ||
		(r >= 0x20000 && r <= 0x3FFFD) // CJK extensions B..
}

// BinarySize renders a byte count in binary units ("23.54GiB"), as docker
// shows total memory.
func BinarySize(n int64) string {
	return units.BytesSize(float64(n))
}
