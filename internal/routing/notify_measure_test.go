package routing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// measureEnv names the variable that turns on the escalation measurements:
// they take seconds to minutes and assert little, so the suite skips them.
const measureEnv = "SWITCHBOARD_MEASURE_ESCALATIONS"

// dueBurst makes n customers of the fixture's binding write ten minutes
// ago (their timers are all due), every one of them answered since but
// one in waitEvery (0: none answered), and leaves only the escalation
// timers queued, so what runs after is the timers alone.
func dueBurst(t *testing.T, f *noticeFixture, n, waitEvery int, prefix string) {
	t.Helper()
	for i := range n {
		ct := f.contact(t, fmt.Sprintf("%s%05d", prefix, i))
		f.message(t, ct, store.Inbound, "text", 10*time.Minute)
		if waitEvery > 0 && i%waitEvery != 0 {
			f.message(t, ct, store.Outbound, "text", 0)
		}
	}
	if err := f.db.Gorm.Exec(`DELETE FROM jobs WHERE kind <> ?`, JobEscalate).Error; err != nil {
		t.Fatal(err)
	}
}

// TestMeasureEscalationBurst times a burst of due escalation timers of one
// binding through a real queue: wall time, handler runs, time inside the
// handler (the rest is the queue's claim and finish), CRM calls.
func TestMeasureEscalationBurst(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skip("set " + measureEnv + "=N to measure N due escalations")
	}
	n, err := strconv.Atoi(os.Getenv(measureEnv))
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a count", measureEnv, os.Getenv(measureEnv))
	}
	// SWITCHBOARD_MEASURE_WAIT_EVERY=3 leaves one customer in three
	// unanswered, as a soak does: the other timers have nothing to tell.
	waitEvery, _ := strconv.Atoi(os.Getenv("SWITCHBOARD_MEASURE_WAIT_EVERY"))
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newNoticeFixture(t, db)
		dueBurst(t, f, n, waitEvery, "7917")
		var runs, inHandler atomic.Int64
		q := queue.New(db, queue.Options{Workers: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		q.Handle(JobEscalate, func(ctx context.Context, j *queue.Job) error {
			start := time.Now()
			defer func() { inHandler.Add(int64(time.Since(start))); runs.Add(1) }()
			return f.r.handleEscalate(ctx, j)
		})
		start := time.Now()
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := q.Stop(sctx); err != nil {
				t.Log(err)
			}
		})
		for {
			var left int64
			if err := db.Gorm.Table("jobs").Where("kind = ?", JobEscalate).Count(&left).Error; err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				break
			}
			if time.Since(start) > 10*time.Minute {
				t.Fatalf("%d timers left", left)
			}
			time.Sleep(10 * time.Millisecond)
		}
		wall := time.Since(start)
		told := map[string]int{}
		for _, x := range f.crm.sent() {
			told[x.Dialog.ID]++
		}
		load, _ := os.ReadFile("/proc/loadavg")
		t.Logf("%d due timers: wall %v, %d runs (%.1f/s), handler %v per run, queue %v per run, %d CRM calls, %d dialogs told (%d notices); loadavg %s",
			n, wall.Round(time.Millisecond), runs.Load(), float64(runs.Load())/wall.Seconds(),
			(time.Duration(inHandler.Load()) / time.Duration(max(runs.Load(), 1))).Round(10*time.Microsecond),
			((wall - time.Duration(inHandler.Load())) / time.Duration(max(runs.Load(), 1))).Round(10*time.Microsecond),
			f.crm.calls, len(told), len(f.crm.sent()), load)
	})
}

// TestMeasureEscalationRun times the steps of one timer run, with one due
// dialog listed (a timer firing on time) and with MaxNotices (a backlog).
func TestMeasureEscalationRun(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skip("set " + measureEnv + " to measure")
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newNoticeFixture(t, db)
		dueBurst(t, f, 2*MaxNotices, 0, "7918")
		const rounds = 20
		for _, listed := range []int{1, MaxNotices} {
			var load, followers, cover, list, recips, messages, notify, marks time.Duration
			for range rounds {
				var j jobRow
				if err := db.Gorm.Raw(`SELECT id, kind, queue_key, payload, run_at FROM jobs ORDER BY id LIMIT 1`).Scan(&j).Error; err != nil {
					t.Fatal(err)
				}
				job := &queue.Job{ID: j.ID, Kind: j.Kind, Key: j.QueueKey}
				p := noticeJob{IntegrationID: f.in.ID, ChannelID: f.ch.ID}
				t0 := time.Now()
				w, err := f.r.load(ctx, p)
				if err != nil || w == nil {
					t.Fatal(err)
				}
				t1 := time.Now()
				fs, err := queue.Followers(ctx, db.Gorm, job, escalationFollowers)
				if err != nil {
					t.Fatal(err)
				}
				t2 := time.Now()
				if _, err := coveredTimers(ctx, f.st, p, fs, store.Now(), true); err != nil {
					t.Fatal(err)
				}
				cover += time.Since(t2)
				t2 = time.Now()
				ds, err := f.st.DialogsToEscalate(ctx, f.in.ID, f.ch.ID, store.Now().Add(-5*time.Minute), listed)
				if err != nil || len(ds) != listed {
					t.Fatalf("%d listed, %v", len(ds), err)
				}
				t3 := time.Now()
				if err := f.r.recipients(ctx, w); err != nil {
					t.Fatal(err)
				}
				t4 := time.Now()
				ns := make([]Notice, 0, len(ds))
				for i := range ds {
					ns = append(ns, Notice{Kind: NoticeEscalation, UserIDs: w.access, Dialog: &ds[i], Message: f.r.noticeMessage(ctx, &ds[i])})
				}
				t5 := time.Now()
				if err := w.notifier.Notify(ctx, &Delivery{Integration: w.in, Binding: w.binding, Channel: w.channel}, ns); err != nil {
					t.Fatal(err)
				}
				t6 := time.Now()
				// The marks; this measurement leaves the timers queued.
				err = f.st.Tx(ctx, func(tx *gorm.DB) error {
					for _, n := range ns {
						if _, err := markEscalated(ctx, f.st.InTx(tx), n.Dialog.ID, *n.Dialog.NotifiedSince); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				t7 := time.Now()
				load += t1.Sub(t0)
				followers += t2.Sub(t1)
				list += t3.Sub(t2)
				recips += t4.Sub(t3)
				messages += t5.Sub(t4)
				notify += t6.Sub(t5)
				marks += t7.Sub(t6)
				// Unmark, so every round lists the same.
				if err := db.Gorm.Exec(`UPDATE dialogs SET escalated_since = NULL, escalated_at = NULL`).Error; err != nil {
					t.Fatal(err)
				}
			}
			avg := func(d time.Duration) time.Duration { return (d / rounds).Round(10 * time.Microsecond) }
			la, _ := os.ReadFile("/proc/loadavg")
			t.Logf("a run listing %d: load %v, followers(200) %v, coveredTimers(200) %v, DialogsToEscalate %v, recipients %v, first messages %v, Notify (fake) %v, marks tx %v; loadavg %s",
				listed, avg(load), avg(followers), avg(cover), avg(list), avg(recips), avg(messages), avg(notify), avg(marks), la)
		}
	})
}
