package haproxy

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseInfoPID(t *testing.T) {
	pid, err := parseInfoPID(readTestdata(t, "info.txt"))
	if err != nil {
		t.Fatalf("parseInfoPID: %v", err)
	}
	if pid != 11516 {
		t.Errorf("pid = %d, want 11516", pid)
	}

	for _, text := range []string{"", "Name: HAProxy\n", "Pid: abc\n", "Pid: -3\n"} {
		if _, err := parseInfoPID(text); err == nil {
			t.Errorf("parseInfoPID(%q) returned no error", text)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, name := range []string{"app", "app-v2", "web_1", "be.internal", "ns:app", "A9"} {
		if err := validateName("backend", name); err != nil {
			t.Errorf("validateName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "a b", "app;show", "app/blue", "app\n", "ünï"} {
		if err := validateName("backend", name); err == nil {
			t.Errorf("validateName(%q) returned no error", name)
		}
	}
}

func TestSetAddrResponses(t *testing.T) {
	// Responses of HAProxy 2.6.12 to `set server ... addr`.
	tests := []struct {
		response string
		wantErr  error
	}{
		{"IP changed from '127.0.0.1' to '::1', no need to change the port by 'stats socket command'\n\n", nil},
		{"no need to change the addr, port changed from '18081' to '18082' by 'stats socket command'\n\n", nil},
		{"no need to change the addr, no need to change the port by 'stats socket command'\n\n", nil},
		{"Invalid addr 'localhost' by 'stats socket command'\n\n", ErrUnexpectedResponse},
		{"\n", ErrUnexpectedResponse},
		{"No such server.\n\n", ErrNoSuchServer},
	}
	for _, tt := range tests {
		t.Run(firstLine(tt.response), func(t *testing.T) {
			response := tt.response
			path, received := fakeSocket(t, &response)
			err := New(path, time.Second).SetAddr(context.Background(), "app", "blue",
				netip.MustParseAddr("::1"), 18082)
			if sent := <-received; sent != "set server app/blue addr ::1 port 18082\n" {
				t.Errorf("sent %q", sent)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), firstLine(tt.response)) {
				t.Errorf("error %q does not contain HAProxy's response", err)
			}
		})
	}
}

func TestSetAddrRejectsBeforeSending(t *testing.T) {
	response := "unexpected\n"
	path, received := fakeSocket(t, &response)
	c := New(path, time.Second)
	ctx := context.Background()

	tests := []struct {
		name            string
		backend, server string
		ip              netip.Addr
		port            int
	}{
		{"unset IP", "app", "blue", netip.Addr{}, 80},
		{"IPv6 zone", "app", "blue", netip.MustParseAddr("fe80::1%eth0"), 80},
		{"port 0", "app", "blue", netip.MustParseAddr("127.0.0.1"), 0},
		// HAProxy would silently use 99999 mod 65536 = 34463.
		{"port 99999", "app", "blue", netip.MustParseAddr("127.0.0.1"), 99999},
		{"bad backend", "app x", "blue", netip.MustParseAddr("127.0.0.1"), 80},
		{"bad server", "app", "blue;show", netip.MustParseAddr("127.0.0.1"), 80},
	}
	for _, tt := range tests {
		if err := c.SetAddr(ctx, tt.backend, tt.server, tt.ip, tt.port); err == nil {
			t.Errorf("%s: SetAddr returned no error", tt.name)
		}
	}
	select {
	case line := <-received:
		t.Errorf("a command reached the socket: %q", line)
	default:
	}
}

func TestSetStateResponses(t *testing.T) {
	tests := []struct {
		response string
		wantErr  error
	}{
		{"\n", nil},
		{"'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n", ErrUnexpectedResponse},
		{"Permission denied\n\n", ErrLevelTooLow},
		{"No such backend.\n\n", ErrNoSuchBackend},
	}
	for _, tt := range tests {
		t.Run(firstLine(tt.response), func(t *testing.T) {
			response := tt.response
			path, received := fakeSocket(t, &response)
			err := New(path, time.Second).SetState(context.Background(), "app", "green", AdminDrain)
			if sent := <-received; sent != "set server app/green state drain\n" {
				t.Errorf("sent %q", sent)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSetStateRejectsInvalidState(t *testing.T) {
	response := "\n"
	path, received := fakeSocket(t, &response)
	err := New(path, time.Second).SetState(context.Background(), "app", "green", AdminState("up"))
	if err == nil {
		t.Fatal("SetState with state \"up\" returned no error")
	}
	select {
	case line := <-received:
		t.Errorf("a command reached the socket: %q", line)
	default:
	}
}
