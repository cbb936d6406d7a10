package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestContainerConfigRejects(t *testing.T) {
	valid := RunOptions{Name: "quai-test-x", Image: "img", Port: 8080, Publish: "127.0.0.1:18567"}
	tests := []struct {
		name    string
		change  func(*RunOptions)
		wantErr string
	}{
		{"empty image", func(o *RunOptions) { o.Image = "" }, "empty image"},
		{"port out of range", func(o *RunOptions) { o.Port = 70000 }, "invalid container port 70000"},
		{"publish without port", func(o *RunOptions) { o.Port = 0 }, "without a container port"},
		{"publish with host network", func(o *RunOptions) { o.Network = "host" }, "host network"},
		{"unknown network", func(o *RunOptions) { o.Network = "overlay" }, `unsupported network "overlay"`},
		{"publish without host", func(o *RunOptions) { o.Publish = "18567" }, `invalid publish address "18567"`},
		{"publish host name", func(o *RunOptions) { o.Publish = "localhost:1" }, "not an IP address"},
		{"publish port zero", func(o *RunOptions) { o.Publish = "127.0.0.1:0" }, "port must be 1-65535"},
		{"unknown restart policy", func(o *RunOptions) { o.Restart = "sometimes" }, "sometimes"},
		{"negative log files", func(o *RunOptions) { o.LogMaxFiles = -1 }, "invalid log file count -1"},
		{"negative stop timeout", func(o *RunOptions) { o.StopTimeout = -time.Second }, "negative stop timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.change(&opts)
			_, _, err := containerConfig(opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestContainerConfig(t *testing.T) {
	config, hostConfig, err := containerConfig(RunOptions{
		Image:       "img",
		Port:        8080,
		Publish:     "127.0.0.1:18567",
		Restart:     "always",
		LogMaxSize:  "1m",
		LogMaxFiles: 5,
		StopTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports = %v, want 8080/tcp", config.ExposedPorts)
	}
	bindings := hostConfig.PortBindings["8080/tcp"]
	if len(bindings) != 1 || bindings[0].HostIP != "127.0.0.1" || bindings[0].HostPort != "18567" {
		t.Errorf("port bindings = %v, want 127.0.0.1:18567", bindings)
	}
	if hostConfig.NetworkMode != "bridge" {
		t.Errorf("network mode = %q, want bridge", hostConfig.NetworkMode)
	}
	if hostConfig.RestartPolicy.Name != "always" {
		t.Errorf("restart policy = %q, want always", hostConfig.RestartPolicy.Name)
	}
	if got := hostConfig.LogConfig.Config; got["max-size"] != "1m" || got["max-file"] != "5" {
		t.Errorf("log config = %v, want max-size 1m and max-file 5", got)
	}
	if config.StopTimeout == nil || *config.StopTimeout != 30 {
		t.Errorf("stop timeout = %v, want 30", config.StopTimeout)
	}
}

func TestStartError(t *testing.T) {
	tests := []struct {
		name     string
		docker   string
		wantAddr string // empty when the error is not about a busy address
	}{
		{
			name: "userland proxy",
			docker: "Error response from daemon: driver failed programming external connectivity " +
				"on endpoint web (abc): Error starting userland proxy: listen tcp4 127.0.0.1:18567: " +
				"bind: address already in use",
			wantAddr: "127.0.0.1:18567",
		},
		{
			name: "port allocator",
			docker: "Error response from daemon: driver failed programming external connectivity " +
				"on endpoint web (abc): Bind for 127.0.0.1:18568 failed: port is already allocated",
			wantAddr: "127.0.0.1:18568",
		},
		{
			name:   "other failure",
			docker: `Error response from daemon: OCI runtime create failed: exec: "nope": not found`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cause := errors.New(tt.docker)
			err := startError("web", cause)
			if !errors.Is(err, cause) {
				t.Errorf("error %q does not wrap the Docker error", err)
			}
			if got := errors.Is(err, ErrAddressInUse); got != (tt.wantAddr != "") {
				t.Errorf("errors.Is(ErrAddressInUse) = %v for %q", got, err)
			}
			if tt.wantAddr != "" && !strings.Contains(err.Error(), "publish address "+tt.wantAddr) {
				t.Errorf("error %q does not name %s", err, tt.wantAddr)
			}
		})
	}
}

func TestCeilSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{time.Millisecond, 1},
		{time.Second, 1},
		{1500 * time.Millisecond, 2},
		{10 * time.Second, 10},
	}
	for _, tt := range tests {
		if got := ceilSeconds(tt.d); got != tt.want {
			t.Errorf("ceilSeconds(%s) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
