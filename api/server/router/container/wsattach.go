package container

import (
	"context"
	"encoding/binary"
	"net/http"

	"golang.org/x/net/websocket"

	"github.com/berth/berth/api/server/httputils"
	ctr "github.com/berth/berth/container"
)

// wsAttach answers GET /containers/{id}/attach/ws: attach over a
// websocket, as dockerd. The streams are raw (never multiplexed: stdout and
// stderr arrive interleaved as the container writes them); frames are text
// frames before API 1.42 and binary frames from 1.42 on, as dockerd's.
// Like dockerd, no Origin is required.
func (cr *containerRouter) wsAttach(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	id := vars["id"]
	info, err := cr.b.Inspect(ctx, id, false)
	if err != nil {
		return err
	}
	keys, err := ctr.ParseDetachKeys(r.Form.Get("detachKeys"))
	if err != nil {
		return err
	}
	o := ctr.AttachOptions{
		Stdin: httputils.BoolValue(r, "stdin"), Stdout: httputils.BoolValue(r, "stdout"), Stderr: httputils.BoolValue(r, "stderr"),
		Stream: httputils.BoolValue(r, "stream"), Logs: httputils.BoolValue(r, "logs"), DetachKeys: keys,
	}
	tty := info.Config != nil && info.Config.Tty
	binaryFrames := !httputils.VersionLess(httputils.VersionFromContext(ctx), "1.42")
	srv := websocket.Server{Handler: func(ws *websocket.Conn) {
		if binaryFrames {
			ws.PayloadType = websocket.BinaryFrame
		}
		s := &wsStream{Conn: ws, demux: !tty}
		_ = cr.b.Attach(context.WithoutCancel(ctx), id, o, func() (ctr.Stream, error) { return s, nil })
	}}
	srv.ServeHTTP(w, r)
	return nil
}

// wsStream is an attach stream on a websocket. Without a TTY the attach
// writes stdcopy frames (an 8-byte header, then the payload, in one Write
// or two); the websocket carries only the payloads.
type wsStream struct {
	*websocket.Conn
	demux bool
	hdr   []byte // a header's bytes read so far
	left  int    // payload bytes still to come in the current frame
}

func (s *wsStream) Write(p []byte) (int, error) {
	if !s.demux {
		return s.Conn.Write(p)
	}
	n := len(p)
	for len(p) > 0 {
		if s.left == 0 {
			need := 8 - len(s.hdr)
			if len(p) < need {
				s.hdr = append(s.hdr, p...)
				return n, nil
			}
			s.hdr = append(s.hdr, p[:need]...)
			p = p[need:]
			s.left = int(binary.BigEndian.Uint32(s.hdr[4:8]))
			s.hdr = s.hdr[:0]
			continue
		}
		chunk := p
		if len(chunk) > s.left {
			chunk = chunk[:s.left]
		}
		if _, err := s.Conn.Write(chunk); err != nil {
			return 0, err
		}
		s.left -= len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}
