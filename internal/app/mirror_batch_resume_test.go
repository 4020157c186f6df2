package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// TestMirrorWindowSurvivesResume: Resume (a reinstall, an account paid
// again) re-arms the workspace's parked jobs; an hourly window that has
// not ended keeps its timed close. When the window's end passes (moved
// into the past here, as the queue's clock is the real one), the batch is
// closed and written without a flush or the next window.
func TestMirrorWindowSurvivesResume(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, body)
		}
		setMirror(t, e, integ, ch, routing.MirrorHourly)
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "79160000001", "Анна", "Здравствуйте"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("message stored", func() bool { return len(e.Messages(ch)) == 1 })
		e.WaitIdle()
		var closes time.Time
		if err := e.App.DB.Gorm.Raw(`SELECT closes_at FROM mirror_batches WHERE integration_id = ? AND closed_at IS NULL`, integ).Scan(&closes).Error; err != nil || closes.IsZero() {
			t.Fatalf("open batch: %v %v", closes, err)
		}

		if err := e.App.Router.Resume(ctx, ws); err != nil {
			t.Fatal(err)
		}
		e.WaitIdle()
		if n := len(e.Portal.TimelineComments()); n != 0 {
			t.Fatalf("%d comments before the window's end", n)
		}

		// The window's end passes: the batch and its timer become due
		// (now: after the message, which the window must still hold).
		past := store.Now()
		if err := e.App.DB.Gorm.Exec(`UPDATE mirror_batches SET closes_at = ? WHERE integration_id = ? AND closed_at IS NULL`, past, integ).Error; err != nil {
			t.Fatal(err)
		}
		var moved int64
		res := e.App.DB.Gorm.Exec(`UPDATE jobs SET run_at = ? WHERE kind = ? AND state = 'pending' AND run_at = ?`, past, routing.JobMirrorWindow, closes)
		if res.Error != nil {
			t.Fatal(res.Error)
		}
		moved = res.RowsAffected
		if moved != 1 {
			t.Fatalf("after the window's end: %d timers at its end (want 1)", moved)
		}
		// The timer ends in the commit that queues the batch's send; WaitIdle
		// alone once returned in between (Queue.Busy read its clock before
		// its count, and the send looked not yet due), so the test also
		// waits for the comment itself.
		e.App.Queue.Notify()
		e.Eventually("the batch written after the window's end", func() bool { return len(e.Portal.TimelineComments()) >= 1 })
		e.WaitIdle()
		if n := len(e.Portal.TimelineComments()); n != 1 {
			t.Fatalf("after the window's end: %d comments (want 1)", n)
		}
	})
}
