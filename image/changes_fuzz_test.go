package image

import (
	"encoding/json"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// FuzzApplyChanges feeds `commit --change` / `import --change` input, the
// Dockerfile-adjacent text a client sends, through BuildKit's parser and
// berth's instruction handling: no panic, every refusal is an
// invalid-argument error, and what is accepted leaves a config that still
// encodes.
func FuzzApplyChanges(f *testing.F) {
	for _, s := range []string{
		`CMD ["sh", "-c", "echo hi"]`, `ENTRYPOINT /bin/sh`, `ENV A=b C="d e"`, `EXPOSE 80/tcp 53/udp`,
		`HEALTHCHECK --interval=1s --timeout=2s CMD true`, `HEALTHCHECK NONE`, `LABEL a=b "c d"=e`,
		`ONBUILD RUN true`, `USER 1000:1000`, `VOLUME ["/data"]`, `WORKDIR $HOME/x`, `STOPSIGNAL 9`,
		`RUN rm -rf /`, "CMD [\"unterminated\"\n", `EXPOSE 99999`, `ENV`, `LABEL =`, "WORKDIR a\\\nb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, change string) {
		cfg := &dockerspec.DockerOCIImageConfig{}
		cfg.Env = []string{"HOME=/root", "PATH=/usr/bin"}
		if err := ApplyChanges(cfg, []string{change}); err != nil {
			if !cerrdefs.IsInvalidArgument(err) {
				t.Fatalf("change %q: error of the wrong class: %v", change, err)
			}
			return
		}
		if _, err := json.Marshal(cfg); err != nil {
			t.Fatalf("change %q: config no longer encodes: %v", change, err)
		}
	})
}
