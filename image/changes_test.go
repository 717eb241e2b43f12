package image

import (
	"reflect"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	var cfg dockerspec.DockerOCIImageConfig
	cfg.Env = []string{"PATH=/bin"}
	err := ApplyChanges(&cfg, []string{
		"CMD echo hi", "ENV A=1", "ENV B=$A-x PATH=/usr/bin:$PATH", "EXPOSE 80 53/udp 8000-8001",
		`LABEL "a b"=c`, "USER 1000:1000", "WORKDIR /srv", "WORKDIR app", `VOLUME ["/v1", "/v2"]`,
		"ONBUILD RUN make", `ENTRYPOINT ["/init"]`, "", "HEALTHCHECK --interval=5s CMD true",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Cmd":        []string{"/bin/sh", "-c", "echo hi"},
		"Entrypoint": []string{"/init"},
		"Env":        []string{"PATH=/usr/bin:/bin", "A=1", "B=1-x"},
		"User":       "1000:1000",
		"WorkingDir": "/srv/app",
		"OnBuild":    []string{"RUN make"},
		"Labels":     map[string]string{"a b": "c"},
	}
	got := map[string]any{
		"Cmd": cfg.Cmd, "Entrypoint": cfg.Entrypoint, "Env": cfg.Env, "User": cfg.User,
		"WorkingDir": cfg.WorkingDir, "OnBuild": cfg.OnBuild, "Labels": cfg.Labels,
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	for _, p := range []string{"80/tcp", "53/udp", "8000/tcp", "8001/tcp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("ExposedPorts %v lacks %s", cfg.ExposedPorts, p)
		}
	}
	if len(cfg.Volumes) != 2 || cfg.Healthcheck == nil || cfg.Healthcheck.Interval.String() != "5s" {
		t.Errorf("Volumes %v Healthcheck %+v", cfg.Volumes, cfg.Healthcheck)
	}
	for _, bad := range []string{"RUN true", "FROM busybox", "STOPSIGNAL SIGKILL", "COPY a b", "EXPOSE notaport"} {
		if err := ApplyChanges(&cfg, []string{bad}); !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v, want an invalid argument", bad, err)
		}
	}
}
