package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// TestAmoCRMRateSharedByInstances (issue 8): two gateway instances on one
// PostgreSQL work one amoCRM account's queue at once; the account answers
// no 429 under amoCRM's documented 7 requests a second (the simulator's
// bucket: 7 a second, 7 at once), and every customer's message is noted.
// Each instance alone keeps 7 a second, so with a limiter per process the
// two would make 14 and drain the account's bucket within a second or two.
func TestAmoCRMRateSharedByInstances(t *testing.T) {
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skip(storetest.EnvURL + " is not set: two instances need one PostgreSQL")
	}
	if testing.Short() {
		t.Skip("sends a few hundred amoCRM calls at 7 a second")
	}
	e := apptest.Start(t, apptest.Options{AmoCRM: true, DatabaseURL: storetest.URL(t),
		Amo: func(o *amosim.Options) { o.Rate, o.Burst = amosim.DefaultRate, int(amosim.DefaultRate) }})
	// A binding's mirror jobs run one at a time (one queue key), so the
	// account gets several channels: their jobs run side by side, on
	// either instance.
	const channels, customers = 8, 48
	id, ws, _ := amoBound(t, e, map[string]any{"mode": "crm"})
	numbers := []string{apptest.PhoneNumberID}
	for k := 1; k < channels; k++ {
		pid := fmt.Sprintf("1099000000%04d", k)
		e.Sim.AddWhatsAppNumber(pid, apptest.WabaID, fmt.Sprintf("7701999%04d", k), apptest.WAToken)
		st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": fmt.Sprintf("Линия %d", k), "workspace_id": ws,
			"phone_number_id": pid, "waba_id": apptest.WabaID, "display_phone": fmt.Sprintf("+7 701 999 %04d", k), "access_token": apptest.WAToken})
		if st != http.StatusCreated {
			t.Fatalf("channel %d: %d %v", k, st, body)
		}
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+body["id"].(string), map[string]any{"mode": "crm"}); st != http.StatusOK {
			t.Fatalf("bind channel %d: %d %v", k, st, v)
		}
		numbers = append(numbers, pid)
	}
	e.WaitIdle()

	// The second instance: the same configuration, database and
	// simulators, a data directory of its own; it serves no HTTP, its
	// queue workers take jobs from the shared table.
	cfg := *e.App.Config
	cfg.DataDir = t.TempDir()
	second, err := app.New(context.Background(), &cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := second.Close(ctx); err != nil {
			t.Logf("second instance: %v", err)
		}
	})

	e.Amo.ResetCounts()
	for c := range customers {
		if _, err := e.Sim.SendWhatsAppText(context.Background(), numbers[c%channels], fmt.Sprintf("7916444%04d", c), fmt.Sprintf("Клиент %d", c),
			fmt.Sprintf("клиент %d: здравствуйте", c)); err != nil {
			t.Fatal(err)
		}
	}
	e.EventuallyWithin(5*time.Minute, "every message noted", func() bool { return len(e.Amo.Notes(amoAccount)) >= customers })
	e.WaitIdle()

	c := e.Amo.Counts(amoAccount)
	var at []time.Time
	for _, r := range e.Amo.Requests() {
		if r.AccountID == amoAccount && strings.HasPrefix(r.Path, "/api/v4/") {
			at = append(at, r.Time)
		}
	}
	slices.SortFunc(at, time.Time.Compare)
	most := 0
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		most = max(most, j-i)
	}
	done := []int{mirrorsDone(t, e.App), mirrorsDone(t, second)}
	t.Logf("amoCRM calls %d (%v), 429s %d, most in one second %d, mirror jobs done per instance %v, over %v",
		c.Requests, c.ByRoute, c.TooMany, most, done, at[len(at)-1].Sub(at[0]).Round(time.Millisecond))
	if c.TooMany != 0 {
		t.Fatalf("the account answered %d requests with 429: two instances together went past its 7 a second (at most %d calls in one second)", c.TooMany, most)
	}
	if n := len(e.Amo.Notes(amoAccount)); n != customers {
		t.Fatalf("%d notes, want one per customer (%d)", n, customers)
	}
	if done[0] == 0 || done[1] == 0 {
		t.Fatalf("one instance did all the mirroring (jobs done %v): nothing shared the limiter", done)
	}
}

// mirrorsDone is how many mirror jobs an instance finished, from its
// metrics.
func mirrorsDone(t *testing.T, a *app.App) int {
	t.Helper()
	mfs, err := a.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "switchboard_queue_jobs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == routing.JobMirror && labels["result"] == "done" {
				n += int(m.GetCounter().GetValue())
			}
		}
	}
	return n
}
