package pipeline

import (
	"fmt"
	"strings"
	"time"
	// The zone database is built in so that a timezone that validates on
	// one machine validates on every machine, including minimal containers
	// without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// minScheduleInterval is the shortest "@every" interval accepted, so that
// a typo such as "@every 1s" cannot start a run every second.
const minScheduleInterval = time.Minute

// Spec parses the schedule into the activation times it describes, in
// Timezone (UTC when empty). The error is nil for every Schedule that Parse
// or LoadDir returned. At a daylight-saving change, the cron.Schedule of
// robfig/cron v3.0.1 skips a wall-clock time that does not exist that day
// and activates twice at one that exists twice, as TestScheduleDaylightSaving
// shows.
func (s Schedule) Spec() (cron.Schedule, error) {
	tz := s.Timezone
	if tz == "" {
		tz = defaultTimezone
	}
	// Without a zone robfig/cron uses time.Local, the machine's own zone.
	sched, err := cron.ParseStandard("CRON_TZ=" + tz + " " + s.Cron)
	if err != nil {
		return nil, fmt.Errorf("parsing schedule %q in time zone %s: %w", s.Cron, tz, err)
	}
	return sched, nil
}

var scheduleFields = []field[Schedule]{
	{"cron", func(d *decoder, path string, e entry, s *Schedule) {
		s.Cron, _ = d.checkedStr(path, e.value, validateCron)
	}},
	{"timezone", func(d *decoder, path string, e entry, s *Schedule) {
		s.Timezone, _ = d.checkedStr(path, e.value, validateTimezone)
	}},
	{"branch", func(d *decoder, path string, e entry, s *Schedule) {
		s.Branch, _ = d.checkedStr(path, e.value, validateBranchName)
	}},
}

// decodeSchedules decodes on.schedule, a list of mappings.
func decodeSchedules(d *decoder, path string, e entry) []Schedule {
	n := deref(e.value)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list of schedules such as [{cron: \"0 3 * * *\"}], got %s",
			path, describe(n))
		return nil
	}
	schedules := make([]Schedule, 0, len(n.Content))
	for i, item := range n.Content {
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		var s Schedule
		m, ok := decodeFields(d, itemPath, deref(item), item, scheduleFields, &s)
		if ok {
			d.requireKey(itemPath, m, "cron", `"cron: \"0 3 * * *\""`)
		}
		if !m.has("timezone") {
			s.Timezone = defaultTimezone
		}
		schedules = append(schedules, s)
	}
	return schedules
}

// neverBefore is the start of the search for a spec's first activation.
// robfig/cron searches five years ahead, which covers every spec that can
// fire at all, February 29 included.
var neverBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// validateCron checks a five-field spec or a descriptor with the parser
// that schedules it.
func validateCron(spec string) error {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return fmt.Errorf("invalid cron spec %q, set the time zone with the timezone key instead", spec)
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return fmt.Errorf("invalid cron spec %q (%v), expected five fields (minute hour day-of-month "+
			"month day-of-week) such as \"30 2 * * *\", or @hourly, @daily, @weekly, @monthly, @yearly "+
			"or \"@every 6h\"", spec, err)
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok && every.Delay < minScheduleInterval {
		return fmt.Errorf("invalid cron spec %q, @every needs at least 1m between runs", spec)
	}
	if sched.Next(neverBefore).IsZero() {
		return fmt.Errorf("invalid cron spec %q, it matches no date, check the day of month and month", spec)
	}
	return nil
}

// validateTimezone accepts IANA zone names. "Local" is rejected because it
// means whatever zone the machine running quai is set to.
func validateTimezone(tz string) error {
	if tz == "Local" {
		return fmt.Errorf("invalid time zone %q, which depends on the machine quai runs on, "+
			"name a zone such as Europe/Paris or UTC", tz)
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "" {
		return fmt.Errorf("unknown time zone %q, use an IANA name such as Europe/Paris or UTC", tz)
	}
	return nil
}

// validateBranchName checks a branch name with the rules of
// git check-ref-format, which also rule out glob characters.
func validateBranchName(b string) error {
	if strings.HasPrefix(b, "refs/") {
		return fmt.Errorf("invalid branch %q, write the branch name without refs/heads/", b)
	}
	invalid := b == "" || b == "@" ||
		strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock") ||
		strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{") ||
		strings.Contains(b, "/.") || strings.HasPrefix(b, ".") ||
		strings.ContainsAny(b, " ~^:?*[\\\x7f") ||
		strings.ContainsFunc(b, func(r rune) bool { return r < 0x20 })
	if invalid {
		return fmt.Errorf("invalid branch %q, git does not accept it as a branch name "+
			"(see git check-ref-format)", b)
	}
	return nil
}
