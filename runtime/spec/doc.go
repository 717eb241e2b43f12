// Package spec converts what a Docker create request says (the image's
// config, the request's Config and HostConfig, and the mounts the caller has
// already resolved) into an OCI runtime spec with Docker's default isolation.
//
// It is the one boundary where Docker's vocabulary becomes runc's: everything
// that Docker would decide or reject when it builds a container's spec is
// decided or rejected here, and the result is validated before it is handed
// back. Errors meant for the API client carry an errdefs class (github.com/containerd/errdefs; most are
// cerrdefs.ErrInvalidArgument, i.e. HTTP 400) and Docker's wording.
//
// The package is on the container-start hot path. Generate does no I/O except
// where documented: reading the container's /etc/passwd and /etc/group (through
// a UserResolver), lstat calls to make sure the working directory does not lead
// into /proc, stat calls for --device and blkio device limits, and walking the
// host's /dev for --privileged. Host facts (capabilities, cgroup version, rlimits)
// are detected once and cached (DetectHost), and so is the converted default
// seccomp profile for each capability set.
//
// The lifecycle, as the container service uses it. At create,
// MergeConfig(req.Config, imageConfig) gives the Config to store (what inspect
// shows), CreateDefaults fills the HostConfig as Docker's daemon does, and
// Generate with DryRun rejects, with Docker's errors, what the start would
// reject. At start, Generate with the stored Config (Image nil), the mounted
// rootfs and the resolved mounts gives the spec for runc's config.json:
//
//	s, err := spec.Generate(spec.Input{
//		ID: id, Config: cfg, HostConfig: hc, Rootfs: merged,
//		Mounts: resolved, NetNSPath: netns, CgroupsPath: "/berth/" + id,
//		InitPath: "/usr/bin/tini-static",
//	})
//
// For `docker exec`, ExecProcess on that spec gives runc exec's process.json.
package spec
