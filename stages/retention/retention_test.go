package retention_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/backflow-dev/backflow/stages/retention"
)

func n(v int) *int { return &v }

// daily makes one verified backup a day at 03:00 UTC, from first to last.
func daily(first, last time.Time) []retention.Backup {
	var out []retention.Backup
	for t := first; !t.After(last); t = t.AddDate(0, 0, 1) {
		out = append(out, retention.Backup{Key: t.Format("2006-01-02T15:04Z"), Time: t, Verified: true})
	}
	return out
}

// kept is the decisions' kept keys with their reasons, newest first.
func kept(ds []retention.Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Action == retention.ActionKept {
			out = append(out, d.Key+": "+d.Why())
		}
	}
	return out
}

func check(t *testing.T, got []retention.Decision, want ...string) {
	t.Helper()
	if k := kept(got); strings.Join(k, "\n") != strings.Join(want, "\n") {
		t.Errorf("kept:\n%s\nwant:\n%s", strings.Join(k, "\n"), strings.Join(want, "\n"))
	}
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02T15:04Z", s)
	if err != nil {
		panic(err)
	}
	return t
}

// restic's forget: for the last N periods that have a backup, the newest
// backup of each; a backup kept by several rules names them all.
func TestGrandfatherFatherSon(t *testing.T) {
	backups := daily(at("2026-10-01T03:00Z"), at("2026-11-30T03:00Z"))
	now := at("2026-11-30T12:00Z")
	got := retention.Decide(backups, retention.Rules{KeepDaily: n(3), KeepWeekly: n(2), KeepMonthly: n(2)}, now, time.UTC)
	check(t, got,
		"2026-11-30T03:00Z: newest verified, keepDaily 2026-11-30, keepWeekly 2026-W49, keepMonthly 2026-11",
		"2026-11-29T03:00Z: keepDaily 2026-11-29, keepWeekly 2026-W48",
		"2026-11-28T03:00Z: keepDaily 2026-11-28",
		"2026-10-31T03:00Z: keepMonthly 2026-10",
	)
	if len(got) != len(backups) {
		t.Fatalf("%d decisions for %d backups", len(got), len(backups))
	}
	for _, d := range got {
		if d.Action == retention.ActionDeleted && d.Why() != retention.ReasonNoRule {
			t.Errorf("%s deleted because %q", d.Key, d.Why())
		}
	}

	// Periods without a backup do not count: the last 3 days that have one.
	sparse := []retention.Backup{
		{Key: "a", Time: at("2026-11-30T03:00Z"), Verified: true},
		{Key: "b", Time: at("2026-11-20T03:00Z"), Verified: true},
		{Key: "c", Time: at("2026-11-10T03:00Z"), Verified: true},
		{Key: "d", Time: at("2026-11-10T01:00Z"), Verified: true},
		{Key: "e", Time: at("2026-11-01T03:00Z"), Verified: true},
	}
	check(t, retention.Decide(sparse, retention.Rules{KeepDaily: n(3)}, now, time.UTC),
		"a: newest verified, keepDaily 2026-11-30",
		"b: keepDaily 2026-11-20",
		"c: keepDaily 2026-11-10",
	)
	// keepYearly over a year boundary, keepLast beside it.
	years := daily(at("2024-12-29T03:00Z"), at("2026-01-02T03:00Z"))
	check(t, retention.Decide(years, retention.Rules{KeepLast: n(2), KeepYearly: n(3)}, at("2026-01-02T12:00Z"), time.UTC),
		"2026-01-02T03:00Z: newest verified, keepLast 1, keepYearly 2026",
		"2026-01-01T03:00Z: keepLast 2",
		"2025-12-31T03:00Z: keepYearly 2025",
		"2024-12-31T03:00Z: keepYearly 2024",
	)
}

// days keeps by age alone, whether verified or not; with it and keepLast the
// union is kept.
func TestDaysAndKeepLast(t *testing.T) {
	backups := daily(at("2026-11-01T03:00Z"), at("2026-11-10T03:00Z"))
	got := retention.Decide(backups, retention.Rules{Days: n(3), KeepLast: n(4)}, at("2026-11-10T12:00Z"), time.UTC)
	check(t, got,
		"2026-11-10T03:00Z: newest verified, within 3 days, keepLast 1",
		"2026-11-09T03:00Z: within 3 days, keepLast 2",
		"2026-11-08T03:00Z: within 3 days, keepLast 3",
		"2026-11-07T03:00Z: keepLast 4",
	)
	// keepLast 0 and days 0 keep only the newest verified backup.
	check(t, retention.Decide(backups, retention.Rules{Days: n(0), KeepLast: n(0)}, at("2026-11-10T12:00Z"), time.UTC),
		"2026-11-10T03:00Z: newest verified")
}

// Unverified backups count for no rule but days; one newer than the newest
// verified backup is kept (its verify may run), and without any verified
// backup nothing is deleted.
func TestUnverifiedBackupsAreNotCounted(t *testing.T) {
	backups := daily(at("2026-11-25T03:00Z"), at("2026-11-30T03:00Z"))
	backups[4].Verified = false // 2026-11-29: its verify failed
	now := at("2026-11-30T12:00Z")
	got := retention.Decide(backups, retention.Rules{KeepDaily: n(3)}, now, time.UTC)
	check(t, got,
		"2026-11-30T03:00Z: newest verified, keepDaily 2026-11-30",
		"2026-11-28T03:00Z: keepDaily 2026-11-28",
		"2026-11-27T03:00Z: keepDaily 2026-11-27",
	)
	for _, d := range got {
		if d.Key == "2026-11-29T03:00Z" && (d.Action != retention.ActionDeleted || d.Why() != retention.ReasonNoRuleUnverified) {
			t.Errorf("the unverified backup: %+v", d)
		}
	}
	check(t, retention.Decide(backups, retention.Rules{KeepLast: n(2), Days: n(2)}, now, time.UTC),
		"2026-11-30T03:00Z: newest verified, within 2 days, keepLast 1",
		"2026-11-29T03:00Z: within 2 days",
		"2026-11-28T03:00Z: keepLast 2",
	)

	backups[5].Verified = false // the newest is not verified (yet)
	check(t, retention.Decide(backups, retention.Rules{KeepLast: n(1)}, now, time.UTC),
		"2026-11-30T03:00Z: "+retention.ReasonNewerUnverified,
		"2026-11-29T03:00Z: "+retention.ReasonNewerUnverified,
		"2026-11-28T03:00Z: newest verified, keepLast 1",
	)
	for i := range backups {
		backups[i].Verified = false
	}
	got = retention.Decide(backups, retention.Rules{KeepLast: n(0)}, now, time.UTC)
	if len(kept(got)) != len(backups) || got[0].Why() != retention.ReasonNoVerified {
		t.Errorf("without a verified backup everything is kept: %v", kept(got))
	}
}

// The calendar is the schedule's time zone: Europe/Berlin's clocks go back
// from 03:00 CEST to 02:00 CET on Sunday 2026-10-25, a day of 25 hours.
func TestPeriodsInTheSchedulesTimeZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	evenings := []retention.Backup{
		{Key: "sat-23:30-cest", Time: at("2026-10-24T21:30Z"), Verified: true},
		{Key: "sun-00:30-cest", Time: at("2026-10-24T22:30Z"), Verified: true},
		{Key: "sun-23:30-cet", Time: at("2026-10-25T22:30Z"), Verified: true},
		{Key: "mon-00:30-cet", Time: at("2026-10-25T23:30Z"), Verified: true},
	}
	now := at("2026-10-26T06:00Z")
	check(t, retention.Decide(evenings, retention.Rules{KeepDaily: n(2)}, now, berlin),
		"mon-00:30-cet: newest verified, keepDaily 2026-10-26",
		"sun-23:30-cet: keepDaily 2026-10-25",
	)
	// In UTC the same backups fall on other days: the zone is applied.
	check(t, retention.Decide(evenings, retention.Rules{KeepDaily: n(2)}, now, time.UTC),
		"mon-00:30-cet: newest verified, keepDaily 2026-10-25",
		"sun-00:30-cest: keepDaily 2026-10-24",
	)
	// Monday in Berlin starts ISO week 44; in UTC all four are in week 43.
	check(t, retention.Decide(evenings, retention.Rules{KeepWeekly: n(2)}, now, berlin),
		"mon-00:30-cet: newest verified, keepWeekly 2026-W44",
		"sun-23:30-cet: keepWeekly 2026-W43",
	)
	check(t, retention.Decide(evenings, retention.Rules{KeepWeekly: n(2)}, now, time.UTC),
		"mon-00:30-cet: newest verified, keepWeekly 2026-W43",
	)

	// The hour from 02:00 to 03:00 happens twice, as CEST and as CET: two
	// hours, each with its newest backup.
	night := []retention.Backup{
		{Key: "01:45-cest", Time: at("2026-10-24T23:45Z"), Verified: true},
		{Key: "02:15-cest", Time: at("2026-10-25T00:15Z"), Verified: true},
		{Key: "02:45-cest", Time: at("2026-10-25T00:45Z"), Verified: true},
		{Key: "02:15-cet", Time: at("2026-10-25T01:15Z"), Verified: true},
		{Key: "02:45-cet", Time: at("2026-10-25T01:45Z"), Verified: true},
	}
	check(t, retention.Decide(night, retention.Rules{KeepHourly: n(3)}, now, berlin),
		"02:45-cet: newest verified, keepHourly 2026-10-25 02:00 CET",
		"02:45-cest: keepHourly 2026-10-25 02:00 CEST",
		"01:45-cest: keepHourly 2026-10-25 01:00 CEST",
	)
	// keepDaily sees one day in that night.
	check(t, retention.Decide(night, retention.Rules{KeepDaily: n(2)}, now, berlin),
		"02:45-cet: newest verified, keepDaily 2026-10-25")
}

// Decisions come newest first, with a stable order for backups of the same
// second.
func TestDecisionsAreOrdered(t *testing.T) {
	same := at("2026-11-30T03:00Z")
	got := retention.Decide([]retention.Backup{
		{Key: "a", Time: same, Verified: true}, {Key: "c", Time: same.Add(-time.Hour), Verified: true}, {Key: "b", Time: same, Verified: true},
	}, retention.Rules{KeepLast: n(1)}, same, time.UTC)
	var keys []string
	for _, d := range got {
		keys = append(keys, fmt.Sprintf("%s:%s", d.Key, d.Action))
	}
	if fmt.Sprint(keys) != "[b:kept a:deleted c:deleted]" {
		t.Errorf("order %v", keys)
	}
}
