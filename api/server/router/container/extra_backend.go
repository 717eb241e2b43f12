package container

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"

	ctr "github.com/berth/berth/container"
)

// ExtraBackend is what the extra container routes need: cp, export, diff,
// commit, top, stats and update. The router serves them when its Backend
// also implements ExtraBackend (*container.Service does).
type ExtraBackend interface {
	ArchiveStat(ctx context.Context, name, path string) (*container.PathStat, error)
	ArchiveGet(ctx context.Context, name, path string) (*container.PathStat, io.ReadCloser, error)
	ArchivePut(ctx context.Context, name, path string, o ctr.ExtractOptions, r io.Reader) error
	Export(ctx context.Context, name string) (io.ReadCloser, error)
	Changes(ctx context.Context, name string) ([]container.FilesystemChange, error)
	Commit(ctx context.Context, name string, o ctr.CommitOptions) (string, error)
	Top(ctx context.Context, name, psArgs string) (*container.TopResponse, error)
	Stats(ctx context.Context, name string, o ctr.StatsOptions, send func(*container.StatsResponse) error) error
	Update(ctx context.Context, name string, u container.UpdateConfig) ([]string, error)
}
