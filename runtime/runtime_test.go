package runtime

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeStream is an in-process Stream: frames queued by the test, input
// collected.
type fakeStream struct {
	frames chan [2]string // stream id ("1"/"2"), data

	mu       sync.Mutex
	in       bytes.Buffer
	inClosed bool
	closed   chan struct{}
	once     sync.Once
}

func newFakeStream() *fakeStream {
	return &fakeStream{frames: make(chan [2]string, 16), closed: make(chan struct{})}
}

func (f *fakeStream) ReadFrame(buf []byte) (byte, []byte, error) {
	select {
	case fr, ok := <-f.frames:
		if !ok {
			return 0, nil, io.EOF
		}
		return fr[0][0] - '0', append(buf[:0], fr[1]...), nil
	case <-f.closed:
		return 0, nil, errors.New("closed")
	}
}

func (f *fakeStream) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.in.Write(p)
}

func (f *fakeStream) CloseWrite() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inClosed = true
	return nil
}

func (f *fakeStream) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func TestCopyRelaysBothWays(t *testing.T) {
	s := newFakeStream()
	s.frames <- [2]string{"1", "out1 "}
	s.frames <- [2]string{"2", "err1"}
	s.frames <- [2]string{"1", "out2"}
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Copy(context.Background(), s, IO{Stdin: strings.NewReader("input"), Stdout: &out, Stderr: &errOut})
	}()
	// The input is relayed and closed before the output ends.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		ok := s.inClosed && s.in.String() == "input"
		s.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stdin was not relayed and closed")
		}
		time.Sleep(time.Millisecond)
	}
	close(s.frames)
	if err := <-done; err != nil {
		t.Fatalf("Copy = %v", err)
	}
	if out.String() != "out1 out2" || errOut.String() != "err1" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestCopyEndsWithContext(t *testing.T) {
	s := newFakeStream()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Copy(ctx, s, IO{}) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Copy = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Copy did not end with its context")
	}
}

func TestIsStartError(t *testing.T) {
	err := error(&StartError{Msg: "exec: \"x\": executable file not found in $PATH"})
	if !IsStartError(err) || !IsStartError(errors.Join(errors.New("start"), err)) || IsStartError(errors.New("other")) {
		t.Fatal("IsStartError")
	}
}
