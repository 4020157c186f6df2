package routing

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/store"
)

func TestWindow(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name, tz, mode, t, opens, closes string
	}{
		{"utc hour", "UTC", MirrorHourly, "2026-11-30T12:17:19Z", "2026-11-30T12:00:00Z", "2026-11-30T13:00:00Z"},
		{"top of the hour opens a window", "UTC", MirrorHourly, "2026-11-30T13:00:00Z", "2026-11-30T13:00:00Z", "2026-11-30T14:00:00Z"},
		{"moscow hour", "Europe/Moscow", MirrorHourly, "2026-11-30T12:17:19Z", "2026-11-30T12:00:00Z", "2026-11-30T13:00:00Z"},
		// +5:30: the local top of the hour is half past in UTC.
		{"kolkata hour", "Asia/Kolkata", MirrorHourly, "2026-11-30T12:17:19Z", "2026-11-30T11:30:00Z", "2026-11-30T12:30:00Z"},
		{"kolkata hour after half past", "Asia/Kolkata", MirrorHourly, "2026-11-30T12:40:00Z", "2026-11-30T12:30:00Z", "2026-11-30T13:30:00Z"},
		{"kathmandu +5:45", "Asia/Kathmandu", MirrorHourly, "2026-11-30T12:17:00Z", "2026-11-30T12:15:00Z", "2026-11-30T13:15:00Z"},
		{"moscow day", "Europe/Moscow", MirrorDaily, "2026-11-30T12:17:19Z", "2026-11-29T21:00:00Z", "2026-11-30T21:00:00Z"},
		{"moscow day just after local midnight", "Europe/Moscow", MirrorDaily, "2026-11-30T21:00:00Z", "2026-11-30T21:00:00Z", "2026-12-01T21:00:00Z"},
		{"moscow day just before local midnight", "Europe/Moscow", MirrorDaily, "2026-11-30T20:59:59Z", "2026-11-29T21:00:00Z", "2026-11-30T21:00:00Z"},
		{"kolkata day", "Asia/Kolkata", MirrorDaily, "2026-11-30T20:00:00Z", "2026-11-30T18:30:00Z", "2026-12-01T18:30:00Z"},
		{"month end", "UTC", MirrorDaily, "2026-12-31T23:59:00Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		// New York springs forward at 02:00 → 03:00 (8 March 2026): the
		// day has 23 hours, 01:xx's window ends at 03:00 local.
		{"spring day has 23 hours", "America/New_York", MirrorDaily, "2026-03-08T15:00:00Z", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"},
		{"spring hour before the gap", "America/New_York", MirrorHourly, "2026-03-08T06:30:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"},
		// ...and falls back at 02:00 → 01:00 (1 November 2026): 01:xx
		// happens twice, as two windows; the day has 25 hours.
		{"first 01:xx", "America/New_York", MirrorHourly, "2026-11-01T05:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"},
		{"second 01:xx", "America/New_York", MirrorHourly, "2026-11-01T06:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"},
		{"autumn day has 25 hours", "America/New_York", MirrorDaily, "2026-11-01T12:00:00Z", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"},
		// Santiago skips midnight (2026-09-06 00:00 → 01:00): the day
		// starts at 01:00 local.
		{"no midnight", "America/Santiago", MirrorDaily, "2026-09-06T15:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"},
		{"day before no midnight", "America/Santiago", MirrorDaily, "2026-09-05T15:00:00Z", "2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z"},
		// Lord Howe moves by half an hour (2026-10-04 02:00 → 02:30).
		{"half hour change", "Australia/Lord_Howe", MirrorHourly, "2026-10-03T15:10:00Z", "2026-10-03T14:30:00Z", "2026-10-03T15:30:00Z"},
		{"after the half hour change", "Australia/Lord_Howe", MirrorHourly, "2026-10-03T15:40:00Z", "2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			loc, err := time.LoadLocation(c.tz)
			if err != nil {
				t.Fatal(err)
			}
			opens, closes := Window(c.mode, at(c.t), loc)
			if !opens.Equal(at(c.opens)) || !closes.Equal(at(c.closes)) {
				t.Fatalf("Window(%s, %s, %s) = %s – %s, want %s – %s", c.mode, c.t, c.tz,
					opens.UTC().Format(time.RFC3339), closes.UTC().Format(time.RFC3339), c.opens, c.closes)
			}
			if !(opens.Compare(at(c.t)) <= 0 && at(c.t).Before(closes)) {
				t.Fatalf("%s is not in its window", c.t)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	if Location("") != time.UTC || Location("Mars/Olympus") != time.UTC || Location("Asia/Kolkata").String() != "Asia/Kolkata" {
		t.Fatal("Location")
	}
}

func TestMirrorModeOf(t *testing.T) {
	for _, c := range []struct{ mode, mirror, want string }{
		{"crm", MirrorHourly, MirrorHourly},
		{"crm", MirrorNone, MirrorNone},
		{"crm", "", MirrorEach},
		// Open Lines: operators answer in the chat, so each message goes.
		{"openlines", MirrorDaily, MirrorEach},
		{"openlines", MirrorNone, MirrorEach},
	} {
		if got := MirrorModeOf(&store.ChannelBinding{Mode: c.mode, Mirror: c.mirror}); got != c.want {
			t.Errorf("%s/%s: %s, want %s", c.mode, c.mirror, got, c.want)
		}
	}
}
