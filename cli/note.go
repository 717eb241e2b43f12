package cli

import (
	"fmt"
	"strings"
)

// ANSI sequences as docker's CLI writes them (github.com/morikuni/aec):
// a style, the text, then a reset.
const (
	ansiReset      = "\x1b[0m"
	ansiBold       = "\x1b[1m"
	ansiItalic     = "\x1b[3m"
	ansiBlackF     = "\x1b[30m"
	ansiLightCyanF = "\x1b[96m"
	ansiLightCyanB = "\x1b[106m"
)

func ansi(style, s string) string { return style + s + ansiReset }

// printNote writes an "Info" note as docker's CLI does: a blank line, the
// header, then the note's lines aligned under it; in colour (bold flags,
// italic text) on a terminal unless NO_COLOR is set.
func (c *CLI) printNote(note string) {
	color := c.Out.IsTerminal() && c.Getenv("NO_COLOR") == ""
	header := " Info -> "
	if color {
		header = ansi(ansiBold, ansi(ansiLightCyanB, ansi(ansiBlackF, "i"))+" "+ansi(ansiLightCyanF, "Info → "))
		note = strings.ReplaceAll(note, "--platform", ansi(ansiBold, "--platform"))
	}
	fmt.Fprint(c.Out, "\n", header)
	for i, line := range strings.Split(note, "\n") {
		if i > 0 {
			fmt.Fprint(c.Out, strings.Repeat(" ", 9))
		}
		if color {
			line = ansi(ansiItalic, line)
		}
		fmt.Fprintln(c.Out, line)
	}
}
