package vault

import (
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// Secret is a string that never prints. fmt with any verb, slog, encoding/json
// and encoding.TextMarshaler consumers all see "[redacted]". Only Reveal
// returns the value, so every place that sends a secret on is easy to find.
//
// NOTE: encoding/json writes a map key of any string type as is, without
// calling MarshalText, so never use a Secret as a map key.
type Secret string

// Reveal returns the secret value. Call it only to hand the value to Vault or
// to the container that needs it, never to format or log it.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v hides the value too.
func (s Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb. Without it, a verb that does not
// apply to strings, such as %d, makes fmt print the raw value in its
// "%!d(vault.Secret=...)" error text.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue returns "[redacted]" as the slog value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
