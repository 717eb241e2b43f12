package build

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	solvererrdefs "github.com/moby/buildkit/solver/errdefs"
	"github.com/opencontainers/go-digest"
)

// classicProgress renders a BuildKit solve as the classic builder's JSON
// stream (POST /build with version=1): "Step i/n : INSTRUCTION", " --->
// Using cache", " ---> Running in <id>", the RUN's output, " ---> <id>",
// then the aux image ID, "Successfully built" and "Successfully tagged".
//
// Steps are numbered over the Dockerfile's instructions (BuildKit's parser
// reads it); BuildKit's vertices ("[stage i/n] RUN ...") say which step is
// running. Instructions BuildKit runs no vertex for (CMD, ENV...) are shown
// before the next step of their stage, or at the end. The IDs are the
// first 12 hex digits of the step's vertex digest, the last one the image
// ID.
type classicProgress struct {
	write func(msg any) error

	steps  []classicStep
	stages []classicStage
	// target is the stage whose image the build makes.
	target int

	vertices   map[digest.Digest]*classicVertex
	rm         bool
	lastIsStep bool // the last line written was a "Step" line
}

type classicStep struct {
	stage   int // -1: an ARG before the first FROM
	cmd     string
	text    string
	printed bool
}

type classicStage struct {
	name string // lower-cased AS name, "" for none
	from int    // index of its FROM in steps
	// runs are the indexes of the instructions BuildKit runs a vertex for
	// (ADD, COPY, RUN, WORKDIR), in order.
	runs []int
}

type classicVertex struct {
	resolved bool
	step     int // index in steps; -1 no step (internal), -2 unmapped step
	text     string
	cmd      string
	started  bool
	cached   bool
	done     bool
}

// stepName matches the names BuildKit's Dockerfile frontend gives the
// vertices of instructions: "[stage-1 2/5] RUN ...", "[ 3/10] COPY ...".
var stepName = regexp.MustCompile(`^\[([^\]]*?)\s*(\d+)/(\d+)\] (.*)$`)

// newClassicProgress prepares the steps of dockerfile (nil when unknown:
// steps are then numbered as BuildKit numbers them).
func newClassicProgress(dockerfile []byte, target string, rm bool, write func(any) error) *classicProgress {
	p := &classicProgress{write: write, rm: rm, vertices: map[digest.Digest]*classicVertex{}}
	if dockerfile == nil {
		return p
	}
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return p
	}
	for _, n := range res.AST.Children {
		cmd := strings.ToLower(n.Value)
		if cmd == "from" {
			st := classicStage{from: len(p.steps)}
			var words []string
			for w := n.Next; w != nil; w = w.Next {
				words = append(words, w.Value)
			}
			if len(words) >= 3 && strings.EqualFold(words[1], "as") {
				st.name = strings.ToLower(words[2])
			}
			p.stages = append(p.stages, st)
		}
		stage := len(p.stages) - 1
		switch cmd {
		case "add", "copy", "run", "workdir":
			if stage >= 0 {
				p.stages[stage].runs = append(p.stages[stage].runs, len(p.steps))
			}
		}
		p.steps = append(p.steps, classicStep{stage: stage, cmd: cmd, text: n.Original})
	}
	p.target = len(p.stages) - 1
	for i, st := range p.stages {
		if target != "" && st.name == strings.ToLower(target) {
			p.target = i
		}
	}
	return p
}

// stageOf finds the stage BuildKit calls name.
func (p *classicProgress) stageOf(name string) int {
	if name == "" {
		if len(p.stages) == 1 {
			return 0
		}
		return -1
	}
	for i, st := range p.stages {
		if st.name == name {
			return i
		}
	}
	if n, ok := strings.CutPrefix(name, "stage-"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 0 && i < len(p.stages) && p.stages[i].name == "" {
			return i
		}
	}
	return -1
}

// resolve maps a vertex to its step.
func (p *classicProgress) resolve(v *client.Vertex, cv *classicVertex) {
	cv.resolved = true
	cv.step = -1
	m := stepName.FindStringSubmatch(v.Name)
	if m == nil {
		return
	}
	cv.step = -2
	cv.text = fmt.Sprintf("%s/%s : %s", m[2], m[3], m[4])
	cv.cmd = strings.ToLower(strings.Fields(m[4] + " x")[0])
	prefix := strings.Fields(m[1])
	name := ""
	if len(prefix) > 0 {
		name = prefix[len(prefix)-1]
		if strings.Contains(name, "/") { // a platform, not a stage
			name = ""
		}
	}
	i, _ := strconv.Atoi(m[2])
	n, _ := strconv.Atoi(m[3])
	s := p.stageOf(name)
	if s < 0 || i < 1 {
		return
	}
	st := p.stages[s]
	switch k := len(st.runs); {
	case n == k+1 && i == 1:
		cv.step = st.from
	case n == k+1 && i-2 < k:
		cv.step = st.runs[i-2]
	case n == k && i-1 < k:
		cv.step = st.runs[i-1]
	}
}

func (p *classicProgress) stream(s string) error {
	p.lastIsStep = false
	return p.write(streamMessage{Stream: s})
}

func (p *classicProgress) stepLine(i int) error {
	p.steps[i].printed = true
	if err := p.write(streamMessage{Stream: fmt.Sprintf("Step %d/%d : %s", i+1, len(p.steps), p.steps[i].text)}); err != nil {
		return err
	}
	err := p.write(streamMessage{Stream: "\n"})
	p.lastIsStep = true
	return err
}

// pending shows the instructions with no vertex before step upTo of
// stage s (and the ARGs before the first FROM).
func (p *classicProgress) pending(s, upTo int) error {
	for j := 0; j < upTo; j++ {
		st := p.steps[j]
		if st.printed || (st.stage != s && st.stage != -1) || p.runsVertex(j) {
			continue
		}
		if err := p.stepLine(j); err != nil {
			return err
		}
	}
	return nil
}

// runsVertex reports whether BuildKit runs a vertex for step j.
func (p *classicProgress) runsVertex(j int) bool {
	st := p.steps[j]
	if st.stage < 0 {
		return false
	}
	switch st.cmd {
	case "add", "copy", "run", "workdir":
		return true
	}
	return false
}

func shortID(d string) string {
	if _, h, ok := strings.Cut(d, ":"); ok {
		d = h
	}
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// resultID12 names a step's result in the stream (the classic builder
// showed the intermediate image there; BuildKit makes none): derived from
// the vertex digest, so a cached step shows the same one again.
func resultID12(d digest.Digest) string {
	return shortID(digest.FromString("result " + d.String()).String())
}

// status renders one BuildKit status update.
func (p *classicProgress) status(ss *client.SolveStatus) error {
	for _, v := range ss.Vertexes {
		cv := p.vertices[v.Digest]
		if cv == nil {
			cv = &classicVertex{}
			p.vertices[v.Digest] = cv
		}
		if !cv.resolved {
			p.resolve(v, cv)
		}
		if cv.step == -1 {
			continue
		}
		if !cv.started && (v.Started != nil || v.Cached) {
			cv.started, cv.cached = true, v.Cached
			if cv.step >= 0 {
				if err := p.pending(p.steps[cv.step].stage, cv.step); err != nil {
					return err
				}
				if err := p.stepLine(cv.step); err != nil {
					return err
				}
			} else if err := p.stream("Step " + cv.text + "\n"); err != nil {
				return err
			}
			if cv.cached {
				if err := p.stream(" ---> Using cache\n"); err != nil {
					return err
				}
			} else if cv.cmd == "run" {
				if err := p.stream(" ---> Running in " + shortID(v.Digest.String()) + "\n"); err != nil {
					return err
				}
			}
		}
		if cv.started && !cv.done && v.Completed != nil && v.Error == "" {
			cv.done = true
			if cv.cmd == "run" && !cv.cached && p.rm {
				if err := p.stream("Removing intermediate container " + shortID(v.Digest.String()) + "\n"); err != nil {
					return err
				}
			}
			if err := p.stream(" ---> " + resultID12(v.Digest) + "\n"); err != nil {
				return err
			}
		}
	}
	for _, l := range ss.Logs {
		cv := p.vertices[l.Vertex]
		if cv == nil || cv.step == -1 || !cv.started || len(l.Data) == 0 {
			continue
		}
		if err := p.stream(string(l.Data)); err != nil {
			return err
		}
	}
	return nil
}

// finish shows the instructions left (those with no vertex at the end of
// the stages that ran), the image ID and the tags.
func (p *classicProgress) finish(imageID string, tags []string) error {
	for s := range p.stages {
		ran := s == p.target
		for _, st := range p.steps {
			ran = ran || (st.stage == s && st.printed)
		}
		if ran {
			if err := p.pending(s, len(p.steps)); err != nil {
				return err
			}
		}
	}
	if p.lastIsStep {
		if err := p.stream(" ---> " + shortID(imageID) + "\n"); err != nil {
			return err
		}
	}
	if err := p.write(auxMessage{Aux: resultID{ID: imageID}}); err != nil {
		return err
	}
	if err := p.stream("Successfully built " + shortID(imageID) + "\n"); err != nil {
		return err
	}
	for _, t := range tags {
		name := t
		if ref, err := reference.ParseNormalizedNamed(t); err == nil {
			name = reference.FamiliarString(reference.TagNameOnly(ref))
		}
		if err := p.stream("Successfully tagged " + name + "\n"); err != nil {
			return err
		}
	}
	return nil
}

type streamMessage struct {
	Stream string `json:"stream"`
}

type resultID struct {
	ID string `json:"ID"`
}

type auxMessage struct {
	ID  string `json:"id,omitempty"`
	Aux any    `json:"aux"`
}

type errorMessage struct {
	ErrorDetail errorDetail `json:"errorDetail"`
	Error       string      `json:"error"`
}

type errorDetail struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

// classicError is a failed build as the classic builder reports it: a RUN
// that exits non-zero is "The command '<cmd>' returned a non-zero code: N"
// with N as the code (the docker CLI exits with it).
func classicError(err error) errorMessage {
	msg := err.Error()
	code := 0
	var ee *gatewaypb.ExitError
	if errors.As(err, &ee) && ee.ExitCode != 0 {
		cmd := ""
		var oe *solvererrdefs.OpError
		if errors.As(err, &oe) && oe.Op != nil {
			if ex := oe.Op.GetExec(); ex != nil && ex.Meta != nil {
				cmd = strings.Join(ex.Meta.Args, " ")
			}
		}
		code = int(ee.ExitCode)
		msg = fmt.Sprintf("The command '%s' returned a non-zero code: %d", cmd, ee.ExitCode)
	}
	return errorMessage{ErrorDetail: errorDetail{Code: code, Message: msg}, Error: msg}
}
