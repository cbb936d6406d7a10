package pipeline

import "testing"

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"image", "image", 0},
		{"imgae", "image", 1},
		{"imag", "image", 1},
		{"imagee", "image", 1},
		{"inage", "image", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"été", "ete", 2},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"container", "port", "publish", "network", "health", "env", "vault", "restart", "stop_timeout"}
	tests := []struct {
		word, want string
	}{
		{"helth", "health"},
		{"Port", "port"},
		{"containr", "container"},
		{"stop-timeout", "stop_timeout"},
		{"evn", "env"},
		{"colour", ""},
		{"x", ""},
		{"ports", "port"},
	}
	for _, tt := range tests {
		if got := suggest(tt.word, keys); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}
