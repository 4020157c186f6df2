package messaging

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
)

// Group commit: deliveries that arrive while others are being stored share
// one transaction and one commit. On PostgreSQL a commit is a round trip
// and a WAL flush that every webhook paid alone; shared by a group it is
// paid once. Each delivery is still answered only after the commit that
// holds it, so a 200 keeps meaning "stored".
//
// There is no committer goroutine and no timer. The delivery that finds
// fewer than maxLeaders groups under way leads one itself, with whatever
// is pending, on its own goroutine: a lone delivery commits at once, as
// before, and latency does not rise at low load. Deliveries that arrive
// while every leader is busy wait in pending; a leader that finishes hands
// the next group (up to groupCap of them) to the first one waiting, which
// leads it. So groups form only under load, exactly as large as the load
// makes them, and nothing has to be started or stopped with the Service.

// groupCap bounds one group: a bigger transaction holds its row locks
// longer and, when it fails, makes more deliveries run again alone.
const groupCap = 64

// Leaders per engine. SQLite has one writer (and the store one
// connection): a second leader would only wait for the first. On
// PostgreSQL 1, 2 and 4 leaders gave the same rate within the noise of a
// shared 2-core machine (32 concurrent deliveries), the gateway's CPU per
// delivery growing a little with the leaders as groups get smaller; two
// keep the intake moving while one group waits for a slow WAL flush.
const (
	leadersSQLite   = 1
	leadersPostgres = 2
)

// delivery is one Ingest's routed work on its way through a group.
type delivery struct {
	ctx  context.Context
	work []routed
	// What storing did: counters, the metrics to count after the commit,
	// whether a job was enqueued. Reset before every attempt.
	res      IngestResult
	seen     []counted
	enqueued bool
	err      error
	// wake tells the waiting Ingest that it was answered (nil) or that it
	// leads the group it is handed (which includes itself).
	wake chan []*delivery
}

// reset forgets what an attempt that rolled back counted.
func (d *delivery) reset() {
	d.res = IngestResult{}
	d.seen = d.seen[:0]
	d.enqueued = false
	d.err = nil
}

// lockKey orders a group's deliveries so that concurrent groups take the
// contacts' and messages' row locks in one order and cannot deadlock on
// them: channel, then customer; statuses (no customer) then by the
// message they move. A customer's messages are not ordered by their ids
// (a wamid says nothing of order): the stable sort keeps them in the
// order they arrived, which is the order they are stored, mirrored and
// read back as the customer's latest. Their contact's row lock, taken
// first by every group, is what keeps two groups from crossing there.
func (d *delivery) lockKey() (string, string, string) {
	for _, w := range d.work {
		for _, in := range w.env.Messages {
			return w.ch.ID, in.Customer.ExternalID, ""
		}
		for _, st := range w.env.Statuses {
			return w.ch.ID, "", st.ExternalID
		}
	}
	return "", "", ""
}

// committer holds the deliveries waiting for a group.
//
// Everything here rests on one invariant: whenever mu is free, a free
// slot (leaders < maxLeaders) means no delivery is pending. It is what
// lets a delivery that finds a free slot commit at once without looking
// for others, and what lets a waiting delivery sleep until it is handed
// something: only a finishing leader's handOff takes waiters out of
// pending, so a delivery left pending beside a free slot would wait for
// the next leader to finish, and with no more traffic for ever (its
// webhook times out, and Meta retries what was never refused).
//
// It holds because pending and leaders change only under mu, in three
// places:
//   - commit adds its delivery; with a slot free, pending was empty (the
//     invariant), so the delivery takes itself as a group and fills the
//     slot, leaving pending empty; with none free it only waits, which
//     the invariant allows.
//   - handOff, with deliveries pending (so, by the invariant, every slot
//     busy), passes its slot to the next group and leaders stays: those
//     beyond groupCap stay pending beside slots still all busy. With none
//     pending it frees the slot. lead's recovery from a panic goes
//     through handOff too, so a panicking group never keeps nor drops a
//     slot.
//   - a caller that gives up only takes its delivery out of pending.
//
// Each pending delivery is taken off pending exactly once (takeLocked), so
// it is answered once: as the first of a group, by the group itself, which
// it leads; as a later member, by its leader's nil once stored. wake has
// room for that one value, so handOff never waits under mu for a receiver
// (which may be waiting for mu to give up).
type committer struct {
	mu         sync.Mutex
	pending    []*delivery
	leaders    int // groups being stored now
	maxLeaders int
}

// commit stores d in a group and returns once the group's transaction
// has committed or rolled back; d.err tells which.
func (s *Service) commit(d *delivery) error {
	c := &s.committer
	c.mu.Lock()
	c.pending = append(c.pending, d)
	if c.leaders < c.maxLeaders {
		c.leaders++
		group := c.takeLocked()
		c.mu.Unlock()
		s.lead(group)
		return d.err
	}
	c.mu.Unlock()
	select {
	case group := <-d.wake:
		if group != nil {
			s.lead(group)
		}
		return d.err
	case <-d.ctx.Done():
	}
	// The caller gave up. A delivery not yet taken into a group leaves;
	// one already in a group waits for its answer, which comes with the
	// group's commit.
	c.mu.Lock()
	if i := slices.Index(c.pending, d); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
		c.mu.Unlock()
		return d.ctx.Err()
	}
	c.mu.Unlock()
	if group := <-d.wake; group != nil {
		s.lead(group)
	}
	return d.err
}

// takeLocked takes the next group off pending; c.mu is held.
func (c *committer) takeLocked() []*delivery {
	n := min(len(c.pending), groupCap)
	group := slices.Clone(c.pending[:n])
	c.pending = slices.Delete(c.pending, 0, n)
	return group
}

// lead stores a group, hands the next one to a waiting delivery (or
// steps down), then answers the group's members. group[0] is the leader's
// own delivery, answered by its return. A panic while storing (a hook's)
// still answers the others, with an error, and frees the leader's slot
// before it goes on up the leader's stack.
func (s *Service) lead(group []*delivery) {
	defer func() {
		if p := recover(); p != nil {
			for _, d := range group {
				d.err = fmt.Errorf("messaging: storing a group of deliveries panicked: %v", p)
			}
			s.handOff(group)
			panic(p)
		}
	}()
	s.storeGroup(group)
	s.handOff(group)
}

// handOff passes the leader's slot to the next group, if any is waiting,
// and answers the members of the group just stored.
func (s *Service) handOff(group []*delivery) {
	c := &s.committer
	c.mu.Lock()
	if len(c.pending) > 0 {
		next := c.takeLocked()
		next[0].wake <- next
	} else {
		c.leaders--
	}
	c.mu.Unlock()
	for _, d := range group[1:] {
		d.wake <- nil
	}
}

// storeGroup stores the group's deliveries in one transaction. When that
// fails, whether one delivery's statement or the commit, each delivery is
// stored again alone, so only the one that cannot be stored is answered
// with an error and Meta retries just that one.
func (s *Service) storeGroup(group []*delivery) {
	s.metrics.IngestGroup.Observe(float64(len(group)))
	if len(group) == 1 {
		group[0].err = s.storeAlone(group[0])
		return
	}
	ordered := slices.Clone(group)
	slices.SortStableFunc(ordered, func(a, b *delivery) int {
		ac, acu, am := a.lockKey()
		bc, bcu, bm := b.lockKey()
		return cmp.Or(cmp.Compare(ac, bc), cmp.Compare(acu, bcu), cmp.Compare(am, bm))
	})
	// The group's transaction serves every member: one caller going away
	// must not roll back the others' work.
	ctx := context.WithoutCancel(group[0].ctx)
	err := s.store.Tx(ctx, func(tx *gorm.DB) error {
		// Runs of plain deliveries go in two statements per run, runs of
		// status deliveries in a few; the others their own way, in their
		// place in the order. At most one run is open at a time.
		var plain, statuses []*delivery
		flush := func() error {
			if err := s.storePlain(tx, plain); err != nil {
				return err
			}
			if err := s.storeStatuses(tx, statuses); err != nil {
				return err
			}
			plain, statuses = plain[:0], statuses[:0]
			return nil
		}
		for _, d := range ordered {
			d.reset()
			switch {
			case d.plain():
				if len(statuses) > 0 {
					if err := flush(); err != nil {
						return err
					}
				}
				plain = append(plain, d)
			case d.statusesOnly():
				if len(plain) > 0 {
					if err := flush(); err != nil {
						return err
					}
				}
				statuses = append(statuses, d)
			default:
				if err := flush(); err != nil {
					return err
				}
				if err := s.storeDelivery(tx, d); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	if err == nil {
		return
	}
	s.log.Warn("a group of webhook deliveries could not be stored together; storing each alone",
		"deliveries", len(group), "err", err)
	for _, d := range group {
		d.err = s.storeAlone(d)
	}
}

// plain says whether every event of the delivery is a plain message: one
// with an id and without media, a quote, a reaction or a deletion, which
// stores as a contact upsert and a message insert and nothing else before
// the hooks. Statuses and account errors make a delivery not plain.
func (d *delivery) plain() bool {
	n := 0
	for _, w := range d.work {
		if len(w.env.Statuses) > 0 || len(w.env.Errors) > 0 {
			return false
		}
		for i := range w.env.Messages {
			in := &w.env.Messages[i]
			if in.Deleted || in.ExternalID == "" || in.QuotedExternalID != "" || in.Reaction != nil || in.Media != nil {
				return false
			}
			n++
		}
	}
	return n > 0
}

// storePlain stores plain deliveries' messages with one contact upsert
// and one message insert for all of them (store.StoreInboundRows), then
// does for each new message what storeInbound does after its insert.
func (s *Service) storePlain(tx *gorm.DB, ds []*delivery) error {
	if len(ds) == 0 {
		return nil
	}
	type origin struct {
		d  *delivery
		ch *store.Channel
		in *channel.Inbound
	}
	var rows []store.InboundRow
	var from []origin
	for _, d := range ds {
		for _, w := range d.work {
			for i := range w.env.Messages {
				in := &w.env.Messages[i]
				m, inboundAt := inboundMessage(w.ch, in)
				rows = append(rows, store.InboundRow{Channel: w.ch, Customer: in.Customer, InboundAt: inboundAt, Message: m})
				from = append(from, origin{d, w.ch, in})
			}
		}
	}
	if err := store.StoreInboundRows(tx, rows); err != nil {
		return err
	}
	for i := range rows {
		r, o := &rows[i], from[i]
		enqueued, err := s.profileWanted(tx, o.ch, r.Contact)
		if err != nil {
			return err
		}
		if !r.Inserted {
			o.d.res.Duplicates++
			continue
		}
		if err := s.messageStored(tx, o.ch, r.Message); err != nil {
			return err
		}
		o.d.res.Stored++
		o.d.enqueued = o.d.enqueued || enqueued
		dir := store.Inbound
		if o.in.Echo {
			dir = store.Outbound
		}
		o.d.seen = append(o.d.seen, counted{o.ch.Type, dir, "received"})
	}
	return nil
}

// statusesOnly says whether the delivery carries statuses (and perhaps
// account errors) and no message: what storeStatuses stores.
func (d *delivery) statusesOnly() bool {
	n := 0
	for _, w := range d.work {
		if len(w.env.Messages) > 0 {
			return false
		}
		n += len(w.env.Statuses)
	}
	return n > 0
}

// storeStatuses applies the statuses of status deliveries with one
// store.ApplyStatuses, then does for each what storeDelivery does after
// its ApplyStatus, in the same order: count it, and for one that moved
// its message count the metric and call the hooks with the message as
// ApplyStatus would have returned it (statusesChanged: routing's hook
// takes a channel's changes in one call).
//
// Such deliveries sort together (lockKey: no customer, then by message),
// ahead of their channel's customer messages, so a run of them is
// applied at the place the first of them had in the group, and nothing
// between them in the order touches their messages.
func (s *Service) storeStatuses(tx *gorm.DB, ds []*delivery) error {
	if len(ds) == 0 {
		return nil
	}
	type origin struct {
		d  *delivery
		ch *store.Channel
	}
	var rows []store.StatusRow
	var from []origin
	for _, d := range ds {
		for _, w := range d.work {
			for _, st := range w.env.Statuses {
				rows = append(rows, store.StatusRow{ChannelID: w.ch.ID, Update: st})
				from = append(from, origin{d, w.ch})
			}
		}
	}
	if err := store.ApplyStatuses(tx, rows); err != nil {
		return err
	}
	var chs []*store.Channel
	var ms []*store.Message
	for i := range rows {
		r, o := &rows[i], from[i]
		o.d.res.Statuses++
		if r.Result != store.StatusApplied {
			continue
		}
		o.d.seen = append(o.d.seen, counted{o.ch.Type, store.Outbound, string(r.Update.Status)})
		chs, ms = append(chs, o.ch), append(ms, r.Message)
	}
	if err := s.statusesChanged(tx, chs, ms); err != nil {
		return err
	}
	for _, d := range ds {
		for _, w := range d.work {
			for _, e := range w.env.Errors {
				d.res.Errors++
				s.log.Warn("messenger reported an account error", "channel_id", w.ch.ID, "code", e.Code, "title", e.Title, "details", e.Details)
			}
		}
	}
	return nil
}

// storeAlone stores one delivery in its own transaction.
func (s *Service) storeAlone(d *delivery) error {
	return s.store.Tx(d.ctx, func(tx *gorm.DB) error {
		d.reset()
		return s.storeDelivery(tx, d)
	})
}
