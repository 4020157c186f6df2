package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/store"
)

// TestMirrorCallFigures prints how many Bitrix24 REST calls mirroring 1,000
// customer messages from 50 customers costs in each mirror mode (CRM mode,
// new customers: their contacts and leads are created on the way). The
// messages come in 10 "hours" of 100 (two per customer); in hourly mode
// each hour's window is closed by a flush, in daily mode one flush closes
// the day, in each mode every hour is mirrored before the next begins.
// The each-path is bound by the client's 2 calls a second, so this takes
// about ten minutes: it runs only with MIRROR_FIGURES=1.
func TestMirrorCallFigures(t *testing.T) {
	if os.Getenv("MIRROR_FIGURES") == "" {
		t.Skip("set MIRROR_FIGURES=1 to measure (about ten minutes)")
	}
	const customers, hours, perHour = 50, 10, 100
	for _, mode := range []string{routing.MirrorHourly, routing.MirrorDaily, routing.MirrorEach} {
		t.Run(mode, func(t *testing.T) {
			e := apptest.Start(t, apptest.Options{Bitrix24: true, B24: func(o *b24sim.Options) { o.LeakRate = -1 }})
			integ, ws := e.InstallBitrix24()
			ch := createWAIn(t, e, ws)
			if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
				t.Fatalf("bind: %d %v", st, body)
			}
			setMirror(t, e, integ, ch, mode)
			e.WaitIdle()
			before := e.B24.RESTCalls(apptest.B24MemberID)
			beforeFind := len(e.B24.Calls("crm.duplicate.findbycomm"))
			started := time.Now()
			n := 0
			for h := 0; h < hours; h++ {
				for i := 0; i < perHour; i++ {
					n++
					if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID,
						fmt.Sprintf("7916200%04d", i%customers), fmt.Sprintf("Клиент %d", i%customers), fmt.Sprintf("сообщение %d", n)); err != nil {
						t.Fatal(err)
					}
				}
				if mode == routing.MirrorHourly || (mode == routing.MirrorDaily && h == hours-1) {
					if st, body := e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil); st != http.StatusOK {
						t.Fatalf("flush: %d %v", st, body)
					}
				}
				if mode != routing.MirrorDaily || h == hours-1 {
					want := n
					e.EventuallyWithin(15*time.Minute, "mirrored", func() bool { return mirroredCount(t, e) == want })
				}
			}
			e.WaitIdle()
			calls := e.B24.RESTCalls(apptest.B24MemberID) - before
			finds := len(e.B24.Calls("crm.duplicate.findbycomm")) - beforeFind
			fmt.Printf("mirror=%-6s messages=%d customers=%d REST calls=%d (of which %d contact searches and %d record creations) comments=%d took=%s\n",
				mode, n, customers, calls, finds, finds, len(e.Portal.TimelineComments()), time.Since(started).Round(time.Second))
		})
	}
}

func mirroredCount(t testing.TB, e *apptest.Env) int {
	var n int64
	if err := e.App.Store.DB.Gorm.Model(&store.CRMLink{}).Where("kind = ?", routing.LinkMirrored).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return int(n)
}
