// Package pipeline loads and validates the pipeline files in pipelines.d and
// decides which pipelines an event triggers. It does no I/O beyond reading
// its files, so every rule can be table-tested.
package pipeline

import "time"

// Pipeline is one validated pipeline file. Values returned by LoadDir and
// Parse are never modified afterwards, so a run can keep the definition it
// started with.
type Pipeline struct {
	// Name identifies the pipeline in URLs, labels and logs: at most 63
	// lowercase letters, digits, "_", "." or "-", starting with a letter or
	// digit, and unique among the loaded files. Default: the file name
	// without its extension.
	Name string `yaml:"name"`
	// File is the path the pipeline was loaded from.
	File string `yaml:"-"`
	// Repo is the GitHub "owner/name" a push must come from.
	Repo string `yaml:"repo"`
	// CloneURL overrides where the source is fetched from. Default: the
	// clone_url of the webhook payload, else https://github.com/<repo>.git.
	// A local path or file:// URL works too.
	CloneURL string `yaml:"clone_url"`
	// On lists the events that start the pipeline.
	On Triggers `yaml:"on"`
	// Build describes the image to build. Nil when the pipeline builds none.
	Build *Build `yaml:"build"`
	// Deploy describes how the built image is run. Nil when nothing deploys.
	Deploy *Deploy `yaml:"deploy"`
}

// Triggers lists the events that start a pipeline.
type Triggers struct {
	// Push starts the pipeline on a matching git push. When the whole "on"
	// key is missing, pushes to the repository's default branch match. Nil
	// when "on" lists other events only, and then no push matches.
	Push *PushTrigger `yaml:"push"`
}

// PushTrigger matches pushes by branch or tag name.
type PushTrigger struct {
	// Branches are glob patterns over branch names ("main", "release/*").
	// "*" stays within one "/"-separated part, "**" spans parts, and
	// "{a,b}" lists alternatives. Default when both Branches and Tags are
	// empty: the repository's default branch as named in the payload.
	Branches []string `yaml:"branches"`
	// Tags are glob patterns over tag names. Default: no tag matches.
	Tags []string `yaml:"tags"`
}

// Build describes a docker build of the checked-out commit.
type Build struct {
	// Context is the build context, relative to the repository root.
	// Default ".".
	Context string `yaml:"context"`
	// Dockerfile is relative to the context. Default "Dockerfile".
	Dockerfile string `yaml:"dockerfile"`
	// Image is the image repository, such as "acme/web" or
	// "registry.example.com:5000/acme/web", without a tag because the tag
	// identifies the commit.
	Image string `yaml:"image"`
	// Args are build arguments, for example the base image. Names follow
	// the environment variable syntax.
	Args map[string]string `yaml:"args"`
}

// Deploy describes how the built image replaces the running container.
type Deploy struct {
	// Container is the app's name: containers carry it as a label and
	// their names start with it. 2 to 63 letters, digits, "_", "." or "-",
	// starting with a letter or digit.
	Container string `yaml:"container"`
	// Port is the port the app listens on inside the container.
	Port int `yaml:"port"`
	// Publish is the host "IP:port" the port is published on, for example
	// "127.0.0.1:18567" or "[::1]:18567". Docker binds to addresses, so a
	// host name is rejected. Required on the bridge network and rejected on
	// the host network.
	Publish string `yaml:"publish"`
	// Network is "bridge" (default) or "host"; on the host network the app
	// listens on Port itself and Publish is not used.
	Network string `yaml:"network"`
	// Health is the check that must pass before the deploy counts.
	Health Health `yaml:"health"`
	// Env is set in the container's environment. It may not set the
	// variables that Vault sets.
	Env map[string]string `yaml:"env"`
	// Vault injects AppRole credentials. Nil when none are injected.
	Vault *VaultLogin `yaml:"vault"`
	// Restart is the Docker restart policy: "no", "always", "on-failure"
	// or "unless-stopped" (default).
	Restart string `yaml:"restart"`
	// StopTimeout is how long a container gets between SIGTERM and SIGKILL,
	// in whole seconds because the Docker API takes seconds. Default 10s.
	StopTimeout time.Duration `yaml:"stop_timeout"`
	// HAProxy switches traffic between two server slots of an HAProxy
	// backend, without dropping a request. Nil for the fixed Publish
	// address. With it, each container gets a free loopback port of its
	// own and Publish is not used.
	HAProxy *HAProxy `yaml:"haproxy"`
	// KeepImages is how many of the newest deployments keep their image
	// for redeploy and rollback. Default 5.
	KeepImages int `yaml:"keep_images"`
}

// HAProxy names the backend and the two server slots a deploy switches
// between through HAProxy's runtime API.
type HAProxy struct {
	// Socket is the path of HAProxy's admin socket: the
	// "stats socket PATH level admin" line of haproxy.cfg. Required.
	Socket string `yaml:"socket"`
	// Backend is the backend section that serves the app. Required.
	Backend string `yaml:"backend"`
	// Servers are exactly two server names of Backend, used alternately:
	// one serves while the other is in maintenance. Required.
	Servers []string `yaml:"servers"`
	// StateFile is HAProxy's server-state-file. After each switch quai
	// writes the servers' state there, so a reload keeps serving the new
	// container. Empty: not written, and a reload goes back to the
	// addresses in haproxy.cfg.
	StateFile string `yaml:"state_file"`
	// CheckTimeout bounds the wait for HAProxy's own health check to pass
	// on the idle slot before it gets traffic. Default 30s.
	CheckTimeout time.Duration `yaml:"check_timeout"`
	// DrainTimeout bounds the wait for the old slot's requests to finish.
	// Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Watch is how long the new slot is watched after the switch; if
	// HAProxy marks it down or it answers more than Max5xx responses with
	// status 5xx meanwhile, traffic goes back to the previous container.
	// Default 30s; 0s turns the watch off.
	Watch time.Duration `yaml:"watch"`
	// Max5xx is how many 5xx responses the new slot may give during Watch.
	// Default 0.
	Max5xx int `yaml:"max_5xx"`
}

// Health is an HTTP check against the new container.
type Health struct {
	// Path is the URL path that must return a 2xx status. It starts with
	// "/". Default "/".
	Path string `yaml:"path"`
	// Timeout bounds the wait for a 2xx response and must be positive.
	// Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// VaultLogin names the AppRole whose credentials the container receives as
// APPROLE_ID, APPROLE_SECRET_ID and VAULT_ENDPOINT.
type VaultLogin struct {
	// AppRole is the role name under the approle/ auth mount. Required.
	AppRole string `yaml:"approle"`
	// Address is Vault's address as seen from inside the container, set as
	// VAULT_ENDPOINT. Default: quai's own Vault address. On the bridge
	// network 127.0.0.1 is the container itself, not the host.
	Address string `yaml:"address"`
}
