package amosim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestDigitalPipeline: an action is saved only with the manifest's
// settings, its required ones filled, on an open stage of the pipeline; a
// lead moved into the stage posts the run form-encoded as amoCRM does; a
// move elsewhere posts nothing; Redeliver posts the same run again.
func TestDigitalPipeline(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.Header.Get("Content-Type")+"|"+string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	s := New(Options{DPWebhookURL: hook.URL, DPSettings: map[string]bool{"text": false, "key": true}})
	defer s.Close()
	if err := s.AddAccount(ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	const acc = 30123456
	for name, c := range map[string]struct {
		pipeline, status int
		settings         map[string]string
	}{
		"undeclared setting": {7000001, 61000003, map[string]string{"key": "k", "color": "red"}},
		"required missing":   {7000001, 61000003, map[string]string{"text": "hi"}},
		"closed stage":       {7000001, StatusWon, map[string]string{"key": "k"}},
		"foreign stage":      {7000001, 61000011, map[string]string{"key": "k"}},
	} {
		if err := s.SetDPAction(acc, c.pipeline, c.status, c.settings); err == nil {
			t.Errorf("%s: saved", name)
		}
	}
	if err := s.SetDPAction(acc, 7000001, 61000003, map[string]string{"key": "k", "text": "Привет"}); err != nil {
		t.Fatal(err)
	}
	lead := s.PutLead(acc, Lead{Name: "L", PipelineID: 7000001, StatusID: 61000002})
	ctx := context.Background()
	if _, err := s.MoveLead(ctx, acc, lead, 61000011); err == nil {
		t.Fatal("moved into another pipeline's stage")
	}
	if d, err := s.MoveLead(ctx, acc, lead, 61000001); err != nil || d != nil {
		t.Fatalf("a stage without the action: %+v %v", d, err)
	}
	d, err := s.MoveLead(ctx, acc, lead, 61000003)
	if err != nil || d == nil || d.Status != http.StatusOK {
		t.Fatalf("run: %+v %v", d, err)
	}
	if l := s.Leads(acc)[0]; l.StatusID != 61000003 {
		t.Fatalf("lead not moved: %+v", l)
	}
	s.Redeliver(ctx, d)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 || bodies[0] != bodies[1] {
		t.Fatalf("posted %q", bodies)
	}
	ct, raw, _ := strings.Cut(bodies[0], "|")
	f, err := url.ParseQuery(raw)
	if ct != "application/x-www-form-urlencoded" || err != nil || f.Get("event[type]") != "14" || f.Get("event[data][element_type]") != "2" ||
		f.Get("event[data][pipeline_id]") != "7000001" || f.Get("account_id") != "30123456" || f.Get("subdomain") != "example" ||
		f.Get("action[settings][widget][settings][key]") != "k" || f.Get("action[settings][widget][settings][text]") != "Привет" {
		t.Fatalf("run %s %v", ct, f)
	}
	if n := len(s.DPDeliveries()); n != 2 {
		t.Fatalf("%d deliveries recorded", n)
	}
}
