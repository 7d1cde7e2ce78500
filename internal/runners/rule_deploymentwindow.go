package runners

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	// The time zone database, so that TimeZone names resolve on hosts without one (minimal
	// containers).
	_ "time/tzdata"

	"github.com/hashicorp/cronexpr"

	"github.com/sluicehq/sluice/internal/executor"
)

// deploymentWindow is the DeploymentWindow rule, after the User Guide's
// rule-reference-DeploymentWindow: Cron says when deployments are allowed, in TimeZone (UTC by
// default). Inside the window the rule succeeds at once; outside it, the rule waits — its job
// sending heartbeats — until the window opens, and then succeeds: the reference's note on a
// DeploymentWindow rule beside a CloudWatchAlarm rule (the alarm is not checked again "after the
// deployment window opens") describes a rule that waits for its window rather than one that
// fails. A window that never opens again fails the rule at once; one that does not open before
// the rule's timeout fails it then.
//
// Cron takes the reference's form: six fields and an optional year, separated by spaces —
// seconds, minutes, hours, day-of-month, month, day-of-week (1-7 or SUN-SAT, 1 being Sunday),
// year — with * , - / everywhere, ? L W in day-of-month and ? L # in day-of-week, as in
// "0 0 9-17 ? * MON-FRI *". EventBridge's cron(minutes hours day-of-month month day-of-week year),
// which the User Guide's stage conditions page points to, is taken too. Times are matched to the
// minute: the seconds field is read but, as the reference's "N/A" for it says, ignored, so a
// window is the set of minutes the other fields match. ("0 0 9-17 ? * MON-FRI *" is therefore the
// first minute of each hour from 9 to 17 on weekdays; "0 * 9-16 ? * MON-FRI *" is every minute
// from 9:00 to 16:59.)
//
// TimeZone takes the reference's three forms: Region/City (America/New_York, any name of the
// IANA time zone database), UTC or UTC+HH:MM / UTC-HH:MM, and the short abbreviations of the
// Java time zone IDs the reference links to (PST, EST, IST, …).
type deploymentWindow struct {
	now func() time.Time
	// poll bounds how long a waiting rule goes without looking at the clock again.
	poll time.Duration
}

func newDeploymentWindow(now func() time.Time) deploymentWindow {
	return deploymentWindow{now: now, poll: 30 * time.Second}
}

func (d deploymentWindow) run(ctx context.Context, j *job) executor.Result {
	config := ruleConfig(j)
	cron := strings.TrimSpace(config["Cron"])
	if cron == "" {
		return failed("The DeploymentWindow rule has no Cron: set it to the expression of the days and times deployments are allowed, such as 0 * 9-16 ? * MON-FRI *")
	}
	window, err := parseWindow(cron)
	if err != nil {
		return failedErr(err)
	}
	loc, err := windowZone(config["TimeZone"])
	if err != nil {
		return failedErr(err)
	}
	where := fmt.Sprintf("the deployment window %s (%s)", cron, loc)
	for waited := false; ; waited = true {
		now := d.now().In(loc)
		if window.contains(now) {
			summary := fmt.Sprintf("The time %s is inside %s", now.Format(windowTimeFormat), where)
			if waited {
				summary = fmt.Sprintf("%s opened at %s", upperFirst(where), now.Format(windowTimeFormat))
			}
			return executor.Result{Succeeded: true, Summary: summary}
		}
		next := window.expr.Next(now)
		if next.IsZero() {
			return failed(fmt.Sprintf("The time %s is outside %s, which does not open again", now.Format(windowTimeFormat), where))
		}
		if !waited {
			j.logf("The time %s is outside %s: waiting until it opens at %s", now.Format(windowTimeFormat), where, next.Format(windowTimeFormat))
		}
		wait := min(next.Sub(now), d.poll)
		select {
		case <-ctx.Done():
			return failed(fmt.Sprintf("%s did not open before the rule ended: it opens next at %s", upperFirst(where), next.Format(windowTimeFormat)))
		case <-time.After(wait):
		}
	}
}

// windowTimeFormat is how the rule's messages write times.
const windowTimeFormat = "2006-01-02 15:04:05 MST"

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// window is a parsed Cron: the minutes it matches.
type window struct {
	// expr matches the first second of each minute of the window.
	expr *cronexpr.Expression
}

// contains reports whether t falls in a minute of the window.
func (w window) contains(t time.Time) bool {
	minute := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, t.Location())
	return w.expr.Next(minute.Add(-time.Second)).Equal(minute)
}

// parseWindow reads a DeploymentWindow Cron: the reference's six or seven fields (seconds first,
// year optional), or EventBridge's cron(…) of six (minutes first, year last).
func parseWindow(cron string) (window, error) {
	body, eventBridge := cron, false
	if strings.HasPrefix(strings.ToLower(cron), "cron(") && strings.HasSuffix(cron, ")") {
		body, eventBridge = cron[len("cron("):len(cron)-1], true
	}
	f := strings.Fields(body)
	var minute, hour, dom, month, dow, year string
	switch {
	case eventBridge && len(f) == 6:
		minute, hour, dom, month, dow, year = f[0], f[1], f[2], f[3], f[4], f[5]
	case !eventBridge && (len(f) == 6 || len(f) == 7):
		minute, hour, dom, month, dow, year = f[1], f[2], f[3], f[4], f[5], "*"
		if len(f) == 7 {
			year = f[6]
		}
	default:
		return window{}, fmt.Errorf("the Cron %q has %d fields: write seconds, minutes, hours, day-of-month, month, day-of-week and optionally year (such as 0 * 9-16 ? * MON-FRI *), or cron(minutes hours day-of-month month day-of-week year)", cron, len(f))
	}
	if strings.Contains(strings.ToUpper(dom), "L-") {
		return window{}, fmt.Errorf("the Cron %q offsets the last day of the month (L-n), which Sluice does not support", cron)
	}
	dow, err := quartzDayOfWeek(dow)
	if err != nil {
		return window{}, fmt.Errorf("the Cron %q is not valid: %w", cron, err)
	}
	// cronexpr's seven fields: seconds (0: one match a minute), minutes, …, day-of-week, year.
	expr, err := cronexpr.Parse(strings.Join([]string{"0", minute, hour, dom, month, dow, year}, " "))
	if err != nil {
		return window{}, fmt.Errorf("the Cron %q is not valid: %w", cron, err)
	}
	return window{expr: expr}, nil
}

// quartzDayOfWeek turns a day-of-week field numbered as the reference and EventBridge number it,
// 1-7 for Sunday to Saturday, into cronexpr's 0-6; names, *, ?, steps and the L and # forms carry
// over, and L alone (Saturday, the last day of the week) becomes 6.
func quartzDayOfWeek(field string) (string, error) {
	day := func(s string) (string, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return s, nil // a name, such as MON, which cronexpr reads as it is
		}
		if n < 1 || n > 7 {
			return "", fmt.Errorf("day-of-week %d is outside 1-7 (SUN-SAT)", n)
		}
		return strconv.Itoa(n - 1), nil
	}
	items := strings.Split(field, ",")
	for i, item := range items {
		base, step, hasStep := strings.Cut(item, "/")
		var out string
		var err error
		switch upper := strings.ToUpper(base); {
		case base == "*" || base == "?":
			out = base
		case upper == "L":
			out = "6"
		case strings.HasSuffix(upper, "L"):
			out, err = day(base[:len(base)-1])
			out += "L"
		case strings.Contains(base, "#"):
			d, nth, _ := strings.Cut(base, "#")
			out, err = day(d)
			out += "#" + nth
		case strings.Contains(base, "-"):
			from, to, _ := strings.Cut(base, "-")
			var a, b string
			if a, err = day(from); err == nil {
				b, err = day(to)
			}
			out = a + "-" + b
		default:
			out, err = day(base)
		}
		if err != nil {
			return "", err
		}
		if hasStep {
			out += "/" + step
		}
		items[i] = out
	}
	return strings.Join(items, ","), nil
}

// javaShortZoneIDs are the abbreviations of Java's time zone IDs (ZoneId.SHORT_IDS), which the
// reference's table of TimeZone values lists, with the zones they stand for.
var javaShortZoneIDs = map[string]string{
	"ACT": "Australia/Darwin", "AET": "Australia/Sydney", "AGT": "America/Argentina/Buenos_Aires",
	"ART": "Africa/Cairo", "AST": "America/Anchorage", "BET": "America/Sao_Paulo", "BST": "Asia/Dhaka",
	"CAT": "Africa/Harare", "CNT": "America/St_Johns", "CST": "America/Chicago", "CTT": "Asia/Shanghai",
	"EAT": "Africa/Addis_Ababa", "ECT": "Europe/Paris", "EST": "-05:00", "HST": "-10:00",
	"IET": "America/Indiana/Indianapolis", "IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "MIT": "Pacific/Apia",
	"MST": "-07:00", "NET": "Asia/Yerevan", "NST": "Pacific/Auckland", "PLT": "Asia/Karachi",
	"PNT": "America/Phoenix", "PRT": "America/Puerto_Rico", "PST": "America/Los_Angeles",
	"SST": "Pacific/Guadalcanal", "VST": "Asia/Ho_Chi_Minh",
}

// windowZone reads a DeploymentWindow TimeZone: empty is UTC.
func windowZone(name string) (*time.Location, error) {
	name = strings.TrimSpace(name)
	upper := strings.ToUpper(name)
	if name == "" || upper == "UTC" || upper == "GMT" || upper == "Z" {
		return time.UTC, nil
	}
	for _, prefix := range []string{"UTC", "GMT"} {
		if offset, ok := strings.CutPrefix(upper, prefix); ok {
			secs, err := parseOffset(offset)
			if err != nil {
				return nil, fmt.Errorf("the TimeZone %q is not valid: write the offset as %s+HH:MM or %s-HH:MM", name, prefix, prefix)
			}
			return time.FixedZone(name, secs), nil
		}
	}
	if id, ok := javaShortZoneIDs[upper]; ok {
		if secs, err := parseOffset(id); err == nil {
			return time.FixedZone(upper, secs), nil
		}
		return time.LoadLocation(id)
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, fmt.Errorf("the TimeZone %q is not a time zone: use a Region/City name such as America/New_York, UTC or UTC+05:30, or an abbreviation such as PST", name)
	}
	return loc, nil
}

// parseOffset reads +HH:MM, -HH:MM, +HH or +HHMM as seconds east of UTC.
func parseOffset(s string) (int, error) {
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return 0, fmt.Errorf("no sign")
	}
	sign, digits := 1, strings.ReplaceAll(s[1:], ":", "")
	if s[0] == '-' {
		sign = -1
	}
	if len(digits) != 2 && len(digits) != 4 {
		return 0, fmt.Errorf("not HH or HHMM")
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("not digits")
		}
	}
	h, _ := strconv.Atoi(digits[:2])
	m := 0
	if len(digits) == 4 {
		m, _ = strconv.Atoi(digits[2:])
	}
	if h > 18 || m > 59 {
		return 0, fmt.Errorf("out of range")
	}
	return sign * (h*3600 + m*60), nil
}
