package pipeline

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestCheckDockerfile(t *testing.T) {
	const syntaxIgnored = "warning: the # syntax directive needs BuildKit, " +
		"so the classic builder that the daemon uses ignores it"
	const flagFails = "needs BuildKit, so the build fails on the classic builder that the daemon uses"
	tests := []struct {
		file string
		want []string
	}{
		{"clean.Dockerfile", nil},
		{"buildkit.Dockerfile", []string{
			"1:1: " + syntaxIgnored,
			"4:5: warning: RUN --mount " + flagFails,
			"5:5: warning: RUN --network " + flagFails,
			"7:5: warning: RUN --security " + flagFails,
			"8:6: warning: COPY --link " + flagFails,
			"9:17: warning: ADD --link " + flagFails,
			"10:5: warning: heredocs (<<EOF) need BuildKit, so the classic builder reads the following lines " +
				"as instructions and fails",
		}},
		{"escape.Dockerfile", []string{
			"2:1: " + syntaxIgnored,
			"5:5: warning: RUN --mount " + flagFails,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readTestdata(t, filepath.Join("testdata", "dockerfile", tt.file))
			problems := CheckDockerfile(tt.file, data)
			if HasErrors(problems) {
				t.Errorf("CheckDockerfile returned errors, want warnings only: %q", positioned(problems))
			}
			if got := positioned(problems); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCheckDockerfileCRLF(t *testing.T) {
	data := []byte("FROM busybox\r\nRUN --mount=type=cache,target=/c \\\r\n  true\r\n")
	got := positioned(CheckDockerfile("Dockerfile", data))
	want := []string{"2:5: warning: RUN --mount needs BuildKit, so the build fails on the classic builder " +
		"that the daemon uses"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}
