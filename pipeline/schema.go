package pipeline

import (
	"path/filepath"
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
		p.On.Push = &PushTrigger{}
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
}

func decodeTriggers(d *decoder, path string, e entry) Triggers {
	var t Triggers
	if v := deref(e.value); isNull(v) || (v.Kind == yaml.MappingNode && len(v.Content) == 0) {
		d.errorf(e.key, "%s: no events listed, add push or remove %q to build pushes to the default branch",
			path, path)
		return t
	}
	decodeFields(d, path, e.key, e.value, triggersFields, &t)
	return t
}

var pushFields = []field[PushTrigger]{
	{"branches", func(d *decoder, path string, e entry, t *PushTrigger) {
		t.Branches = d.globList(path, e.value, "refs/heads/")
	}},
	{"tags", func(d *decoder, path string, e entry, t *PushTrigger) {
		t.Tags = d.globList(path, e.value, "refs/tags/")
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
	list, ok := d.stringList(path, n)
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
}

func decodeBuild(d *decoder, path string, e entry) *Build {
	b := &Build{}
	m, ok := decodeFields(d, path, e.key, e.value, buildFields, b)
	if !ok {
		return b
	}
	d.requireKey(path, m, "image", `"image: acme/hello"`)
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
		dp.Network, _ = d.oneOf(path, e.value, "bridge", "host")
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
	{"restart", func(d *decoder, path string, e entry, dp *Deploy) {
		dp.Restart, _ = d.oneOf(path, e.value, "no", "always", "on-failure", "unless-stopped")
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

	if env, ok := m.entries["env"]; ok && m.has("vault") {
		for _, name := range vaultVariables {
			if k := findKey(env.value, name); k != nil {
				d.errorf(k, "%s.env.%s: conflicts with %s.vault, which sets %s, remove it from env",
					path, name, path, name)
			}
		}
	}

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
		list, ok := d.stringList(path, e.value)
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
