// Package testenv lets tests find the external components they need (Docker,
// the busybox test image, Vault) and decide whether a missing one skips the
// test or fails it.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// RequireIntegration reports whether QUAI_REQUIRE_INTEGRATION=1 is set, in
// which case a missing external component fails a test instead of skipping it.
func RequireIntegration() bool {
	return os.Getenv("QUAI_REQUIRE_INTEGRATION") == "1"
}

// Skip stops the test because component is unavailable for the reason why. It
// calls t.Skip, or t.Fatal when RequireIntegration reports true.
func Skip(t testing.TB, component, why string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %s", component, why)
	if RequireIntegration() {
		t.Fatal(msg + " (failing because QUAI_REQUIRE_INTEGRATION=1)")
		return
	}
	t.Skip(msg)
}
