package vault

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Credentials are a freshly minted AppRole login for an app container.
type Credentials struct {
	RoleID   string
	SecretID Secret
	// Accessor is the secret id's accessor. It cannot log in, so it is safe
	// to store, and DestroySecretID takes it to revoke the secret id.
	Accessor string
}

// roleNamePattern is the role name syntax of Vault's AppRole paths
// (builtin/credential/approle/path_role.go in Vault 1.19).
var roleNamePattern = regexp.MustCompile(`^\w(([\w-.@]+)?\w)?$`)

// IssueAppRole reads the role id of role and creates a new secret id for it.
// Every call returns a different secret id, and earlier ones stay valid until
// destroyed or expired. Errors name the role and wrap ErrUnreachable,
// ErrRoleNotFound, ErrPermissionDenied or ErrLogin where they apply.
func (c *Client) IssueAppRole(ctx context.Context, role string) (Credentials, error) {
	if err := checkRoleName(role); err != nil {
		return Credentials{}, err
	}
	base := "auth/approle/role/" + role
	need := fmt.Sprintf(`"read" on %s/role-id and "update" on %s/secret-id`, base, base)

	resp, err := c.read(ctx, base+"/role-id", need)
	if err != nil {
		return Credentials{}, fmt.Errorf("reading role id of AppRole %q: %w", role, err)
	}
	if resp == nil {
		return Credentials{}, roleNotFound(role, c.addr)
	}
	roleID, _ := resp.Data["role_id"].(string)
	if roleID == "" {
		return Credentials{}, fmt.Errorf("reading role id of AppRole %q from %s: "+
			"the response has no role_id", role, c.addr)
	}

	resp, err = c.write(ctx, base+"/secret-id", nil, need)
	if err != nil {
		return Credentials{}, fmt.Errorf("creating secret id for AppRole %q: %w",
			role, roleErr(err, role, c.addr))
	}
	creds, err := parseSecretID(resp)
	if err != nil {
		return Credentials{}, fmt.Errorf("creating secret id for AppRole %q at %s: %w",
			role, c.addr, err)
	}
	creds.RoleID = roleID
	return creds, nil
}

// DestroySecretID destroys the secret id with the given accessor, so that a
// replaced container's credentials stop working. Destroying an accessor that
// Vault no longer has, because it was destroyed already or expired, returns
// nil, so calling it twice is safe. Errors wrap ErrUnreachable,
// ErrRoleNotFound, ErrPermissionDenied or ErrLogin where they apply.
func (c *Client) DestroySecretID(ctx context.Context, role, accessor string) error {
	if err := checkRoleName(role); err != nil {
		return err
	}
	if accessor == "" {
		return fmt.Errorf("destroying secret id of AppRole %q: the accessor is empty", role)
	}
	path := "auth/approle/role/" + role + "/secret-id-accessor/destroy"
	need := fmt.Sprintf(`"update" on %s`, path)

	_, err := c.write(ctx, path, map[string]any{"secret_id_accessor": accessor}, need)
	if err == nil || isUnknownAccessor(err) {
		return nil
	}
	return fmt.Errorf("destroying secret id %s of AppRole %q: %w",
		accessor, role, roleErr(err, role, c.addr))
}

func checkRoleName(role string) error {
	if !roleNamePattern.MatchString(role) {
		return fmt.Errorf("invalid AppRole name %q: use letters, digits, "+
			"'_', '-', '.' and '@', starting and ending with a letter or digit", role)
	}
	return nil
}

func roleNotFound(role, addr string) error {
	return fmt.Errorf("%w: AppRole %q does not exist in Vault at %s: create it with "+
		"`vault write auth/approle/role/%s token_policies=POLICY` "+
		"(after `vault auth enable approle` if AppRole is not enabled)",
		ErrRoleNotFound, role, addr, role)
}

// roleErr replaces err with the role-not-found error when Vault's message
// states that the role does not exist. Vault 1.19 reports a missing role with
// the text `role "NAME" does not exist`, as a 404 on the secret-id path and
// as a 500 on the destroy path.
func roleErr(err error, role, addr string) error {
	if strings.Contains(err.Error(), fmt.Sprintf("role %q does not exist", role)) {
		return roleNotFound(role, addr)
	}
	return err
}

// isUnknownAccessor reports whether Vault rejected a destroy request because
// it has no secret id with that accessor. Vault 1.19 reports that as a 500
// with the text "failed to find accessor entry for secret_id_accessor".
func isUnknownAccessor(err error) bool {
	return !errors.Is(err, ErrUnreachable) &&
		strings.Contains(err.Error(), "failed to find accessor entry")
}

func parseSecretID(resp *api.Secret) (Credentials, error) {
	if resp == nil {
		return Credentials{}, errors.New("the response is empty")
	}
	secretID, _ := resp.Data["secret_id"].(string)
	accessor, _ := resp.Data["secret_id_accessor"].(string)
	if secretID == "" || accessor == "" {
		return Credentials{}, errors.New("the response has no secret_id or secret_id_accessor")
	}
	return Credentials{SecretID: Secret(secretID), Accessor: accessor}, nil
}
