package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/metasim"
)

// fakeGateway verifies signatures like the real gateway and records what
// the load command sent.
type fakeGateway struct {
	mu        sync.Mutex
	posts     int
	wamids    map[string]int
	statuses  map[string][]string // wamid -> its statuses, as they came
	senders   map[string]bool
	phoneIDs  map[string]bool
	badSig    int
	channelIn map[string]string
}

func (g *fakeGateway) handler(t *testing.T, secret string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/meta", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		defer g.mu.Unlock()
		g.posts++
		if r.Header.Get(metasim.SignatureHeader) != metasim.SignBody(secret, body) {
			g.badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var h struct {
			Entry []struct {
				Changes []struct {
					Value struct {
						Metadata struct {
							PhoneNumberID string `json:"phone_number_id"`
						} `json:"metadata"`
						Messages []struct {
							From string `json:"from"`
							ID   string `json:"id"`
						} `json:"messages"`
						Statuses []struct {
							ID     string `json:"id"`
							Status string `json:"status"`
						} `json:"statuses"`
					} `json:"value"`
				} `json:"changes"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(body, &h); err != nil {
			t.Errorf("bad payload: %v", err)
			return
		}
		v := h.Entry[0].Changes[0].Value
		g.phoneIDs[v.Metadata.PhoneNumberID] = true
		for _, st := range v.Statuses {
			g.statuses[st.ID] = append(g.statuses[st.ID], st.Status)
		}
		if len(v.Messages) == 0 {
			return
		}
		g.wamids[v.Messages[0].ID]++
		g.senders[v.Messages[0].From] = true
	})
	mux.HandleFunc("POST /api/v1/channels", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer admin-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewDecoder(r.Body).Decode(&g.channelIn)
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"ch_123","type":"whatsapp"}`))
	})
	return mux
}

func newFakeGateway(t *testing.T, secret string) (*fakeGateway, *httptest.Server) {
	g := &fakeGateway{wamids: map[string]int{}, statuses: map[string][]string{}, senders: map[string]bool{}, phoneIDs: map[string]bool{}}
	srv := httptest.NewServer(g.handler(t, secret))
	t.Cleanup(srv.Close)
	return g, srv
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestLoadRun(t *testing.T) {
	g, srv := newFakeGateway(t, "load-app-secret")
	cfg, err := parseFlags([]string{"-url", srv.URL, "-n", "400", "-c", "8", "-duplicates", "0.1", "-senders", "150", "-admin-token", "admin-secret"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out, quiet()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("report:\n%s", out.String())
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.posts != 400 || g.badSig != 0 {
		t.Errorf("posts %d, bad signatures %d", g.posts, g.badSig)
	}
	if len(g.wamids) != 360 {
		t.Errorf("%d unique wamids, want 360", len(g.wamids))
	}
	dups := 0
	for _, n := range g.wamids {
		dups += n - 1
	}
	if dups != 40 {
		t.Errorf("%d duplicates, want 40", dups)
	}
	if len(g.senders) != 150 {
		t.Errorf("%d senders, want 150", len(g.senders))
	}
	want := g.channelIn["phone_number_id"]
	if g.channelIn["type"] != "whatsapp" || g.channelIn["access_token"] != "sandbox-token" || g.channelIn["waba_id"] != "104857392017465" || g.channelIn["display_phone"] != "+77010000000" || len(want) != 15 {
		t.Errorf("channel request %v", g.channelIn)
	}
	if len(g.phoneIDs) != 1 || !g.phoneIDs[want] {
		t.Errorf("webhooks went to %v, want the created channel's %s", g.phoneIDs, want)
	}
	for _, s := range []string{"ch_123", "throughput", "p50", "p99", "max", "200: 400", "360 unique"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}

// -statuses sends that fraction as status webhooks for the run's own
// messages: each message in turn gets sent, delivered and read, each
// status after its message in the send order.
func TestLoadStatuses(t *testing.T) {
	g, srv := newFakeGateway(t, "load-app-secret")
	cfg, err := parseFlags([]string{"-url", srv.URL, "-n", "400", "-c", "8", "-duplicates", "0.1", "-statuses", "0.3", "-senders", "150"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out, quiet()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "240 unique wamids + 40 verbatim duplicates + 120 statuses") {
		t.Errorf("report:\n%s", out.String())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.posts != 400 || len(g.wamids) != 240 || len(g.statuses) != 40 {
		t.Fatalf("posts %d, wamids %d, wamids with statuses %d; want 400, 240, 40", g.posts, len(g.wamids), len(g.statuses))
	}
	for id, sts := range g.statuses {
		slices.Sort(sts)
		if g.wamids[id] == 0 || !slices.Equal(sts, []string{"delivered", "read", "sent"}) {
			t.Errorf("%s: statuses %q for a message sent %d times", id, sts, g.wamids[id])
		}
	}

	p, err := buildPlan(cfg, channel{phoneNumberID: "1", wabaID: "2"}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, payload := range p.sends {
		var h struct {
			Entry []struct {
				Changes []struct {
					Value struct {
						Messages []struct{ ID string } `json:"messages"`
						Statuses []struct{ ID string } `json:"statuses"`
					} `json:"value"`
				} `json:"changes"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(payload, &h); err != nil {
			t.Fatal(err)
		}
		v := h.Entry[0].Changes[0].Value
		for _, m := range v.Messages {
			seen[m.ID] = true
		}
		for _, st := range v.Statuses {
			if !seen[st.ID] {
				t.Fatalf("send %d: a status for %s before its message", i, st.ID)
			}
		}
	}
}

func TestLoadWrongSecretFails(t *testing.T) {
	_, srv := newFakeGateway(t, "gateway-secret")
	cfg, _ := parseFlags([]string{"-url", srv.URL, "-n", "20", "-c", "4", "-app-secret", "other"})
	var out bytes.Buffer
	err := run(context.Background(), cfg, &out, quiet())
	if err == nil || !strings.Contains(out.String(), "401: 20") || !strings.Contains(out.String(), "SWITCHBOARD_META_APP_SECRET") {
		t.Errorf("err %v\n%s", err, out.String())
	}
}

func TestLoadRefusesRemote(t *testing.T) {
	for _, u := range []string{"http://example.com", "http://10.0.0.1:8080", "ftp://127.0.0.1"} {
		cfg, _ := parseFlags([]string{"-url", u})
		if err := run(context.Background(), cfg, io.Discard, quiet()); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "127.1.2.3"} {
		if !isLoopback(h) {
			t.Errorf("%s not loopback", h)
		}
	}
}

func TestLoadTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	cfg, _ := parseFlags([]string{"-url", slow.URL, "-n", "1000", "-c", "2", "-timeout", "200ms"})
	start := time.Now()
	err := run(context.Background(), cfg, io.Discard, quiet())
	if err == nil || !strings.Contains(err.Error(), "timeout") || time.Since(start) > 3*time.Second {
		t.Errorf("err %v after %s", err, time.Since(start))
	}
}

func TestFlagValidation(t *testing.T) {
	for _, args := range [][]string{{"-n", "0"}, {"-c", "0"}, {"-duplicates", "1"}, {"-statuses", "0.95"}, {"-statuses", "0.5", "-duplicates", "0.5"}, {"-timeout", "0s"}, {"-n", "2000000"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 90: 90 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%g = %s, want %s", p, got, want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}

// The gateway connects a number once; a second run uses the channel that
// is there, and a refusal (the token not confirmed) stops the run.
func TestCreateChannelAnswers(t *testing.T) {
	for _, c := range []struct {
		status int
		ok     bool
	}{{http.StatusConflict, true}, {http.StatusUnprocessableEntity, false}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			w.Write([]byte(`{"error":{"code":"x","message":"y"}}`))
		}))
		want := channel{phoneNumberID: "109283746501928", wabaID: "104857392017465"}
		got, err := createChannel(context.Background(), srv.Client(), srv.URL, "admin", "sandbox-token", want)
		srv.Close()
		if (err == nil) != c.ok || (c.ok && got != want) {
			t.Errorf("HTTP %d: %+v %v", c.status, got, err)
		}
	}
}
