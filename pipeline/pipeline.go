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
	// Build describes the image to build. Absent (nil): the pipeline builds
	// no image.
	Build *Build `yaml:"build"`
	// Deploy describes how the built image is run. Absent (nil): nothing
	// deploys.
	Deploy *Deploy `yaml:"deploy"`
	// Steps run in order, each in a container, with the checkout mounted
	// at /workspace. The build runs right before the first step whose
	// image is "$build", or after the last step when no step uses it.
	Steps []Step `yaml:"steps"`
	// Timeout bounds a whole run: steps, build and deploy together.
	// Default 1h.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency limits how runs of this pipeline overlap.
	Concurrency Concurrency `yaml:"concurrency"`
}

// Workspace is the path in every step container where the checked-out
// commit is mounted, and the step's working directory.
const Workspace = "/workspace"

// BuildImage is the step image that names the image this run built.
const BuildImage = "$build"

// Step is one container that runs commands against the checkout.
type Step struct {
	// Name identifies the step in the log and the UI, unique in the
	// pipeline: at most 63 letters, digits, "_", "." or "-", starting with
	// a letter or digit. Required.
	Name string `yaml:"name"`
	// Image is any local image ("busybox:stable", "golang:1.26"), or
	// "$build" for the image this run built. Required.
	Image string `yaml:"image"`
	// Commands run one after the other in one "/bin/sh -e" script, so the
	// first one that fails ends the step. At least one. Required.
	Commands []string `yaml:"commands"`
	// Env is added to the step's environment. It may not set CI, QUAI or
	// variables starting with QUAI_, which quai sets for every step.
	Env map[string]string `yaml:"env"`
	// Secrets maps environment variable names to Vault values written
	// "path#key" or "mount:path#key".
	Secrets map[string]SecretRef `yaml:"secrets"`
	// Timeout bounds the step. Default: what is left of the run's timeout.
	Timeout time.Duration `yaml:"timeout"`
	// When decides whether the step runs. Default: on every event that
	// starts the pipeline, while no earlier step failed.
	When When `yaml:"when"`
}

// When is a step's condition: the step runs when every part matches.
type When struct {
	// Branches are glob patterns over the run's branch (for a pull request,
	// the branch it targets). With Branches or Tags set, a run on a branch
	// needs a match in Branches and a run on a tag a match in Tags.
	Branches []string `yaml:"branches"`
	// Tags are glob patterns over the run's tag.
	Tags []string `yaml:"tags"`
	// Events lists the events the step runs on: "push", "tag",
	// "pull_request", "schedule" or "manual". Default: every event.
	Events []Event `yaml:"events"`
	// Status lists the run states the step runs in: "success" (no step has
	// failed so far, the default), "failure" (one has), or both.
	Status []string `yaml:"status"`
}

// Event is the kind of event that started a run.
type Event string

// The events a run can start from. A push of a tag is EventTag, not
// EventPush.
const (
	EventPush        Event = "push"
	EventTag         Event = "tag"
	EventPullRequest Event = "pull_request"
	EventSchedule    Event = "schedule"
	EventManual      Event = "manual"
)

// The values of When.Status.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
)

// SecretRef points at one value in Vault's key/value store. A pipeline
// writes it "path#key" ("1interviewparjour/mysql#url") to read from the
// "secret" mount, or "mount:path#key" ("kv:app/db#password") to read from
// another mount. KV version 1 and 2 mounts both work. ParseSecretRef reads
// the written form and String writes it back.
type SecretRef struct {
	// Mount is the KV mount path without slashes around it. ParseSecretRef
	// sets it to DefaultSecretMount when the reference names none.
	Mount string
	// Path is the secret's path inside the mount, without the "data/"
	// segment that the KV version 2 API adds.
	Path string
	// Key is the field of the secret whose value is used.
	Key string
}

// String returns the reference as written in a pipeline file. It never
// contains the secret's value.
func (r SecretRef) String() string {
	if r.Mount == "" || r.Mount == DefaultSecretMount {
		return r.Path + "#" + r.Key
	}
	return r.Mount + ":" + r.Path + "#" + r.Key
}

// DefaultSecretMount is the Vault mount a SecretRef without one reads.
const DefaultSecretMount = "secret"

// Concurrency limits how runs of one pipeline overlap.
type Concurrency struct {
	// CancelSuperseded cancels the build and test phases of a running run
	// when a newer push to the same ref is queued. A deploy that has
	// started switching is never canceled. Default true.
	CancelSuperseded bool `yaml:"cancel_superseded"`
	// Limit is how many runs of the pipeline execute at once, at least 1.
	// Runs never deploy at the same time whatever the limit. Default 1.
	Limit int `yaml:"limit"`
}

// Triggers lists the events that start a pipeline.
type Triggers struct {
	// Push starts the pipeline on a matching git push. When the whole "on"
	// key is missing, pushes to the repository's default branch match.
	// Absent (nil) when "on" lists other events only: no push matches.
	Push *PushTrigger `yaml:"push"`
	// PullRequest starts the pipeline on a pull request's head commit.
	// Absent (nil): pull requests start nothing.
	PullRequest *PullRequestTrigger `yaml:"pull_request"`
	// Schedule starts the pipeline at cron times, one run per activation.
	Schedule []Schedule `yaml:"schedule"`
	// Manual allows runs started from the API or the UI. Default true;
	// "manual: false" turns them off.
	Manual bool `yaml:"manual"`
}

// PullRequestTrigger matches pull request events.
type PullRequestTrigger struct {
	// Branches are glob patterns over the base branch the pull request
	// targets. Default: every branch.
	Branches []string `yaml:"branches"`
	// Types are the pull request actions that start a run: "opened",
	// "synchronize", "reopened", "closed", "edited", "ready_for_review",
	// "labeled" or "unlabeled". Default: opened, synchronize, reopened.
	Types []string `yaml:"types"`
	// Paths are globs over the files the pull request changes, as for a
	// push: with Paths, a run starts only when a changed file matches.
	Paths []string `yaml:"paths"`
	// PathsIgnore are globs over changed files that do not count.
	PathsIgnore []string `yaml:"paths_ignore"`
	// Deploy lets a pull request run deploy. Default false. A pull request
	// from a fork never deploys and gets no secrets, whatever this says.
	Deploy bool `yaml:"deploy"`
}

// Schedule starts a run of a branch's head at cron times.
type Schedule struct {
	// Cron is a standard five-field spec ("30 2 * * *": minute, hour, day
	// of month, month, day of week) or a descriptor ("@daily",
	// "@every 6h"). Required.
	Cron string `yaml:"cron"`
	// Timezone is the IANA zone name the spec's times are in, such as
	// "Europe/Paris". Default UTC.
	Timezone string `yaml:"timezone"`
	// Branch is built at its head at run time. Default: the repository's
	// default branch, found with git ls-remote.
	Branch string `yaml:"branch"`
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
	// BranchesIgnore are glob patterns over branch names that never start
	// the pipeline, even when Branches matches. Set without Branches, every
	// other branch matches.
	BranchesIgnore []string `yaml:"branches_ignore"`
	// TagsIgnore are glob patterns over tag names that never start the
	// pipeline, even when Tags matches. Set without Tags, every other tag
	// matches.
	TagsIgnore []string `yaml:"tags_ignore"`
	// Paths are globs over the files a branch push changes ("**" spans
	// folders). With Paths, a push runs only when a changed file matches.
	Paths []string `yaml:"paths"`
	// PathsIgnore are globs over changed files that do not count: with
	// only PathsIgnore, a push whose every changed file matches is skipped.
	PathsIgnore []string `yaml:"paths_ignore"`
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
	// Secrets are build arguments read from Vault. Build arguments stay in
	// the image's history, so validation warns about them. Names may not
	// repeat a name of Args.
	Secrets map[string]SecretRef `yaml:"secrets"`
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
	// Vault injects AppRole credentials. Absent (nil): none are injected.
	Vault *VaultLogin `yaml:"vault"`
	// Secrets are environment variables read from Vault at deploy time.
	// Names may not repeat a name of Env, nor with Vault set the names
	// Vault sets.
	Secrets map[string]SecretRef `yaml:"secrets"`
	// Restart is the Docker restart policy: "no", "always", "on-failure"
	// or "unless-stopped" (default).
	Restart string `yaml:"restart"`
	// StopTimeout is how long a container gets between SIGTERM and SIGKILL,
	// in whole seconds because the Docker API takes seconds. Default 10s.
	StopTimeout time.Duration `yaml:"stop_timeout"`
	// HAProxy switches traffic between two server slots of an HAProxy
	// backend, without dropping a request. Absent (nil): the fixed Publish
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
