package schedule

import (
	"strings"
	"testing"
	"time"

	// The daylight-saving tests must not depend on the machine's zoneinfo.
	_ "time/tzdata"

	"github.com/quai-ci/quai/pipeline"
)

func utc(value string) time.Time {
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		panic(err)
	}
	return t
}

// TestScheduleDaylightSaving pins what robfig/cron does on the days clocks change.
// Europe/Paris moves from 02:00 CET to 03:00 CEST on 2026-03-29 and from
// 03:00 CEST back to 02:00 CET on 2026-10-25; America/New_York moves from
// 02:00 EDT back to 01:00 EST on 2026-11-01.
func TestScheduleDaylightSaving(t *testing.T) {
	tests := []struct {
		name string
		spec pipeline.Schedule
		from time.Time
		want []time.Time
	}{
		{
			name: "spring forward skips the missing time",
			spec: pipeline.Schedule{Cron: "30 2 * * *", Timezone: "Europe/Paris"},
			from: utc("2026-03-27T12:00:00Z"),
			want: []time.Time{
				utc("2026-03-28T01:30:00Z"), // 02:30 CET
				utc("2026-03-30T00:30:00Z"), // 02:30 CEST; none on the 29th
			},
		},
		{
			name: "spring forward keeps times outside the gap",
			spec: pipeline.Schedule{Cron: "30 3 * * *", Timezone: "Europe/Paris"},
			from: utc("2026-03-28T12:00:00Z"),
			want: []time.Time{
				utc("2026-03-29T01:30:00Z"), // 03:30 CEST
				utc("2026-03-30T01:30:00Z"),
			},
		},
		{
			name: "fall back runs the repeated time twice",
			spec: pipeline.Schedule{Cron: "30 2 * * *", Timezone: "Europe/Paris"},
			from: utc("2026-10-24T12:00:00Z"),
			want: []time.Time{
				utc("2026-10-25T00:30:00Z"), // 02:30 CEST
				utc("2026-10-25T01:30:00Z"), // 02:30 CET, one hour later
				utc("2026-10-26T01:30:00Z"),
			},
		},
		{
			name: "fall back runs a time before the change once",
			spec: pipeline.Schedule{Cron: "30 1 * * *", Timezone: "Europe/Paris"},
			from: utc("2026-10-24T12:00:00Z"),
			want: []time.Time{
				utc("2026-10-24T23:30:00Z"), // 01:30 CEST on the 25th
				utc("2026-10-26T00:30:00Z"), // 01:30 CET
			},
		},
		{
			name: "fall back in New York runs 01:30 twice",
			spec: pipeline.Schedule{Cron: "30 1 * * *", Timezone: "America/New_York"},
			from: utc("2026-10-31T12:00:00Z"),
			want: []time.Time{
				utc("2026-11-01T05:30:00Z"), // 01:30 EDT
				utc("2026-11-01T06:30:00Z"), // 01:30 EST
				utc("2026-11-02T06:30:00Z"),
			},
		},
		{
			name: "every counts elapsed time across the change",
			spec: pipeline.Schedule{Cron: "@every 6h", Timezone: "Europe/Paris"},
			from: utc("2026-03-28T22:00:00Z"),
			want: []time.Time{
				utc("2026-03-29T04:00:00Z"),
				utc("2026-03-29T10:00:00Z"),
			},
		},
		{
			name: "daily without a zone is UTC midnight",
			spec: pipeline.Schedule{Cron: "@daily"},
			from: utc("2026-03-28T22:00:00Z"),
			want: []time.Time{
				utc("2026-03-29T00:00:00Z"),
				utc("2026-03-30T00:00:00Z"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, _, err := parseSchedule(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			at := tt.from
			for i, want := range tt.want {
				at = sched.Next(at)
				if !at.Equal(want) {
					t.Fatalf("activation %d = %s, want %s", i+1, at.UTC(), want)
				}
			}
		})
	}
}

func TestParseScheduleLocation(t *testing.T) {
	sched, loc, err := parseSchedule(pipeline.Schedule{Cron: "0 9 * * 1-5", Timezone: "Asia/Tokyo"})
	if err != nil {
		t.Fatal(err)
	}
	if loc.String() != "Asia/Tokyo" {
		t.Errorf("location %s, want Asia/Tokyo", loc)
	}
	// Friday 2026-01-02 09:00 in Tokyo is 00:00 UTC.
	got := sched.Next(utc("2026-01-01T12:00:00Z"))
	if want := utc("2026-01-02T00:00:00Z"); !got.Equal(want) {
		t.Errorf("next = %s, want %s", got.UTC(), want)
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct {
		spec pipeline.Schedule
		want string
	}{
		{pipeline.Schedule{Cron: "30 2 * * *", Timezone: "Mars/Olympus"}, `time zone "Mars/Olympus"`},
		{pipeline.Schedule{Cron: "CRON_TZ=UTC 30 2 * * *"}, "timezone key"},
		{pipeline.Schedule{Cron: "TZ=UTC 30 2 * * *"}, "timezone key"},
		{pipeline.Schedule{Cron: "0 30 2 * * *"}, `"0 30 2 * * *"`},
		{pipeline.Schedule{Cron: "61 * * * *"}, `"61 * * * *"`},
		{pipeline.Schedule{Cron: "@fortnightly"}, `"@fortnightly"`},
		{pipeline.Schedule{Cron: "@every 1x"}, `"@every 1x"`},
		{pipeline.Schedule{Cron: ""}, "invalid schedule"},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Cron+" "+tt.spec.Timezone, func(t *testing.T) {
			_, _, err := parseSchedule(tt.spec)
			if err == nil {
				t.Fatal("parseSchedule succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %s", err, tt.want)
			}
		})
	}
}
