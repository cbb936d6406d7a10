package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSecretRef(t *testing.T) {
	tests := []struct {
		in   string
		want SecretRef
	}{
		{"1interviewparjour/mysql#url", SecretRef{Mount: "secret", Path: "1interviewparjour/mysql", Key: "url"}},
		{"app#password", SecretRef{Mount: "secret", Path: "app", Key: "password"}},
		{"kv:app/db#password", SecretRef{Mount: "kv", Path: "app/db", Key: "password"}},
		{"team/kv:app/db#password", SecretRef{Mount: "team/kv", Path: "app/db", Key: "password"}},
		{"secret:app#k", SecretRef{Mount: "secret", Path: "app", Key: "k"}},
		{"app/db#key.with-dots_and:colon", SecretRef{Mount: "secret", Path: "app/db", Key: "key.with-dots_and:colon"}},
	}
	for _, tt := range tests {
		got, err := ParseSecretRef(tt.in)
		if err != nil {
			t.Errorf("ParseSecretRef(%q) failed: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSecretRef(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseSecretRefErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", `add the key after "#"`},
		{"app/db", `add the key after "#"`},
		{"app/db#", `add the key after "#"`},
		{"#key", `the path before "#" is empty`},
		{"kv:#key", `the path before "#" is empty`},
		{":app#key", `the mount before ":" is empty`},
		{"k v:app#key", "white space"},
		{"app/db#key\n", "white space"},
		{"kv/:app#key", `mount "kv/"`},
		{"/kv:app#key", `mount "/kv"`},
		{"k*v:app#key", `mount "k*v"`},
		{"app//db#key", `path "app//db"`},
		{"app/db/#key", `path "app/db/"`},
		{"./app#key", `path "./app"`},
		{"app/..#key", `path "app/.."`},
		{"app#a#b", `more than one "#"`},
	}
	for _, tt := range tests {
		_, err := ParseSecretRef(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseSecretRef(%q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), "invalid secret reference") {
			t.Errorf("ParseSecretRef(%q) error %q does not say what is invalid", tt.in, err)
		}
	}
}

func TestSecretRefText(t *testing.T) {
	tests := []struct {
		ref  SecretRef
		want string
	}{
		{SecretRef{Mount: "secret", Path: "app/db", Key: "url"}, "app/db#url"},
		{SecretRef{Path: "app/db", Key: "url"}, "app/db#url"},
		{SecretRef{Mount: "kv", Path: "app/db", Key: "url"}, "kv:app/db#url"},
	}
	for _, tt := range tests {
		if got := tt.ref.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.ref, got, tt.want)
		}
		data, err := json.Marshal(map[string]SecretRef{"X": tt.ref})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"X":"` + tt.want + `"}`; string(data) != want {
			t.Errorf("JSON of %+v = %s, want %s", tt.ref, data, want)
		}
		var back map[string]SecretRef
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("unmarshaling %s: %v", data, err)
		}
		if back["X"].String() != tt.want || back["X"].Mount == "" {
			t.Errorf("JSON round trip of %+v gave %+v", tt.ref, back["X"])
		}
	}
	var r SecretRef
	if err := r.UnmarshalText([]byte("no-key")); err == nil {
		t.Errorf("UnmarshalText accepted a reference without a key")
	}
}

// Every reference ParseSecretRef accepts reads back the same from its
// String form.
func FuzzParseSecretRef(f *testing.F) {
	for _, seed := range []string{"app/db#url", "kv:app#k", "team/kv:a/b/c#k:x", ":a#b", "a#b#c", "a//b#c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseSecretRef(s)
		if err != nil {
			return
		}
		if r.Mount == "" || r.Path == "" || r.Key == "" {
			t.Fatalf("ParseSecretRef(%q) = %+v with an empty part", s, r)
		}
		again, err := ParseSecretRef(r.String())
		if err != nil {
			t.Fatalf("ParseSecretRef(%q) failed on String() %q: %v", s, r.String(), err)
		}
		if again != r {
			t.Fatalf("ParseSecretRef(%q) = %+v, but its String %q reads as %+v", s, r, r.String(), again)
		}
	})
}
