package runners

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/model"
)

func windowRule(t *testing.T, cron, zone string) (*job, *syncBuffer) {
	t.Helper()
	return ruleJob(t, "DeploymentWindow", model.RuleDeclaration{Configuration: map[string]string{"Cron": cron, "TimeZone": zone}})
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// monday is Monday 10 March 2025, 14:30 UTC: 10:30 in New York (daylight saving time began the
// day before), 23:30 in Tokyo.
var monday = time.Date(2025, 3, 10, 14, 30, 0, 0, time.UTC)

// TestDeploymentWindowInside runs the rule with a fixed clock inside its window, in the time
// zone that puts it there: it succeeds at once.
func TestDeploymentWindowInside(t *testing.T) {
	weekdays := "0 * 9-16 ? * MON-FRI *"
	for _, zone := range []string{"America/New_York", "", "UTC", "EST"} {
		j, _ := windowRule(t, weekdays, zone)
		res := newDeploymentWindow(fixedClock(monday)).run(context.Background(), j)
		wantResult(t, res, true, "is inside the deployment window "+weekdays)
	}
	j, _ := windowRule(t, weekdays, "America/New_York")
	res := newDeploymentWindow(fixedClock(monday)).run(context.Background(), j)
	wantResult(t, res, true, "2025-03-10 10:30:00 EDT", "(America/New_York)")
}

// TestDeploymentWindowOutsideWaits runs the rule with a fixed clock outside its window (the
// same instant, but 23:30 in Tokyo): it waits for the window to open, and fails when the rule
// ends first, saying when the window would have opened.
func TestDeploymentWindowOutsideWaits(t *testing.T) {
	j, log := windowRule(t, "0 * 9-16 ? * MON-FRI *", "Asia/Tokyo")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	d := newDeploymentWindow(fixedClock(monday))
	d.poll = 20 * time.Millisecond
	res := d.run(ctx, j)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("the rule gave up after %s, before the rule ended", waited)
	}
	wantResult(t, res, false, "did not open before the rule ended", "opens next at 2025-03-11 09:00:00 JST")
	if !strings.Contains(log.String(), "is outside the deployment window") || !strings.Contains(log.String(), "waiting until it opens at 2025-03-11 09:00:00 JST") {
		t.Errorf("the log does not say the rule waits:\n%s", log)
	}
}

// TestDeploymentWindowOpensWhileWaiting starts the rule a minute and a half before its window
// opens, on a clock that runs 60 times faster than the real one: the rule waits, then succeeds
// when the window opens.
func TestDeploymentWindowOpensWhileWaiting(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	base, realStart := time.Date(2025, 3, 10, 8, 58, 30, 0, ny), time.Now()
	clock := func() time.Time { return base.Add(60 * time.Since(realStart)) }
	j, _ := windowRule(t, "cron(* 9-16 ? * MON-FRI *)", "America/New_York")
	d := newDeploymentWindow(clock)
	d.poll = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := d.run(ctx, j)
	wantResult(t, res, true, "opened at 2025-03-10 09:00:0")
	if took := time.Since(realStart); took < time.Second {
		t.Errorf("the rule succeeded after %s, before its window opened", took)
	}
}

// TestDeploymentWindowNeverOpens fails at once a rule whose window is in the past.
func TestDeploymentWindowNeverOpens(t *testing.T) {
	j, _ := windowRule(t, "0 * * * * ? 2020", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := newDeploymentWindow(fixedClock(monday)).run(ctx, j)
	wantResult(t, res, false, "does not open again")
	if ctx.Err() != nil {
		t.Error("the rule waited for a window that never opens")
	}
}

// TestDeploymentWindowCron checks which minutes expressions match: the reference's form (seconds
// first, day-of-week 1-7 from Sunday, ? L W #) and EventBridge's cron(…).
func TestDeploymentWindowCron(t *testing.T) {
	at := func(day, hour, minute int) time.Time { return time.Date(2025, 3, day, hour, minute, 0, 0, time.UTC) }
	cases := []struct {
		cron string
		in   []time.Time
		out  []time.Time
	}{
		// Day-of-week numbers count from Sunday = 1.
		{"0 * * ? * 2 *", []time.Time{at(10, 0, 0), at(10, 23, 59)}, []time.Time{at(9, 12, 0), at(11, 12, 0)}},
		{"0 * * ? * 1 *", []time.Time{at(9, 12, 0)}, []time.Time{at(10, 12, 0)}},
		{"0 * * ? * 7,1 *", []time.Time{at(8, 1, 0), at(9, 1, 0)}, []time.Time{at(10, 1, 0)}},
		{"0 * * ? * 2-6 *", []time.Time{at(10, 1, 0), at(14, 1, 0)}, []time.Time{at(8, 1, 0), at(9, 1, 0)}},
		{"0 * * ? * L *", []time.Time{at(8, 1, 0)}, []time.Time{at(7, 1, 0)}},
		{"0 * * ? * 6#2 *", []time.Time{at(14, 1, 0)}, []time.Time{at(7, 1, 0), at(21, 1, 0)}},
		{"0 * * ? * 6L *", []time.Time{at(28, 1, 0)}, []time.Time{at(21, 1, 0)}},
		{"0 * * ? * mon-fri *", []time.Time{at(10, 1, 0)}, []time.Time{at(9, 1, 0)}},
		{"0 * * L * ? *", []time.Time{at(31, 1, 0)}, []time.Time{at(30, 1, 0)}},
		// The 15th is a Saturday: the nearest weekday is Friday the 14th.
		{"0 * * 15W * ? *", []time.Time{at(14, 1, 0)}, []time.Time{at(15, 1, 0)}},
		// Matched to the minute: the reference's example is the first minute of each hour.
		{"0 0 9-17 ? * MON-FRI *", []time.Time{at(10, 9, 0), at(10, 17, 0)}, []time.Time{at(10, 10, 30), at(10, 18, 0), at(8, 10, 0)}},
		{"0 * 9-16 ? * MON-FRI *", []time.Time{at(10, 9, 0), at(10, 16, 59)}, []time.Time{at(10, 17, 0), at(10, 8, 59)}},
		{"0 * 9-16 ? MAR MON-FRI 2025", []time.Time{at(10, 9, 0)}, []time.Time{time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)}},
		{"cron(0/15 9 ? * MON-FRI *)", []time.Time{at(10, 9, 0), at(10, 9, 45)}, []time.Time{at(10, 9, 10), at(10, 10, 0)}},
	}
	for _, c := range cases {
		w, err := parseWindow(c.cron)
		if err != nil {
			t.Errorf("%s: %v", c.cron, err)
			continue
		}
		for _, tm := range c.in {
			if !w.contains(tm.Add(17 * time.Second)) {
				t.Errorf("%s does not contain %s", c.cron, tm.Format(time.RFC1123))
			}
		}
		for _, tm := range c.out {
			if w.contains(tm) {
				t.Errorf("%s contains %s", c.cron, tm.Format(time.RFC1123))
			}
		}
	}
	for cron, says := range map[string]string{
		"0 9 * * *":            "has 5 fields",
		"cron(0 9 * * ?)":      "has 5 fields",
		"0 * * ? * 8 *":        "day-of-week 8 is outside 1-7",
		"0 * * ? * 0 *":        "day-of-week 0 is outside 1-7",
		"0 * * L-3 * ? *":      "L-n",
		"0 * 25 ? * MON-FRI *": "is not valid",
	} {
		if _, err := parseWindow(cron); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want an error saying %q", cron, err, says)
		}
	}
	j, _ := windowRule(t, "", "")
	wantResult(t, newDeploymentWindow(fixedClock(monday)).run(context.Background(), j), false, "has no Cron")
}

// TestDeploymentWindowTimeZones checks the reference's three forms of TimeZone.
func TestDeploymentWindowTimeZones(t *testing.T) {
	for zone, want := range map[string]string{
		"":                 "14:30",
		"UTC":              "14:30",
		"UTC+05:30":        "20:00",
		"UTC-03:00":        "11:30",
		"America/New_York": "10:30",
		"Europe/Berlin":    "15:30",
		"PST":              "07:30", // America/Los_Angeles, on daylight saving time
		"EST":              "09:30", // a fixed UTC-5
		"IST":              "20:00", // Asia/Kolkata
	} {
		loc, err := windowZone(zone)
		if err != nil {
			t.Errorf("%q: %v", zone, err)
			continue
		}
		if got := monday.In(loc).Format("15:04"); got != want {
			t.Errorf("%q: 14:30 UTC is %s there, want %s", zone, got, want)
		}
	}
	for _, zone := range []string{"Mars/Olympus_Mons", "UTC+5:3", "Local", "UTC+25:00"} {
		if _, err := windowZone(zone); err == nil {
			t.Errorf("%q was taken for a time zone", zone)
		}
	}
	j, _ := windowRule(t, "0 * * * * ? *", "Mars/Olympus_Mons")
	wantResult(t, newDeploymentWindow(fixedClock(monday)).run(context.Background(), j), false, `The TimeZone "Mars/Olympus_Mons" is not a time zone`)
}
