package runner

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/quai-ci/quai/pipeline"
)

// errNoVault is returned when a pipeline names secrets and quai has no
// Vault configured.
var errNoVault = errors.New("the pipeline reads secrets but quai has no Vault: set VAULT_ADDR and VAULT_TOKEN (or QUAI_APPROLE_ID and QUAI_APPROLE_SECRET_ID)")

// readSecrets reads each secret from Vault when it is needed, so a value
// changed in Vault reaches the next step, and returns "NAME=value"
// entries sorted by name. Every value is added to the log's masks before
// anything can print it. A value shorter than the masking minimum is used
// but named in the run log, since it cannot be hidden.
func (r *Runner) readSecrets(ctx context.Context, refs map[string]pipeline.SecretRef, out *logWriter) ([]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if r.cfg.Vault == nil {
		return nil, errNoVault
	}
	names := make([]string, 0, len(refs))
	for name := range refs {
		names = append(names, name)
	}
	sort.Strings(names)

	env := make([]string, 0, len(names))
	for _, name := range names {
		ref := refs[name]
		mount := ref.Mount
		if mount == "" {
			mount = pipeline.DefaultSecretMount
		}
		value, err := r.cfg.Vault.ReadSecret(ctx, mount, ref.Path, ref.Key)
		if err != nil {
			return nil, fmt.Errorf("reading %s for %s: %w", ref, name, err)
		}
		v := value.Reveal()
		if len(v) < minMasked {
			out.Printf("warning: secret %s (%s) is shorter than %d characters and is not masked in the log", name, ref, minMasked)
		}
		out.AddSecret(v)
		env = append(env, name+"="+v)
	}
	return env, nil
}
