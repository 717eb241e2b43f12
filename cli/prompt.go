package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// confirm prints message and "Are you sure you want to continue? [y/N] "
// and reads the answer from stdin. Only "y" or "yes" (any case) agree; an
// empty answer, end of input or Ctrl-C decline.
func (c *CLI) confirm(ctx context.Context, message string) (bool, error) {
	fmt.Fprintf(c.Out, "%s\nAre you sure you want to continue? [y/N] ", message)
	answer, err := c.readLine(ctx)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(c.Out)
			return false, errCanceled
		}
		return false, nil
	}
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes", nil
}

// readLine reads one line from stdin without the line ending. It gives up
// when ctx is canceled.
func (c *CLI) readLine(ctx context.Context) (string, error) {
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := readByteLine(c.In)
		done <- result{line, err}
	}()
	select {
	case r := <-done:
		return r.line, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// readByteLine reads up to and including '\n' one byte at a time, so that
// nothing after the line is consumed from stdin.
func readByteLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			if err == io.EOF && b.Len() > 0 {
				return b.String(), nil
			}
			return b.String(), err
		}
	}
}

// readPassword reads a line from the terminal on stdin without echoing it.
func (c *CLI) readPassword() (string, error) {
	b, err := term.ReadPassword(int(c.In.FD()))
	fmt.Fprintln(c.Out)
	return string(b), err
}
