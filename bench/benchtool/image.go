package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// imageCmd writes a docker-save archive (the classic layout every engine
// loads) of a made-up image: -layers layers of about -mb MiB each, made of
// real files of this machine (under -from: binaries, libraries, text, so a
// push has the compression work real images give), each file prefixed by a
// line that depends on -seed and the layer: two archives with the same
// seed share their layers byte for byte, another seed gives new blobs.
// -change-top gives the top layer other content.
//
//	benchtool image -o FILE -tag REPO:TAG [-layers 6] [-mb 20] [-seed N] [-change-top] [-from /usr]
func imageCmd(args []string) error {
	fs := flag.NewFlagSet("image", flag.ExitOnError)
	out := fs.String("o", "", "archive to write")
	tag := fs.String("tag", "bench/fresh:1", "repository:tag in the archive")
	layers := fs.Int("layers", 6, "number of layers")
	mb := fs.Int("mb", 20, "MiB per layer")
	seed := fs.Uint64("seed", 1, "content seed")
	changeTop := fs.Bool("change-top", false, "other content in the top layer")
	from := fs.String("from", "/usr", "directory whose files fill the layers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("image: -o is required")
	}
	files, err := sourceFiles(*from, int64(*layers)*int64(*mb)<<20)
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	mtime := time.Unix(1700000000, 0)
	var diffIDs, layerPaths []string
	var history []map[string]any
	per := int64(*mb) << 20
	next := 0
	for i := 0; i < *layers; i++ {
		s := *seed*1000 + uint64(i)
		if *changeTop && i == *layers-1 {
			s += 500
		}
		var chunk []string
		var size int64
		for next < len(files) && size < per {
			chunk = append(chunk, files[next].path)
			size += files[next].size
			next++
		}
		layer, err := makeLayer(s, chunk, mtime)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(layer)
		id := hex.EncodeToString(sum[:])
		p := id + "/layer.tar"
		if err := addFile(tw, p, layer, mtime); err != nil {
			return err
		}
		diffIDs = append(diffIDs, "sha256:"+id)
		layerPaths = append(layerPaths, p)
		history = append(history, map[string]any{"created": mtime.UTC().Format(time.RFC3339), "created_by": fmt.Sprintf("bench layer %d", i)})
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": mtime.UTC().Format(time.RFC3339),
		"config":  map[string]any{"Cmd": []string{"true"}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history": history,
	})
	if err != nil {
		return err
	}
	csum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(csum[:]) + ".json"
	if err := addFile(tw, cfgName, cfg, mtime); err != nil {
		return err
	}
	manifest, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{*tag}, "Layers": layerPaths}})
	if err != nil {
		return err
	}
	if err := addFile(tw, "manifest.json", manifest, mtime); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

type sourceFile struct {
	path string
	size int64
}

// sourceFiles lists regular files under root (sorted, each under 8 MiB)
// until they add up to want bytes.
func sourceFiles(root string, want int64) ([]sourceFile, error) {
	var out []sourceFile
	var total int64
	errEnough := errors.New("enough")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skip
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Size() == 0 || fi.Size() > 8<<20 {
			return nil
		}
		out = append(out, sourceFile{p, fi.Size()})
		if total += fi.Size(); total >= want {
			return errEnough
		}
		return nil
	})
	if err != nil && err != errEnough {
		return nil, err
	}
	if total < want {
		return nil, fmt.Errorf("image: only %d bytes of files under %s, want %d", total, root, want)
	}
	return out, nil
}

// makeLayer is a layer tar holding the files, each prefixed by a line
// naming seed.
func makeLayer(seed uint64, files []string, mtime time.Time) ([]byte, error) {
	var buf sliceWriter
	tw := tar.NewWriter(&buf)
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		data = append([]byte(fmt.Sprintf("berth bench layer content %d\n", seed)), data...)
		if err := addFile(tw, strings.TrimPrefix(p, "/"), data, mtime); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.b, nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func addFile(tw *tar.Writer, name string, data []byte, mtime time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := io.Copy(tw, &sliceReader{b: data})
	return err
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
