package builder

import (
	"bytes"
	"context"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/source/containerimage"
	"github.com/moby/buildkit/util/resolver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newLocalStore(t *testing.T, labeled bool) content.Store {
	t.Helper()
	var (
		s   content.Store
		err error
	)
	if labeled {
		s, err = local.NewLabeledStore(t.TempDir(), memLabels{})
	} else {
		s, err = local.NewStore(t.TempDir())
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// memLabels keeps a test store's labels (the worker's real store keeps
// them in containerd's metadata database).
type memLabels map[digest.Digest]map[string]string

func (m memLabels) Get(d digest.Digest) (map[string]string, error) { return m[d], nil }

func (m memLabels) Set(d digest.Digest, l map[string]string) error {
	m[d] = l
	return nil
}

func (m memLabels) Update(d digest.Digest, l map[string]string) (map[string]string, error) {
	if m[d] == nil {
		m[d] = map[string]string{}
	}
	for k, v := range l {
		if v == "" {
			delete(m[d], k)
		} else {
			m[d][k] = v
		}
	}
	return m[d], nil
}

func putBlob(t *testing.T, s content.Store, data string) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{Digest: digest.FromString(data), Size: int64(len(data))}
	if err := content.WriteBlob(context.Background(), s, "t-"+desc.Digest.String(), bytes.NewReader([]byte(data)), desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

// TestWithBerthBlobs: berth's blobs read through the worker's store, are
// never written again, keep their labels; what neither holds is not found.
func TestWithBerthBlobs(t *testing.T) {
	ctx := context.Background()
	own, berth := newLocalStore(t, true), newLocalStore(t, false)
	s := newWithBerthBlobs(own, berth)
	mine := putBlob(t, own, "the worker's")
	theirs := putBlob(t, berth, "berth's")
	nobody := ocispec.Descriptor{Digest: digest.FromString("nobody's"), Size: 8}

	for _, d := range []ocispec.Descriptor{mine, theirs} {
		if info, err := s.Info(ctx, d.Digest); err != nil || info.Size != d.Size {
			t.Errorf("Info(%s) = %+v, %v", d.Digest, info, err)
		}
		b, err := content.ReadBlob(ctx, s, d)
		if err != nil || int64(len(b)) != d.Size {
			t.Errorf("ReadBlob(%s) = %q, %v", d.Digest, b, err)
		}
	}
	if _, err := s.Info(ctx, nobody.Digest); !cerrdefs.IsNotFound(err) {
		t.Errorf("Info of a blob neither store holds: %v, want not found", err)
	}
	if _, err := s.ReaderAt(ctx, nobody); !cerrdefs.IsNotFound(err) {
		t.Errorf("ReaderAt of a blob neither store holds: %v, want not found", err)
	}

	// Writing berth's blob is "already exists": nothing lands in the
	// worker's store.
	_, err := s.Writer(ctx, content.WithRef("w-theirs"), content.WithDescriptor(theirs))
	if !cerrdefs.IsAlreadyExists(err) {
		t.Fatalf("Writer for a blob berth holds: %v, want already exists", err)
	}
	if _, err := own.Info(ctx, theirs.Digest); !cerrdefs.IsNotFound(err) {
		t.Errorf("berth's blob was copied into the worker's store: %v", err)
	}
	// A new blob goes to the worker's store only.
	if err := content.WriteBlob(ctx, s, "w-nobody", bytes.NewReader([]byte("nobody's")), nobody); err != nil {
		t.Fatal(err)
	}
	if _, err := own.Info(ctx, nobody.Digest); err != nil {
		t.Errorf("a new blob is not in the worker's store: %v", err)
	}
	if _, err := berth.Info(ctx, nobody.Digest); !cerrdefs.IsNotFound(err) {
		t.Errorf("a new blob was written into berth's store: %v", err)
	}

	// Labels: the worker's blobs take them, berth's keep theirs.
	lbl := map[string]string{"buildkit/x": "y"}
	if info, err := s.Update(ctx, content.Info{Digest: mine.Digest, Labels: lbl}, "labels.buildkit/x"); err != nil || info.Labels["buildkit/x"] != "y" {
		t.Errorf("Update of the worker's blob = %+v, %v", info, err)
	}
	if _, err := s.Update(ctx, content.Info{Digest: theirs.Digest, Labels: lbl}, "labels.buildkit/x"); err != nil {
		t.Errorf("Update of berth's blob: %v", err)
	}
	if info, _ := berth.Info(ctx, theirs.Digest); info.Labels["buildkit/x"] != "" {
		t.Errorf("berth's blob got the worker's label: %v", info.Labels)
	}
}

// TestPreferLocal: Docker's default resolve mode for FROM images is
// berth's store first; --pull and an explicit mode are kept.
func TestPreferLocal(t *testing.T) {
	is, err := containerimage.NewSource(containerimage.SourceOpt{ResolverType: containerimage.ResolverTypeRegistry})
	if err != nil {
		t.Fatal(err)
	}
	src := preferLocal{Source: is}
	for attr, want := range map[string]resolver.ResolveMode{
		"":                                 resolver.ResolveModePreferLocal,
		pb.AttrImageResolveModeDefault:     resolver.ResolveModePreferLocal,
		pb.AttrImageResolveModeForcePull:   resolver.ResolveModeForcePull,
		pb.AttrImageResolveModePreferLocal: resolver.ResolveModePreferLocal,
	} {
		attrs := map[string]string{}
		if attr != "" {
			attrs[pb.AttrImageResolveMode] = attr
		}
		id, err := src.Identifier("docker-image", "docker.io/library/alpine:3.18", attrs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := id.(*containerimage.ImageIdentifier).ResolveMode; got != want {
			t.Errorf("resolve mode %q: got %v, want %v", attr, got, want)
		}
		m, err := localFirst(attr)
		if err != nil || m != want.String() {
			t.Errorf("localFirst(%q) = %q, %v; want %q", attr, m, err, want)
		}
	}
	if _, err := localFirst("bogus"); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("localFirst(bogus): %v, want invalid argument", err)
	}
}
