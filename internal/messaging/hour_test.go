package messaging

import (
	"testing"
	"time"
)

// The hour starts at the top of the hour on the workspace's clock, which
// is not UTC's top of the hour in every zone, and is one instant even in
// the hour a DST change repeats.
func TestHourStart(t *testing.T) {
	zone := func(name string) *time.Location {
		l, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		zone, at, want string
	}{
		{"UTC", "2026-11-30T10:59:59.999Z", "2026-11-30T10:00:00Z"},
		{"Asia/Almaty", "2026-11-30T10:20:00Z", "2026-11-30T10:00:00Z"},
		{"Asia/Kolkata", "2026-11-30T10:20:00Z", "2026-11-30T09:30:00Z"},   // +05:30
		{"Asia/Kolkata", "2026-11-30T10:40:00Z", "2026-11-30T10:30:00Z"},   // +05:30
		{"Asia/Kathmandu", "2026-11-30T10:20:00Z", "2026-11-30T10:15:00Z"}, // +05:45
		// New York repeats 01:00–02:00 on 2026-11-01: 05:30Z is 01:30 EDT,
		// 06:30Z is 01:30 EST; each belongs to its own hour.
		{"America/New_York", "2026-11-01T05:30:00Z", "2026-11-01T05:00:00Z"},
		{"America/New_York", "2026-11-01T06:30:00Z", "2026-11-01T06:00:00Z"},
	} {
		got := hourStart(utc(c.at), zone(c.zone))
		if !got.Equal(utc(c.want)) || got.Location().String() != c.zone {
			t.Errorf("%s at %s: hour starts %s, want %s in that zone", c.zone, c.at, got, c.want)
		}
	}
}
