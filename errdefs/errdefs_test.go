package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestClassedKeepsMessageAndClass(t *testing.T) {
	err := NotFound("No such image: x:latest")
	if err.Error() != "No such image: x:latest" {
		t.Fatalf("message = %q", err.Error())
	}
	if !IsNotFound(err) || IsConflict(err) {
		t.Fatal("class not reported correctly")
	}
	wrapped := fmt.Errorf("pull: %w", err)
	if !IsNotFound(wrapped) {
		t.Fatal("class lost through %w")
	}
	cause := errors.New("boom")
	re := As(ErrConflict, cause)
	if !IsConflict(re) || !errors.Is(re, cause) || re.Error() != "boom" {
		t.Fatal("As must keep message and cause")
	}
	if As(ErrConflict, nil) != nil {
		t.Fatal("As(nil) must be nil")
	}
}
