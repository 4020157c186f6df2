package routing

import "time"

// Period is how a batch note or comment names the batch's period on the
// workspace's clock: "30.11.2026 14:00–15:00" within a day (a daily
// batch ends at 00:00 of its own line), both dates otherwise.
func (b *Batch) Period() string {
	loc := b.loc()
	opens, closes := b.Opens.In(loc), b.Closes.In(loc)
	p := opens.Format("02.01.2006 15:04") + "–"
	if sameDay(opens, closes) || closes.Equal(dayAfter(opens)) {
		return p + closes.Format("15:04")
	}
	return p + closes.Format("02.01.2006 15:04")
}

// Stamp is a message's time inside the batch's text: the local time, with
// the date when it is not the period's first day.
func (b *Batch) Stamp(t time.Time) string {
	loc := b.loc()
	lt := t.In(loc)
	if !sameDay(lt, b.Opens.In(loc)) {
		return lt.Format("02.01 15:04")
	}
	return lt.Format("15:04")
}

func (b *Batch) loc() *time.Location {
	if b.Location == nil {
		return time.UTC
	}
	return b.Location
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// dayAfter is the next local midnight after t.
func dayAfter(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, t.Location())
}
