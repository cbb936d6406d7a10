package pipeline

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// activations returns the first n activation times of s after from,
// asking for each one from the previous one as a scheduler does.
func activations(t *testing.T, s Schedule, from time.Time, n int) []time.Time {
	t.Helper()
	spec, err := s.Spec()
	if err != nil {
		t.Fatalf("Spec() of %+v: %v", s, err)
	}
	var out []time.Time
	for next := from; len(out) < n; {
		next = spec.Next(next)
		if next.IsZero() {
			t.Fatalf("%+v has no activation after %v", s, from)
		}
		out = append(out, next)
	}
	return out
}

func utc(s string) time.Time {
	v, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return v
}

// In 2026, Europe/Paris moves from 02:00 CET to 03:00 CEST on March 29
// and from 03:00 CEST back to 02:00 CET on October 25. America/New_York
// moves from 02:00 EST to 03:00 EDT on March 8 and from 02:00 EDT back to
// 01:00 EST on November 1. A wall-clock time inside the skipped hour does
// not happen that day, and one inside the repeated hour happens twice.
func TestScheduleDaylightSaving(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    Schedule
		from time.Time
		want []time.Time // in UTC
	}{
		{
			name: "Paris 02:30 skipped on spring-forward day",
			s:    Schedule{Cron: "30 2 * * *", Timezone: "Europe/Paris"},
			from: time.Date(2026, 3, 28, 12, 0, 0, 0, paris),
			// 2026-03-30 02:30 CEST, then 2026-03-31: nothing on the 29th.
			want: []time.Time{utc("2026-03-30 00:30"), utc("2026-03-31 00:30")},
		},
		{
			name: "Paris 02:30 twice on fall-back day",
			s:    Schedule{Cron: "30 2 * * *", Timezone: "Europe/Paris"},
			from: time.Date(2026, 10, 24, 12, 0, 0, 0, paris),
			// 02:30 CEST, 02:30 CET an hour later, then the next day.
			want: []time.Time{utc("2026-10-25 00:30"), utc("2026-10-25 01:30"), utc("2026-10-26 01:30")},
		},
		{
			name: "Paris 01:30 once on fall-back day",
			s:    Schedule{Cron: "30 1 * * *", Timezone: "Europe/Paris"},
			from: time.Date(2026, 10, 24, 12, 0, 0, 0, paris),
			// Paris repeats 02:00 to 03:00, so 01:30 happens once.
			want: []time.Time{utc("2026-10-24 23:30"), utc("2026-10-26 00:30")},
		},
		{
			name: "Paris 01:30 on spring-forward day",
			s:    Schedule{Cron: "30 1 * * *", Timezone: "Europe/Paris"},
			from: time.Date(2026, 3, 28, 12, 0, 0, 0, paris),
			want: []time.Time{utc("2026-03-29 00:30"), utc("2026-03-29 23:30")},
		},
		{
			name: "New York 02:30 skipped on spring-forward day",
			s:    Schedule{Cron: "30 2 * * *", Timezone: "America/New_York"},
			from: time.Date(2026, 3, 7, 12, 0, 0, 0, newYork),
			want: []time.Time{utc("2026-03-09 06:30"), utc("2026-03-10 06:30")},
		},
		{
			name: "New York 01:30 twice on fall-back day",
			s:    Schedule{Cron: "30 1 * * *", Timezone: "America/New_York"},
			from: time.Date(2026, 10, 31, 12, 0, 0, 0, newYork),
			// 01:30 EDT, 01:30 EST an hour later, then the next day.
			want: []time.Time{utc("2026-11-01 05:30"), utc("2026-11-01 06:30"), utc("2026-11-02 06:30")},
		},
		{
			name: "every 6h ignores the change",
			s:    Schedule{Cron: "@every 6h", Timezone: "Europe/Paris"},
			from: time.Date(2026, 3, 29, 0, 0, 0, 0, paris),
			want: []time.Time{utc("2026-03-29 05:00"), utc("2026-03-29 11:00")},
		},
		{
			name: "daily midnight is not in the changing hour",
			s:    Schedule{Cron: "@daily", Timezone: "Europe/Paris"},
			from: time.Date(2026, 3, 28, 12, 0, 0, 0, paris),
			want: []time.Time{utc("2026-03-28 23:00"), utc("2026-03-29 22:00")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := activations(t, tt.s, tt.from, len(tt.want))
			for i := range tt.want {
				if !got[i].Equal(tt.want[i]) {
					t.Errorf("activation %d = %v (%v), want %v", i, got[i].UTC(), got[i], tt.want[i])
				}
			}
		})
	}
}

// Without a timezone a schedule runs in UTC, not in the machine's zone.
func TestScheduleSpecDefaultsToUTC(t *testing.T) {
	saved := time.Local
	t.Cleanup(func() { time.Local = saved })
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	time.Local = tokyo

	got := activations(t, Schedule{Cron: "0 3 * * *"}, utc("2026-01-01 00:00"), 1)
	if want := utc("2026-01-01 03:00"); !got[0].Equal(want) {
		t.Errorf("next activation = %v, want %v", got[0].UTC(), want)
	}
}

func TestScheduleSpecError(t *testing.T) {
	_, err := Schedule{Cron: "61 * * * *", Timezone: "UTC"}.Spec()
	if err == nil || !strings.Contains(err.Error(), `"61 * * * *"`) {
		t.Errorf("Spec() = %v, want an error naming the spec", err)
	}
}

// Every schedule of the valid files yields a working Spec.
func TestScheduleSpecOfValidFiles(t *testing.T) {
	pipelines, _, err := LoadDir(filepath.Join("testdata", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, p := range pipelines {
		for _, s := range p.On.Schedule {
			found++
			if got := activations(t, s, utc("2026-01-01 00:00"), 2); !got[1].After(got[0]) {
				t.Errorf("%s: %+v activations %v do not advance", p.Name, s, got)
			}
		}
	}
	if found == 0 {
		t.Fatal("no schedule in testdata/valid")
	}
}

func TestValidateCron(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr string // a part of the error, "" when valid
	}{
		{"30 2 * * *", ""},
		{"*/15 9-17 * * 1-5", ""},
		{"0 0 29 2 *", ""},
		{"0 3 * * SUN", ""},
		{"@hourly", ""},
		{"@daily", ""},
		{"@midnight", ""},
		{"@weekly", ""},
		{"@monthly", ""},
		{"@yearly", ""},
		{"@annually", ""},
		{"@every 6h", ""},
		{"@every 1m", ""},
		{"@every 59s", "at least 1m"},
		{"@reboot", "unrecognized descriptor"},
		{"0 30 2 * * *", "expected exactly 5 fields"},
		{"* * * *", "expected exactly 5 fields"},
		{"0 24 * * *", "above maximum"},
		{"0 0 31 4 *", "matches no date"},
		{"TZ=UTC 0 3 * * *", "timezone key"},
	}
	for _, tt := range tests {
		err := validateCron(tt.spec)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("validateCron(%q) = %v, want nil", tt.spec, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("validateCron(%q) = %v, want an error containing %q", tt.spec, err, tt.wantErr)
		}
	}
}

func TestValidateBranchName(t *testing.T) {
	valid := []string{"main", "release/2.x", "feature/a-b_c", "v1.0", "a@b"}
	invalid := []string{"", "@", "-x", "/x", "x/", "x.", "x.lock", "a..b", "a//b", "a@{b", "a/.b", ".a",
		"a b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b", `a\b`, "a\x01b", "refs/heads/main"}
	for _, b := range valid {
		if err := validateBranchName(b); err != nil {
			t.Errorf("validateBranchName(%q) = %v, want nil", b, err)
		}
	}
	for _, b := range invalid {
		if err := validateBranchName(b); err == nil {
			t.Errorf("validateBranchName(%q) = nil, want an error", b)
		}
	}
}
