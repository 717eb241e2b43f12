package build

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/builder"
)

// blockingBackend's Build runs until its context ends.
type blockingBackend struct{ started chan struct{} }

func (blockingBackend) ServeGRPC(net.Conn) {}
func (blockingBackend) HandleSession(context.Context, http.ResponseWriter, *http.Request) error {
	return nil
}
func (b blockingBackend) Build(ctx context.Context, _ builder.BuildOptions, _ builder.StatusFunc) (string, error) {
	close(b.started)
	<-ctx.Done()
	return "", ctx.Err()
}
func (blockingBackend) Prune(context.Context, builder.PruneOptions) (int64, []string, error) {
	return 0, nil, nil
}

// TestBuildCancel: POST /build/cancel?id= ends the POST /build that named
// that buildid; an unknown ID is answered 200 as dockerd does.
func TestBuildCancel(t *testing.T) {
	be := blockingBackend{started: make(chan struct{})}
	br := New(be).(*buildRouter)
	done := make(chan error, 1)
	go func() {
		r := httptest.NewRequest(http.MethodPost, "/build?buildid=b1&remote=http://x/ctx.tar", nil)
		done <- br.build(context.Background(), httptest.NewRecorder(), r, nil)
	}()
	<-be.started
	w := httptest.NewRecorder()
	if err := br.cancel(context.Background(), w, httptest.NewRequest(http.MethodPost, "/build/cancel?id=b1", nil), nil); err != nil || w.Code != 200 {
		t.Fatalf("cancel: %v %d", err, w.Code)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Errorf("the cancelled build returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the build did not end after POST /build/cancel")
	}
	br.mu.Lock()
	n := len(br.builds)
	br.mu.Unlock()
	if n != 0 {
		t.Errorf("%d builds still registered", n)
	}
	w = httptest.NewRecorder()
	if err := br.cancel(context.Background(), w, httptest.NewRequest(http.MethodPost, "/build/cancel?id=unknown", nil), nil); err != nil || w.Code != 200 {
		t.Errorf("cancel of an unknown build: %v %d", err, w.Code)
	}
	if err := br.cancel(context.Background(), httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/build/cancel", nil), nil); err == nil {
		t.Errorf("cancel without an id was accepted")
	}
}
