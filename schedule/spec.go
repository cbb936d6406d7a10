package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/quai-ci/quai/pipeline"
)

// parseSchedule reads s.Cron with robfig/cron's standard parser (five
// fields, or a descriptor such as "@daily" or "@every 6h") in the time zone
// s.Timezone, UTC when empty. It returns the schedule and its location.
func parseSchedule(s pipeline.Schedule) (cron.Schedule, *time.Location, error) {
	zone := s.Timezone
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, nil, fmt.Errorf("loading time zone %q of schedule %q: %w; use an IANA name "+
			"such as Europe/Paris", zone, s.Cron, err)
	}
	// robfig/cron reads a "CRON_TZ=" or "TZ=" prefix itself, which would
	// give a schedule a second, conflicting time zone.
	if strings.HasPrefix(s.Cron, "TZ=") || strings.HasPrefix(s.Cron, "CRON_TZ=") {
		return nil, nil, fmt.Errorf("invalid schedule %q: give the time zone in the timezone key, "+
			"not in the cron spec", s.Cron)
	}

	sched, err := cron.ParseStandard(s.Cron)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid schedule %q: %w; use five fields "+
			"(minute hour day-of-month month day-of-week) or a descriptor such as @daily", s.Cron, err)
	}
	// ParseStandard gives a five-field spec the process's local zone; the
	// pipeline's zone replaces it. "@every" schedules count elapsed time
	// and have no zone.
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	return sched, loc, nil
}
