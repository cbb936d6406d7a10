package engine

import (
	"strings"
	"testing"
)

func TestReadBuildOutput(t *testing.T) {
	tests := []struct {
		name       string
		stream     string
		wantID     string
		wantWrites []string
		wantErr    string
	}{
		{
			name: "lines split across messages",
			stream: `{"stream":"Step 1/2 : FROM x\n"}` + "\n" +
				`{"stream":"hel"}{"stream":"lo\nwor"}{"stream":"ld\n"}` +
				`{"aux":{"ID":"sha256:abc"}}{"stream":"Successfully built abc\n"}`,
			wantID: "sha256:abc",
			wantWrites: []string{"Step 1/2 : FROM x\n", "hello\n", "world\n",
				"Successfully built abc\n"},
		},
		{
			name:       "status and progress",
			stream:     `{"status":"Downloading","progress":"[=> ] 1MB/2MB","id":"f00"}{"aux":{"ID":"sha256:1"}}`,
			wantID:     "sha256:1",
			wantWrites: []string{"f00: Downloading [=> ] 1MB/2MB\n"},
		},
		{
			name:       "short ID without aux",
			stream:     `{"stream":"Successfully built 0123abcd\n"}`,
			wantID:     "0123abcd",
			wantWrites: []string{"Successfully built 0123abcd\n"},
		},
		{
			name:       "last line without newline",
			stream:     `{"stream":"tail"}{"aux":{"ID":"sha256:2"}}`,
			wantID:     "sha256:2",
			wantWrites: []string{"tail\n"},
		},
		{
			name: "error message",
			stream: `{"stream":"Step 2/2 : COPY a /a\n"}` +
				`{"errorDetail":{"message":"COPY failed: stat a: file does not exist"},` +
				`"error":"COPY failed: stat a: file does not exist"}`,
			wantWrites: []string{"Step 2/2 : COPY a /a\n"},
			wantErr:    "COPY failed: stat a: file does not exist",
		},
		{
			name:       "error detail only",
			stream:     `{"errorDetail":{"message":"The command returned a non-zero code: 1"}}`,
			wantErr:    "non-zero code: 1",
			wantWrites: nil,
		},
		{
			name:       "no image named",
			stream:     `{"stream":"Step 1/1 : FROM x\n"}`,
			wantWrites: []string{"Step 1/1 : FROM x\n"},
			wantErr:    "without naming the built image",
		},
		{
			name:    "invalid JSON",
			stream:  `{"stream":`,
			wantErr: "decoding build output",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out lineRecorder
			id, err := readBuildOutput(strings.NewReader(tt.stream), &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Errorf("readBuildOutput: %v", err)
			}
			if id != tt.wantID {
				t.Errorf("ID = %q, want %q", id, tt.wantID)
			}
			if strings.Join(out.writes, "|") != strings.Join(tt.wantWrites, "|") {
				t.Errorf("writes = %q, want %q", out.writes, tt.wantWrites)
			}
		})
	}
}
