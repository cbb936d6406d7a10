package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"
)

var (
	// ErrSecretNotFound is wrapped by ReadSecret errors when the path holds
	// no secret, its current KV v2 version is deleted or destroyed, or the
	// secret has no such key.
	ErrSecretNotFound = errors.New("vault secret not found")

	// ErrInvalidSecret is wrapped by ReadSecret errors when the value is
	// empty, null, a JSON object or a JSON array.
	ErrInvalidSecret = errors.New("invalid vault secret value")
)

// maxListedKeys bounds the key names a missing-key error lists.
const maxListedKeys = 20

// kvMount is one KV mount as ReadSecret detected it.
type kvMount struct {
	// path is the mount's path as Vault reports it, with a trailing slash.
	path    string
	version int
}

// kvMounts caches mounts by the name ReadSecret was given. The zero value
// is ready to use.
type kvMounts struct {
	mu     sync.Mutex
	byName map[string]kvMount
}

func (m *kvMounts) get(name string) (kvMount, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mount, ok := m.byName[name]
	return mount, ok
}

func (m *kvMounts) put(name string, mount kvMount) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byName == nil {
		m.byName = map[string]kvMount{}
	}
	m.byName[name] = mount
}

// ReadSecret reads the value of key in the key/value secret at path under
// mount. KV version 1 and 2 mounts both work. The version of a mount is
// detected on its first use through sys/internal/ui/mounts, which Vault lets
// any token read for a mount it has a capability under, and is kept for the
// life of the Client. KV v2 reads the current version.
//
// ReadSecret never returns an empty value. JSON numbers and booleans are
// returned as their JSON text. Errors name the mount, path and key but never
// a value, say what to change, and wrap ErrSecretNotFound, ErrInvalidSecret,
// ErrPermissionDenied, ErrUnreachable or ErrLogin where they apply. It is
// safe for concurrent use.
func (c *Client) ReadSecret(ctx context.Context, mount, path, key string) (Secret, error) {
	mount = strings.Trim(mount, "/")
	path = strings.Trim(path, "/")
	name := mount + "/" + path
	if err := checkSecretRef(mount, path, key); err != nil {
		return "", fmt.Errorf("reading key %q of Vault secret %s: %w", key, name, err)
	}

	value, err := c.readSecret(ctx, mount, path, key)
	if err != nil {
		return "", fmt.Errorf("reading key %q of Vault secret %s: %w", key, name, err)
	}
	return value, nil
}

func (c *Client) readSecret(ctx context.Context, mount, path, key string) (Secret, error) {
	m, err := c.kvMount(ctx, mount, path)
	if err != nil {
		return "", err
	}
	rel := strings.TrimPrefix(mount+"/"+path, m.path)
	apiPath := m.path + rel
	if m.version == 2 {
		apiPath = m.path + "data/" + rel
	}
	cli := kvCommand{mount: strings.TrimSuffix(m.path, "/"), path: rel, key: key}

	resp, err := c.read(ctx, apiPath, `"read" on `+apiPath)
	if err != nil {
		return "", err
	}
	data, err := secretData(resp, m.version, apiPath, cli)
	if err != nil {
		return "", err
	}
	raw, ok := data[key]
	if !ok {
		return "", missingKey(data, m.version, cli)
	}
	value, err := secretValue(raw)
	if err != nil {
		return "", fmt.Errorf("%w: the value %s: write a non-empty string to key %q "+
			"of %s/%s or fix the pipeline's reference", ErrInvalidSecret, err, key, cli.mount, cli.path)
	}
	return Secret(value), nil
}

// kvMount returns the mount that holds mount/path, detecting its KV version
// on first use.
func (c *Client) kvMount(ctx context.Context, mount, path string) (kvMount, error) {
	if m, ok := c.kvMounts.get(mount); ok {
		return m, nil
	}

	// Vault returns 403 both when the token has no capability under the
	// mount and when the mount does not exist, so that this endpoint cannot
	// be used to list mounts.
	need := fmt.Sprintf(`"read" on %s/data/%s (KV v2) or %s/%s (KV v1); `+
		`Vault gives the same answer when mount %q does not exist`, mount, path, mount, path, mount)
	resp, err := c.read(ctx, "sys/internal/ui/mounts/"+mount, need)
	if err != nil {
		return kvMount{}, fmt.Errorf("detecting the KV version of mount %q: %w", mount, err)
	}
	if resp == nil || resp.Data == nil {
		return kvMount{}, fmt.Errorf("%w: Vault at %s has no mount %q: enable it with "+
			"`vault secrets enable -path=%s kv-v2` or fix the pipeline's reference",
			ErrSecretNotFound, c.addr, mount, mount)
	}

	m, err := parseKVMount(resp.Data, mount)
	if err != nil {
		return kvMount{}, err
	}
	c.kvMounts.put(mount, m)
	c.logger.Debug("detected vault kv mount", "mount", m.path, "kv_version", m.version)
	return m, nil
}

// parseKVMount reads the response of sys/internal/ui/mounts, whose data has
// the fields of sys/mounts: type, options.version and path (Vault 1.19).
func parseKVMount(data map[string]any, mount string) (kvMount, error) {
	engine, _ := data["type"].(string)
	if engine != "kv" && engine != "generic" {
		return kvMount{}, fmt.Errorf("mount %q is a %q secrets engine, not a KV one: "+
			"point the pipeline's reference at a KV mount", mount, engine)
	}

	m := kvMount{path: mount + "/", version: 1}
	// A mount name that is a folder inside a mount, such as "secret/team",
	// resolves to the enclosing mount.
	if p, _ := data["path"].(string); p != "" && strings.HasPrefix(mount+"/", p) {
		m.path = p
	}
	if options, ok := data["options"].(map[string]any); ok && options["version"] == "2" {
		m.version = 2
	}
	return m, nil
}

// secretData returns the key/value pairs of a read response.
func secretData(resp *api.Secret, version int, apiPath string, cli kvCommand) (map[string]any, error) {
	notFound := fmt.Errorf("%w: no secret at %s/%s (API path %s): write it with "+
		"`vault kv put -mount=%s %s %s=VALUE` or fix the pipeline's reference",
		ErrSecretNotFound, cli.mount, cli.path, apiPath, cli.mount, cli.path, cli.key)
	if resp == nil {
		return nil, notFound
	}
	if version == 1 {
		if len(resp.Data) == 0 {
			return nil, notFound
		}
		return resp.Data, nil
	}

	data, _ := resp.Data["data"].(map[string]any)
	if data != nil {
		return data, nil
	}
	// Vault returns the metadata with a null data field when the current
	// version is deleted or destroyed.
	meta, _ := resp.Data["metadata"].(map[string]any)
	current, _ := meta["version"].(json.Number)
	if destroyed, _ := meta["destroyed"].(bool); destroyed {
		return nil, fmt.Errorf("%w: the current version %s of %s/%s is destroyed: "+
			"write a new version with `vault kv put -mount=%s %s %s=VALUE`",
			ErrSecretNotFound, current, cli.mount, cli.path, cli.mount, cli.path, cli.key)
	}
	if deleted, _ := meta["deletion_time"].(string); deleted != "" {
		return nil, fmt.Errorf("%w: the current version %s of %s/%s was deleted at %s: "+
			"restore it with `vault kv undelete -mount=%s -versions=%s %s` or write a new version",
			ErrSecretNotFound, current, cli.mount, cli.path, deleted, cli.mount, current, cli.path)
	}
	return nil, notFound
}

func missingKey(data map[string]any, version int, cli kvCommand) error {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, strconv.Quote(k))
	}
	slices.Sort(keys)
	listed := strings.Join(keys, ", ")
	if len(keys) > maxListedKeys {
		listed = strings.Join(keys[:maxListedKeys], ", ") +
			fmt.Sprintf(" and %d more", len(keys)-maxListedKeys)
	}

	fix := fmt.Sprintf("`vault kv patch -mount=%s %s %s=VALUE`", cli.mount, cli.path, cli.key)
	if version == 1 {
		fix = fmt.Sprintf("`vault kv put -mount=%s %s %s=VALUE` together with the existing "+
			"keys, because a KV v1 write replaces them all", cli.mount, cli.path, cli.key)
	}
	return fmt.Errorf("%w: %s/%s has no key %q (its keys are %s): add it with %s "+
		"or fix the pipeline's reference", ErrSecretNotFound, cli.mount, cli.path, cli.key, listed, fix)
}

// secretValue turns a decoded JSON value into the string handed to a step.
// The Vault API client decodes numbers as json.Number.
func secretValue(raw any) (string, error) {
	var value string
	switch v := raw.(type) {
	case string:
		value = v
	case json.Number:
		value = v.String()
	case bool:
		value = strconv.FormatBool(v)
	case nil:
		return "", errors.New("is null")
	default:
		return "", errors.New("is a JSON object or array, not a string")
	}
	if value == "" {
		return "", errors.New("is empty")
	}
	return value, nil
}

// checkSecretRef rejects references that would make Vault read a path
// other than the one written, such as ".." segments.
func checkSecretRef(mount, path, key string) error {
	for _, part := range []struct{ what, value string }{{"mount", mount}, {"path", path}} {
		if part.value == "" {
			return fmt.Errorf("invalid secret reference: the %s is empty", part.what)
		}
		for _, segment := range strings.Split(part.value, "/") {
			if segment == "" || segment == "." || segment == ".." {
				return fmt.Errorf("invalid secret reference: the %s %q has an empty, "+
					"\".\" or \"..\" segment", part.what, part.value)
			}
		}
	}
	if key == "" {
		return errors.New("invalid secret reference: the key is empty")
	}
	return nil
}

// kvCommand holds the arguments of the `vault kv` commands that error
// messages suggest.
type kvCommand struct {
	mount, path, key string
}
