package pipeline

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults applied after validation to keys the file leaves out.
const (
	defaultContext     = "."
	defaultDockerfile  = "Dockerfile"
	defaultNetwork     = "bridge"
	defaultRestart     = "unless-stopped"
	defaultStopTimeout = 10 * time.Second
	defaultHealthPath  = "/"
	defaultHealthWait  = 30 * time.Second
	defaultKeepImages  = 5
	defaultHAProxyWait = 30 * time.Second
	defaultRunTimeout  = time.Hour
	defaultRunLimit    = 1
	defaultTimezone    = "UTC"
)

// pullRequestTypes are the GitHub pull_request webhook actions a pipeline
// may start on. defaultPullRequestTypes are those that open a pull request
// or change its head commit.
var (
	pullRequestTypes = []string{
		"opened", "synchronize", "reopened", "closed", "edited", "ready_for_review", "labeled", "unlabeled",
	}
	defaultPullRequestTypes = []string{"opened", "synchronize", "reopened"}
)

// deployNetworks and restartPolicies are the values deploy.network and
// deploy.restart accept.
var (
	deployNetworks  = []string{"bridge", "host"}
	restartPolicies = []string{"no", "always", "on-failure", "unless-stopped"}
)

// stepEvents and stepStatuses are the values When.Events and When.Status
// accept.
var (
	stepEvents = []string{
		string(EventPush), string(EventTag), string(EventPullRequest), string(EventSchedule), string(EventManual),
	}
	stepStatuses = []string{StatusSuccess, StatusFailure}
)

// vaultVariables are the environment variables deploy.vault sets, so
// deploy.env may not set them too.
var vaultVariables = []string{"APPROLE_ID", "APPROLE_SECRET_ID", "VAULT_ENDPOINT"}

// position is a 1-based line and column in a pipeline file.
type position struct {
	line, column int
}

var pipelineFields = []field[Pipeline]{
	{"name", func(d *decoder, path string, e entry, p *Pipeline) {
		p.Name, _ = d.checkedStr(path, e.value, validatePipelineName)
	}},
	{"repo", func(d *decoder, path string, e entry, p *Pipeline) {
		p.Repo, _ = d.checkedStr(path, e.value, validateRepo)
	}},
	{"clone_url", func(d *decoder, path string, e entry, p *Pipeline) {
		p.CloneURL, _ = d.checkedStr(path, e.value, validateCloneURL)
	}},
	{"on", func(d *decoder, path string, e entry, p *Pipeline) {
		p.On = decodeTriggers(d, path, e)
	}},
	{"build", func(d *decoder, path string, e entry, p *Pipeline) {
		p.Build = decodeBuild(d, path, e)
	}},
	{"deploy", func(d *decoder, path string, e entry, p *Pipeline) {
		p.Deploy = decodeDeploy(d, path, e)
	}},
	{"steps", func(d *decoder, path string, e entry, p *Pipeline) {
		p.Steps = decodeSteps(d, path, e)
	}},
	{"timeout", func(d *decoder, path string, e entry, p *Pipeline) {
		p.Timeout = d.positiveDuration(path, e.value)
	}},
	{"concurrency", func(d *decoder, path string, e entry, p *Pipeline) {
		p.Concurrency = decodeConcurrency(d, path, e)
	}},
}

// decodePipeline decodes the root mapping of a pipeline file. It returns
// the position of the name, which is line 1, column 1 for a name taken from
// the file name.
func decodePipeline(d *decoder, root *yaml.Node) (*Pipeline, position) {
	p := &Pipeline{File: d.file}
	m, ok := decodeFields(d, "", root, root, pipelineFields, p)
	if !ok {
		return p, position{1, 1}
	}
	d.requireKey("", m, "repo", `"repo: acme/hello"`)
	if e, ok := m.entries["deploy"]; ok && !m.has("build") {
		d.errorf(e.key, "deploy: nothing to deploy without a build block, add build.image")
	}

	namePos := position{1, 1}
	if e, ok := m.entries["name"]; ok {
		v := deref(e.value)
		namePos = position{v.Line, v.Column}
	} else {
		p.Name = defaultName(d.file)
		if err := validatePipelineName(p.Name); err != nil {
			d.errorAt(1, 1, "name: the file name gives the invalid pipeline name %q, "+
				"add a name key with %s", p.Name, pipelineNameRule)
		}
	}
	if !m.has("on") {
		p.On = Triggers{Push: &PushTrigger{}, Manual: true}
	}
	if !m.has("timeout") {
		p.Timeout = defaultRunTimeout
	}
	if !m.has("concurrency") {
		p.Concurrency = Concurrency{CancelSuperseded: true, Limit: defaultRunLimit}
	}
	if e, ok := m.entries["steps"]; ok {
		checkStepsAgainstPipeline(d, e.value, p, m.has("build"))
	}
	return p, namePos
}

// defaultName is the file name without its extension.
func defaultName(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

var triggersFields = []field[Triggers]{
	{"push", func(d *decoder, path string, e entry, t *Triggers) {
		t.Push = decodePush(d, path, e)
	}},
	{"pull_request", func(d *decoder, path string, e entry, t *Triggers) {
		t.PullRequest = decodePullRequest(d, path, e)
	}},
	{"schedule", func(d *decoder, path string, e entry, t *Triggers) {
		t.Schedule = decodeSchedules(d, path, e)
	}},
	{"manual", func(d *decoder, path string, e entry, t *Triggers) {
		t.Manual, _ = d.bool(path, e.value)
	}},
}

func decodeTriggers(d *decoder, path string, e entry) Triggers {
	var t Triggers
	if v := deref(e.value); isNull(v) || (v.Kind == yaml.MappingNode && len(v.Content) == 0) {
		d.errorf(e.key, "%s: no events listed, add push or remove %q to build pushes to the default branch",
			path, path)
		return t
	}
	m, ok := decodeFields(d, path, e.key, e.value, triggersFields, &t)
	if !ok {
		return t
	}
	if !m.has("manual") {
		t.Manual = true
	}
	noEvent := t.Push == nil && t.PullRequest == nil && len(t.Schedule) == 0 && !t.Manual
	if mk, ok := m.entries["manual"]; ok && noEvent && deref(mk.value).Tag == "!!bool" {
		d.warnf(mk.key, "%s: no event starts this pipeline and only \"quai run\" can run it, "+
			"add push, pull_request or schedule", path)
	}
	return t
}

var pushFields = []field[PushTrigger]{
	{"branches", func(d *decoder, path string, e entry, t *PushTrigger) {
		t.Branches = d.globList(path, e.value, "refs/heads/")
	}},
	{"tags", func(d *decoder, path string, e entry, t *PushTrigger) {
		t.Tags = d.globList(path, e.value, "refs/tags/")
	}},
	{"branches_ignore", func(d *decoder, path string, e entry, t *PushTrigger) {
		t.BranchesIgnore = d.globList(path, e.value, "refs/heads/")
	}},
	{"tags_ignore", func(d *decoder, path string, e entry, t *PushTrigger) {
		t.TagsIgnore = d.globList(path, e.value, "refs/tags/")
	}},
	{"paths", func(d *decoder, path string, e entry, t *PushTrigger) {
		t.Paths = d.pathGlobList(path, e.value)
	}},
	{"paths_ignore", func(d *decoder, path string, e entry, t *PushTrigger) {
		t.PathsIgnore = d.pathGlobList(path, e.value)
	}},
}

// decodePush decodes on.push. A null value ("push:") means the default:
// pushes to the default branch.
func decodePush(d *decoder, path string, e entry) *PushTrigger {
	t := &PushTrigger{}
	decodeFields(d, path, e.key, e.value, pushFields, t)
	return t
}

// globList decodes a list of branch or tag patterns. Patterns match the
// short name, so a pattern starting with refPrefix gets a warning.
func (d *decoder) globList(path string, n *yaml.Node, refPrefix string) []string {
	example := `["main"]`
	if refPrefix == "refs/tags/" {
		example = `["v*"]`
	}
	list, ok := d.stringList(path, n, example)
	if !ok {
		return list
	}
	for i, item := range deref(n).Content {
		item = deref(item)
		if err := validateGlob(list[i]); err != nil {
			d.errorf(item, "%s[%d]: %v", path, i, err)
			continue
		}
		if strings.HasPrefix(list[i], refPrefix) {
			d.warnf(item, "%s[%d]: patterns match names without %q, so %q matches nothing",
				path, i, refPrefix, list[i])
		}
	}
	return list
}

// pathGlobList decodes a list of patterns over changed file paths, which
// are relative to the repository root and never start with "./".
func (d *decoder) pathGlobList(path string, n *yaml.Node) []string {
	list, ok := d.stringList(path, n, `["src/**"]`)
	if !ok {
		return list
	}
	for i, item := range deref(n).Content {
		item = deref(item)
		if err := validatePathGlob(list[i]); err != nil {
			d.errorf(item, "%s[%d]: %v", path, i, err)
			continue
		}
		if strings.HasPrefix(list[i], "./") {
			d.warnf(item, "%s[%d]: changed paths never start with \"./\", so %q matches nothing, write %q",
				path, i, list[i], strings.TrimPrefix(list[i], "./"))
		}
	}
	return list
}

// enumList decodes a list whose items must each be one of allowed.
func (d *decoder) enumList(path string, n *yaml.Node, allowed []string) []string {
	if v := deref(n); v.Kind != yaml.SequenceNode {
		list, _ := d.stringList(path, n, fmt.Sprintf("[%q]", allowed[0]))
		return list
	}
	var list []string
	for i, item := range deref(n).Content {
		s, ok := d.oneOf(fmt.Sprintf("%s[%d]", path, i), item, allowed...)
		if ok {
			list = append(list, s)
		}
	}
	return list
}

var pullRequestFields = []field[PullRequestTrigger]{
	{"branches", func(d *decoder, path string, e entry, t *PullRequestTrigger) {
		t.Branches = d.globList(path, e.value, "refs/heads/")
	}},
	{"types", func(d *decoder, path string, e entry, t *PullRequestTrigger) {
		t.Types = d.enumList(path, e.value, pullRequestTypes)
	}},
	{"paths", func(d *decoder, path string, e entry, t *PullRequestTrigger) {
		t.Paths = d.pathGlobList(path, e.value)
	}},
	{"paths_ignore", func(d *decoder, path string, e entry, t *PullRequestTrigger) {
		t.PathsIgnore = d.pathGlobList(path, e.value)
	}},
	{"deploy", func(d *decoder, path string, e entry, t *PullRequestTrigger) {
		t.Deploy, _ = d.bool(path, e.value)
	}},
}

// decodePullRequest decodes on.pull_request. A null value means every
// default: opened, synchronize and reopened on any base branch.
func decodePullRequest(d *decoder, path string, e entry) *PullRequestTrigger {
	t := &PullRequestTrigger{}
	m, _ := decodeFields(d, path, e.key, e.value, pullRequestFields, t)
	types, ok := m.entries["types"]
	switch {
	case !ok || isNull(deref(types.value)):
		t.Types = slices.Clone(defaultPullRequestTypes)
	case deref(types.value).Kind == yaml.SequenceNode && len(deref(types.value).Content) == 0:
		d.errorf(deref(types.value), "%s.types: empty list, so no pull request starts the pipeline, "+
			"remove types to start on opened, synchronize and reopened", path)
	}
	return t
}

var concurrencyFields = []field[Concurrency]{
	{"cancel_superseded", func(d *decoder, path string, e entry, c *Concurrency) {
		c.CancelSuperseded, _ = d.bool(path, e.value)
	}},
	{"limit", func(d *decoder, path string, e entry, c *Concurrency) {
		n, ok := d.int(path, e.value)
		if ok && n < 1 {
			d.errorf(deref(e.value), "%s: invalid limit %d, allow at least 1 run at a time", path, n)
		}
		c.Limit = n
	}},
}

func decodeConcurrency(d *decoder, path string, e entry) Concurrency {
	var c Concurrency
	m, _ := decodeFields(d, path, e.key, e.value, concurrencyFields, &c)
	if !m.has("cancel_superseded") {
		c.CancelSuperseded = true
	}
	if !m.has("limit") {
		c.Limit = defaultRunLimit
	}
	return c
}

var buildFields = []field[Build]{
	{"context", func(d *decoder, path string, e entry, b *Build) {
		b.Context, _ = d.checkedStr(path, e.value, validateRelativePath)
	}},
	{"dockerfile", func(d *decoder, path string, e entry, b *Build) {
		b.Dockerfile, _ = d.checkedStr(path, e.value, validateRelativePath)
	}},
	{"image", func(d *decoder, path string, e entry, b *Build) {
		b.Image, _ = d.checkedStr(path, e.value, validateImageName)
	}},
	{"args", func(d *decoder, path string, e entry, b *Build) {
		b.Args, _ = d.stringMap(path, e.value, validateEnvName)
	}},
	{"secrets", func(d *decoder, path string, e entry, b *Build) {
		b.Secrets = d.secretMap(path, e.value, validateEnvName)
		if len(b.Secrets) > 0 {
			d.warnf(e.key, "%s: build arguments stay in the image history, where \"docker history\" "+
				"shows them to anyone who can pull the image, so prefer step secrets or deploy.secrets", path)
		}
	}},
}

func decodeBuild(d *decoder, path string, e entry) *Build {
	b := &Build{}
	m, ok := decodeFields(d, path, e.key, e.value, buildFields, b)
	if !ok {
		return b
	}
	d.requireKey(path, m, "image", `"image: acme/hello"`)
	d.conflictingNames(path+".secrets", m.entries["secrets"], b.Secrets, b.Args, path+".args")
	if !m.has("context") {
		b.Context = defaultContext
	}
	if !m.has("dockerfile") {
		b.Dockerfile = defaultDockerfile
	}
	return b
}

var deployFields = []field[Deploy]{
	{"container", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Container, _ = d.checkedStr(path, e.value, validateContainerName)
	}},
	{"port", func(d *decoder, path string, e entry, dp *Deploy) {
		port, ok := d.int(path, e.value)
		if !ok {
			return
		}
		if err := validatePort(port); err != nil {
			d.errorf(deref(e.value), "%s: %v", path, err)
		}
		dp.Port = port
	}},
	{"publish", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Publish, _ = d.checkedStr(path, e.value, validatePublish)
	}},
	{"network", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Network, _ = d.oneOf(path, e.value, deployNetworks...)
	}},
	{"health", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Health = decodeHealth(d, path, e)
	}},
	{"env", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Env, _ = d.stringMap(path, e.value, validateEnvName)
	}},
	{"vault", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Vault = decodeVault(d, path, e)
	}},
	{"secrets", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Secrets = d.secretMap(path, e.value, validateEnvName)
	}},
	{"restart", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Restart, _ = d.oneOf(path, e.value, restartPolicies...)
	}},
	{"stop_timeout", func(d *decoder, path string, e entry, dp *Deploy) {
		v, ok := d.duration(path, e.value)
		if !ok {
			return
		}
		// The Docker API takes the stop timeout in whole seconds.
		if v < 0 || v%time.Second != 0 {
			d.errorf(deref(e.value), "%s: invalid timeout %v, use a whole number of seconds such as 10s",
				path, v)
		}
		dp.StopTimeout = v
	}},
	{"haproxy", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.HAProxy = decodeHAProxy(d, path, e)
	}},
	{"keep_images", func(d *decoder, path string, e entry, dp *Deploy) {
		n, ok := d.int(path, e.value)
		if ok && n < 1 {
			d.errorf(deref(e.value), "%s: invalid count %d, keep at least 1 image", path, n)
		}
		dp.KeepImages = n
	}},
}

func decodeDeploy(d *decoder, path string, e entry) *Deploy {
	dp := &Deploy{}
	m, ok := decodeFields(d, path, e.key, e.value, deployFields, dp)
	if !ok {
		return dp
	}
	d.requireKey(path, m, "container", `"container: hello"`)
	d.requireKey(path, m, "port", `"port: 8080"`)
	d.requireKey(path, m, "health", `"health: {path: /healthz}"`)

	if !m.has("network") {
		dp.Network = defaultNetwork
	}
	switch {
	case m.has("haproxy") && dp.Network == "host":
		d.errorf(m.entries["network"].key, "%s.network: host cannot be used with haproxy, "+
			"whose two slots need two ports: use bridge", path)
	case m.has("haproxy") && m.has("publish"):
		d.errorf(m.entries["publish"].key, "%s.publish: not used with haproxy, which gives "+
			"each container a free loopback port: remove it", path)
	case m.has("haproxy"):
	case dp.Network == "bridge" && !m.has("publish"):
		d.errorf(m.at, "%s: missing required key \"publish\" on the bridge network, "+
			"for example \"publish: 127.0.0.1:8080\"", path)
	case dp.Network == "host" && m.has("publish"):
		d.errorf(m.entries["publish"].key, "%s.publish: not used on the host network, remove it", path)
	}

	for _, key := range []string{"env", "secrets"} {
		e, ok := m.entries[key]
		if !ok || !m.has("vault") {
			continue
		}
		for _, name := range vaultVariables {
			if k := findKey(e.value, name); k != nil {
				d.errorf(k, "%s.%s.%s: conflicts with %s.vault, which sets %s, remove it from %s",
					path, key, name, path, name, key)
			}
		}
	}
	d.conflictingNames(path+".secrets", m.entries["secrets"], dp.Secrets, dp.Env, path+".env")

	if !m.has("restart") {
		dp.Restart = defaultRestart
	}
	if !m.has("stop_timeout") {
		dp.StopTimeout = defaultStopTimeout
	}
	if !m.has("health") {
		dp.Health = Health{Path: defaultHealthPath, Timeout: defaultHealthWait}
	}
	if !m.has("keep_images") {
		dp.KeepImages = defaultKeepImages
	}
	return dp
}

var haproxyFields = []field[HAProxy]{
	{"socket", func(d *decoder, path string, e entry, h *HAProxy) {
		h.Socket, _ = d.checkedStr(path, e.value, validateAbsolutePath)
	}},
	{"backend", func(d *decoder, path string, e entry, h *HAProxy) {
		h.Backend, _ = d.checkedStr(path, e.value, validateHAProxyName)
	}},
	{"servers", func(d *decoder, path string, e entry, h *HAProxy) {
		list, ok := d.stringList(path, e.value, `["app_a", "app_b"]`)
		if !ok {
			return
		}
		h.Servers = list
		if len(list) != 2 {
			d.errorf(deref(e.value), "%s: want exactly two server names (one serves while the "+
				"other waits), got %d", path, len(list))
			return
		}
		if list[0] == list[1] {
			d.errorf(deref(e.value), "%s: the two servers must differ, both are %q", path, list[0])
		}
		for i, name := range list {
			if err := validateHAProxyName(name); err != nil {
				d.errorf(deref(deref(e.value).Content[i]), "%s[%d]: %v", path, i, err)
			}
		}
	}},
	{"state_file", func(d *decoder, path string, e entry, h *HAProxy) {
		h.StateFile, _ = d.checkedStr(path, e.value, validateAbsolutePath)
	}},
	{"check_timeout", func(d *decoder, path string, e entry, h *HAProxy) {
		h.CheckTimeout = d.positiveDuration(path, e.value)
	}},
	{"drain_timeout", func(d *decoder, path string, e entry, h *HAProxy) {
		h.DrainTimeout = d.positiveDuration(path, e.value)
	}},
	{"watch", func(d *decoder, path string, e entry, h *HAProxy) {
		v, ok := d.duration(path, e.value)
		if ok && v < 0 {
			d.errorf(deref(e.value), "%s: invalid duration %v, use 0s to turn the watch off", path, v)
		}
		h.Watch = v
	}},
	{"max_5xx", func(d *decoder, path string, e entry, h *HAProxy) {
		n, ok := d.int(path, e.value)
		if ok && n < 0 {
			d.errorf(deref(e.value), "%s: invalid count %d, it cannot be negative", path, n)
		}
		h.Max5xx = n
	}},
}

func decodeHAProxy(d *decoder, path string, e entry) *HAProxy {
	h := &HAProxy{}
	m, ok := decodeFields(d, path, e.key, e.value, haproxyFields, h)
	if !ok {
		return h
	}
	d.requireKey(path, m, "socket", `"socket: /run/haproxy/admin.sock"`)
	d.requireKey(path, m, "backend", `"backend: landing_page"`)
	d.requireKey(path, m, "servers", `"servers: [app_a, app_b]"`)
	if !m.has("check_timeout") {
		h.CheckTimeout = defaultHAProxyWait
	}
	if !m.has("drain_timeout") {
		h.DrainTimeout = defaultHAProxyWait
	}
	if !m.has("watch") {
		h.Watch = defaultHAProxyWait
	}
	return h
}

// positiveDuration decodes a duration that must be above zero.
func (d *decoder) positiveDuration(path string, n *yaml.Node) time.Duration {
	v, ok := d.duration(path, n)
	if ok && v <= 0 {
		d.errorf(deref(n), "%s: invalid duration %v, it must be positive", path, v)
	}
	return v
}

var healthFields = []field[Health]{
	{"path", func(d *decoder, path string, e entry, h *Health) {
		h.Path, _ = d.checkedStr(path, e.value, validateHealthPath)
	}},
	{"timeout", func(d *decoder, path string, e entry, h *Health) {
		v, ok := d.duration(path, e.value)
		if ok && v <= 0 {
			d.errorf(deref(e.value), "%s: invalid timeout %v, it must be positive", path, v)
		}
		h.Timeout = v
	}},
}

func decodeHealth(d *decoder, path string, e entry) Health {
	var h Health
	m, _ := decodeFields(d, path, e.key, e.value, healthFields, &h)
	if !m.has("path") {
		h.Path = defaultHealthPath
	}
	if !m.has("timeout") {
		h.Timeout = defaultHealthWait
	}
	return h
}

var vaultFields = []field[VaultLogin]{
	{"approle", func(d *decoder, path string, e entry, v *VaultLogin) {
		v.AppRole, _ = d.checkedStr(path, e.value, validateAppRoleName)
	}},
	{"address", func(d *decoder, path string, e entry, v *VaultLogin) {
		v.Address, _ = d.checkedStr(path, e.value, validateVaultAddress)
	}},
}

func decodeVault(d *decoder, path string, e entry) *VaultLogin {
	v := &VaultLogin{}
	m, ok := decodeFields(d, path, e.key, e.value, vaultFields, v)
	if ok {
		d.requireKey(path, m, "approle", `"approle: hello-app"`)
	}
	return v
}
