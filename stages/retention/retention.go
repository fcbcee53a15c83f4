// Package retention decides which backups of a series a rotation keeps:
// pure, from the backups' times and whether they were verified, so that what
// is deleted can be tested and explained without any storage.
package retention

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Rules are the rules of a Backup's spec.retention; nil for a rule
// that is not set.
type Rules struct {
	// Days keeps every backup younger than this many days (of 24 hours),
	// verified or not.
	Days *int
	// KeepLast keeps this many newest verified backups.
	KeepLast *int
	// KeepHourly, KeepDaily, KeepWeekly, KeepMonthly and KeepYearly keep,
	// for the last N hours, days, ISO weeks, months and years that have a
	// verified backup, the newest verified backup of each, with the calendar
	// of the rotation's time zone.
	KeepHourly, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly *int
}

// IsEmpty says whether no rule is set.
func (r Rules) IsEmpty() bool {
	return r.Days == nil && r.KeepLast == nil && r.KeepHourly == nil && r.KeepDaily == nil &&
		r.KeepWeekly == nil && r.KeepMonthly == nil && r.KeepYearly == nil
}

// Backup is one backup of a series, as retention sees it.
type Backup struct {
	Key string
	// Time is when its dump started.
	Time     time.Time
	Verified bool
}

// Decision is what retention decided for one object of a series, and why.
type Decision struct {
	Key      string    `json:"key"`
	Time     time.Time `json:"time"`
	Verified bool      `json:"verified"`
	// Kind is what the object is: a backup (object and manifest), an orphan
	// (an object without its manifest) or a manifest without its object.
	Kind DecisionKind `json:"kind"`
	// Action is kept or deleted (would be deleted, in a dry run).
	Action  Action   `json:"action"`
	Reasons []string `json:"reasons"`
}

// DecisionKind is what kind of object a decision is about.
type DecisionKind string

// Kinds of decisions.
const (
	KindBackup   DecisionKind = "backup"
	KindOrphan   DecisionKind = "orphan"
	KindManifest DecisionKind = "manifest"
)

// Action is what rotate does with an object.
type Action string

// Actions of a decision.
const (
	ActionKept    Action = "kept"
	ActionDeleted Action = "deleted"
)

// Reasons a backup is kept or deleted, besides those naming a rule and its
// period ("keepDaily 2026-11-30", "keepLast 2", "within 7 days").
const (
	ReasonNewestVerified   = "newest verified"
	ReasonNoVerified       = "the series has no verified backup: nothing is deleted"
	ReasonNewerUnverified  = "newer than the newest verified backup (its verify may still run)"
	ReasonNoRule           = "not in any rule"
	ReasonNoRuleUnverified = "not in any rule (unverified: only days keeps an unverified backup)"
)

// Decide applies retention to the backups of one series at now, with the
// calendar of loc, and returns a decision for every backup, newest first.
//
// The newest verified backup is always kept, and while the series has no
// verified backup, every backup is. Backups newer than the newest verified
// one are kept too: their verify may be running. keepLast and the keep*
// rules count verified backups only (an unverified backup never takes the
// place of a verified one, and a period with only unverified backups is not a
// period "that has a backup"); days keeps every backup younger than it,
// verified or not. Everything else is deleted.
//
// The keep* rules follow restic's (and so K8up's) forget: going from the
// newest backup to the oldest, a rule keeps a backup whenever its period
// differs from the period of the backup the rule kept last, until it kept N.
// Periods are calendar periods of loc: a clock hour (the hour repeated when
// clocks go back counts as two hours, told apart by their zone, CEST and
// CET), a day, an ISO 8601 week (Monday to Sunday), a month and a year.
func Decide(backups []Backup, rules Rules, now time.Time, loc *time.Location) []Decision {
	if loc == nil {
		loc = time.UTC
	}
	sorted := append([]Backup(nil), backups...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Time.Equal(sorted[j].Time) {
			return sorted[i].Time.After(sorted[j].Time)
		}
		return sorted[i].Key > sorted[j].Key
	})
	reasons := make([][]string, len(sorted))
	newestVerified := -1
	for i, b := range sorted {
		if b.Verified {
			newestVerified = i
			break
		}
	}
	for i, b := range sorted {
		switch {
		case newestVerified < 0:
			reasons[i] = append(reasons[i], ReasonNoVerified)
		case i < newestVerified:
			reasons[i] = append(reasons[i], ReasonNewerUnverified)
		case i == newestVerified:
			reasons[i] = append(reasons[i], ReasonNewestVerified)
		}
		if rules.Days != nil && now.Sub(b.Time) < time.Duration(*rules.Days)*24*time.Hour {
			reasons[i] = append(reasons[i], fmt.Sprintf("within %d days", *rules.Days))
		}
	}
	type periodRule struct {
		name   string
		count  *int
		period func(time.Time) string
	}
	periodRules := []periodRule{
		{"keepLast", rules.KeepLast, nil},
		{"keepHourly", rules.KeepHourly, func(t time.Time) string { return t.Format("2006-01-02 15:00 MST") }},
		{"keepDaily", rules.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"keepWeekly", rules.KeepWeekly, func(t time.Time) string {
			year, week := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", year, week)
		}},
		{"keepMonthly", rules.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"keepYearly", rules.KeepYearly, func(t time.Time) string { return t.Format("2006") }},
	}
	for _, rule := range periodRules {
		if rule.count == nil {
			continue
		}
		left, last := *rule.count, ""
		for i, b := range sorted {
			if left <= 0 {
				break
			}
			if !b.Verified {
				continue
			}
			if rule.period == nil {
				reasons[i] = append(reasons[i], fmt.Sprintf("%s %d", rule.name, *rule.count-left+1))
				left--
				continue
			}
			if p := rule.period(b.Time.In(loc)); p != last {
				reasons[i] = append(reasons[i], rule.name+" "+p)
				last = p
				left--
			}
		}
	}
	out := make([]Decision, len(sorted))
	for i, b := range sorted {
		d := Decision{Key: b.Key, Time: b.Time, Verified: b.Verified, Kind: KindBackup, Action: ActionKept, Reasons: reasons[i]}
		if len(d.Reasons) == 0 {
			d.Action, d.Reasons = ActionDeleted, []string{ReasonNoRule}
			if !b.Verified {
				d.Reasons = []string{ReasonNoRuleUnverified}
			}
		}
		out[i] = d
	}
	return out
}

// Why is a decision's reasons in one line.
func (d Decision) Why() string { return strings.Join(d.Reasons, ", ") }
