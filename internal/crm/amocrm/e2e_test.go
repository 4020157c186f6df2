package amocrm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/amocrm"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

const (
	clientID     = "6a2d4741-1b2c-4d3e-8f90-92277723dcea"
	clientSecret = "fake_client_secret_ZpWm7VpAUBvpTzADj4CRHjmuvRR4PwVS7EqVxNvpMglIWK8u"
	redirectURI  = "https://integration.example.com/amocrm/oauth"
	channelID    = "f90ba33d-c9d9-44da-b76c-c349b0ecbe41"
	channelSec   = "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189"
	acct         = 30123456
)

// fakeClock is shared by the simulator and the client's limiter: the
// limiter's sleeps move it, so rate tests take no wall-clock time and
// still see exactly the spacing the limiter chose.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Sleep advances the clock to the end of the sleep (never backwards, when
// concurrent sleepers wake in another order).
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return nil
}

type env struct {
	t      *testing.T
	sim    *amosim.Server
	srv    *httptest.Server
	clk    *fakeClock
	client *amocrm.Client
	toks   *amocrm.MemoryTokens
	acct   amocrm.Account
	api    *amocrm.API
	reauth atomic.Int32
}

type envOpts struct {
	limiter amocrm.Limiter // nil: crm.Limiter on the fake clock at 7 rps
	sim     amosim.Options
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	e := &env{t: t, clk: &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}}
	so := o.sim
	so.ClientID, so.ClientSecret, so.RedirectURI = clientID, clientSecret, redirectURI
	so.ChannelID, so.ChannelSecret = channelID, channelSec
	so.Clock = e.clk.Now
	e.sim = amosim.New(so)
	if err := e.sim.AddAccount(amosim.ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.sim)
	t.Cleanup(func() { e.srv.Close(); e.sim.Close() })
	host := strings.TrimPrefix(e.srv.URL, "http://")
	e.sim.SetReferer(host)
	lim := o.limiter
	if lim == nil {
		lim = crm.NewLimiter(crm.LimiterOptions{Rate: amocrm.Rate, Burst: amocrm.Burst, Now: e.clk.Now, Sleep: e.clk.Sleep})
	}
	opts := amocrm.Options{
		OAuth:         amocrm.OAuthConfig{ClientID: clientID, ClientSecret: clientSecret, RedirectURI: redirectURI},
		Limiter:       lim,
		Hosts:         amocrm.HostPolicy{BaseURL: e.srv.URL, AllowPrivate: true},
		OnNeedsReauth: func(context.Context, string, string) { e.reauth.Add(1) },
	}
	// MemoryTokens refreshes through a client; the API client uses it.
	e.toks = amocrm.NewMemoryTokens(amocrm.NewClient(opts))
	opts.Tokens = e.toks
	e.client = amocrm.NewClient(opts)
	e.acct = amocrm.Account{ID: "integration-1", Host: host}
	e.api = e.client.For(e.acct)
	return e
}

// install runs the widget install: the redirect's code exchanged at the
// referer it names.
func (e *env) install() *amocrm.Token {
	e.t.Helper()
	q, err := e.sim.InstallRedirect(acct)
	if err != nil {
		e.t.Fatal(err)
	}
	if q.Get("from_widget") != "1" || q.Get("referer") == "" {
		e.t.Fatalf("redirect %v", q)
	}
	tok, err := e.client.Exchange(context.Background(), q.Get("referer"), q.Get("code"))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	e.toks.Put(e.acct.ID, q.Get("referer"), *tok)
	return tok
}

func TestExchangeAndRefreshRotation(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	code, _ := e.sim.IssueCode(acct)
	tok, err := e.client.Exchange(ctx, e.acct.Host, code)
	if err != nil || tok.RefreshToken == "" || tok.Expiry.IsZero() {
		t.Fatalf("exchange: %+v %v", tok, err)
	}
	// A code is single use.
	_, err = e.client.Exchange(ctx, e.acct.Host, code)
	var ae *amocrm.Error
	if !errors.As(err, &ae) || ae.Hint != amosim.HintCodeRevoked || !amocrm.NeedsReauth(err) {
		t.Errorf("reused code: %v", err)
	}
	// Codes expire after 20 minutes.
	code2, _ := e.sim.IssueCode(acct)
	e.clk.Add(20 * time.Minute)
	if _, err := e.client.Exchange(ctx, e.acct.Host, code2); !errors.As(err, &ae) || ae.Hint != amosim.HintCodeExpired {
		t.Errorf("expired code: %v", err)
	}

	next, err := e.client.Refresh(ctx, e.acct.Host, tok.RefreshToken)
	if err != nil || next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
		t.Fatalf("refresh: %+v %v", next, err)
	}
	// The old refresh token died with the rotation.
	_, err = e.client.Refresh(ctx, e.acct.Host, tok.RefreshToken)
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Hint != "Token has been revoked" || !amocrm.NeedsReauth(err) {
		t.Errorf("reused refresh token: %v", err)
	}
	// Parked, not retried, not dropped.
	if c := amocrm.Classify(err); !errors.Is(c, routing.ErrParked) {
		t.Errorf("refused grant classified %v", c)
	}
	if _, err := e.client.Refresh(ctx, e.acct.Host, next.RefreshToken); err != nil {
		t.Errorf("new refresh token: %v", err)
	}
	if n := e.sim.TokenRequests(); n["refresh_token"] != 2 || n["refused:"+amosim.HintTokenRevoked] != 1 {
		t.Errorf("token requests %v", n)
	}
}

func TestForgedRefererIsNeverCalled(t *testing.T) {
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer evil.Close()
	e := newEnv(t, envOpts{})
	evilHost := strings.TrimPrefix(evil.URL, "http://")
	for _, ref := range []string{evilHost, "evil.example.com", "example.amocrm.ru.evil.com", "127.0.0.1", "localhost"} {
		if _, err := e.client.Exchange(context.Background(), ref, "code"); !errors.Is(err, amocrm.ErrInvalidHost) {
			t.Errorf("referer %q: %v", ref, err)
		}
		bad := e.client.For(amocrm.Account{ID: "x", Host: ref})
		if _, err := bad.Account(context.Background()); !errors.Is(err, amocrm.ErrInvalidHost) {
			t.Errorf("API at %q: %v", ref, err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the forged host was called %d times", hits.Load())
	}
}

func TestRefreshOn401ThenRetryOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	first := e.install()
	ctx := context.Background()
	e.sim.ExpireAccessTokens(acct)
	acc, err := e.api.Account(ctx)
	if err != nil || acc.ID != acct || acc.Timezone != "Europe/Moscow" || acc.AmojoID == "" {
		t.Fatalf("account after expiry: %+v %v", acc, err)
	}
	now, _ := e.toks.Get(e.acct.ID)
	if now.RefreshToken == first.RefreshToken || now.AccessToken == first.AccessToken {
		t.Error("rotated pair not stored")
	}
	c := e.sim.Counts(acct)
	if c.Unauthorized != 1 || c.Requests != 1 || e.sim.TokenRequests()["refresh_token"] != 1 {
		t.Errorf("counts %+v, token requests %v", c, e.sim.TokenRequests())
	}

	// Concurrent 401s refresh once: the others find the new token stored.
	e.sim.ExpireAccessTokens(acct)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.api.Pipelines(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent call: %v", err)
		}
	}
	if n := e.sim.TokenRequests(); n["refresh_token"] != 2 || len(n) != 2 {
		t.Errorf("token requests %v (want exactly one more refresh, none refused)", n)
	}

	// Uninstalled: the refresh is refused, the error parks the work.
	e.sim.RevokeTokens(acct)
	_, err = e.api.Pipelines(ctx)
	if !amocrm.NeedsReauth(err) || !errors.Is(amocrm.Classify(err), routing.ErrParked) {
		t.Errorf("after revoke: %v", err)
	}
}

// lyingTokens hands out a "refreshed" token the account refuses too.
type lyingTokens struct{ tok string }

func (l *lyingTokens) AccessToken(context.Context, string) (string, error) { return l.tok, nil }
func (l *lyingTokens) Refresh(context.Context, string, string) (string, error) {
	return "also-refused", nil
}

func TestFreshTokenRefusedNeedsReauth(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := amocrm.NewClient(amocrm.Options{Tokens: &lyingTokens{tok: "stale"}, Limiter: noLimit{},
		Hosts:         amocrm.HostPolicy{BaseURL: e.srv.URL, AllowPrivate: true},
		OnNeedsReauth: func(context.Context, string, string) { e.reauth.Add(1) }})
	_, err := c.For(e.acct).Account(context.Background())
	if !amocrm.NeedsReauth(err) || !errors.Is(err, amocrm.ErrUnauthorized) || e.reauth.Load() != 1 {
		t.Errorf("fresh token refused: %v (reauth calls %d)", err, e.reauth.Load())
	}
	// Exactly one retry: two requests in all.
	n := 0
	for _, r := range e.sim.Requests() {
		if r.Path == "/api/v4/account" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

type noLimit struct{}

func (noLimit) Wait(context.Context, string) error { return nil }

func TestRateLimitAndPayment(t *testing.T) {
	e := newEnv(t, envOpts{limiter: noLimit{}})
	e.install()
	ctx := context.Background()
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = e.api.Account(ctx)
	}
	if !errors.Is(err, amocrm.ErrRateLimited) || !amocrm.Retryable(err) || amocrm.Permanent(err) {
		t.Fatalf("burst without limiter: %v", err)
	}
	cl := amocrm.Classify(err)
	if cl == err || !errors.Is(cl, amocrm.ErrRateLimited) || errors.Is(cl, routing.ErrParked) {
		t.Errorf("429 classified %v", cl)
	}
	if got := amocrm.Signals().RetryAfter(err); got != amocrm.RateLimitBackoff {
		t.Errorf("429 retry after %v", got)
	}

	e.clk.Add(2 * time.Second)
	e.sim.SetUnpaid(acct, true)
	_, err = e.api.Account(ctx)
	if !errors.Is(err, amocrm.ErrPaymentRequired) || amocrm.Retryable(err) || amocrm.NeedsReauth(err) {
		t.Fatalf("unpaid: %v", err)
	}
	// Parked while unpaid (the probe resumes the work), the 402 kept.
	if cl := amocrm.Classify(err); cl == err || !errors.Is(cl, amocrm.ErrPaymentRequired) || !errors.Is(cl, routing.ErrParked) {
		t.Errorf("402 classified %v", cl)
	}
}

// The client's limiter keeps every request under amoCRM's 7 per second:
// the simulator counts 50 requests and no 429, sequential and concurrent.
func TestClientRespects7rps(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.install()
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if _, err := e.api.Account(ctx); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if c := e.sim.Counts(acct); c.Requests != 50 || c.TooMany != 0 {
		t.Errorf("sequential: %+v", c)
	}
	e.sim.ResetCounts()
	var wg sync.WaitGroup
	for g := 0; g < 5; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := e.api.Account(ctx); err != nil {
					t.Errorf("concurrent request: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if c := e.sim.Counts(acct); c.Requests != 50 || c.TooMany != 0 {
		t.Errorf("concurrent: %+v", c)
	}
}

func TestPagingAnd204(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.install()
	ctx := context.Background()
	for i := 0; i < 120; i++ {
		e.sim.PutContact(acct, amosim.Contact{Name: fmt.Sprintf("Клиент %03d", i)})
	}
	var names []string
	err := e.client.List(ctx, e.acct, "/api/v4/contacts", url.Values{"query": {"Клиент"}, "limit": {"50"}}, "contacts",
		func(raw json.RawMessage) error {
			names = append(names, string(raw))
			return nil
		})
	if err != nil || len(names) != 120 {
		t.Fatalf("paged %d contacts: %v", len(names), err)
	}
	var pages []string
	for _, r := range e.sim.Requests() {
		if r.Path == "/api/v4/contacts" {
			q, _ := url.ParseQuery(r.Query)
			pages = append(pages, q.Get("page"))
		}
	}
	if strings.Join(pages, ",") != ",2,3" {
		t.Errorf("pages requested %q, want first, 2, 3", pages)
	}
	all, err := e.api.SearchContacts(ctx, "Клиент", false)
	if err != nil || len(all) != 120 {
		t.Errorf("search: %d %v", len(all), err)
	}
	none, err := e.api.SearchContacts(ctx, "9990000000", false)
	if err != nil || none != nil {
		t.Errorf("empty search: %v %v", none, err)
	}
	l, found, err := e.api.GetLead(ctx, 999, false)
	if err != nil || found || l != nil {
		t.Errorf("unknown lead: %v %v %v", l, found, err)
	}
}

func TestMessageToLeadFlow(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.install()
	ctx := context.Background()
	// A customer stored with the 8-prefix is found by national digits and
	// confirmed on PHONE; another contact holding the digits elsewhere is
	// filtered out.
	eight := e.sim.PutContact(acct, amosim.Contact{Name: "Старый клиент", Phones: []amosim.Value{{Value: "8 (912) 345-67-89", EnumCode: "MOB"}}})
	e.sim.PutContact(acct, amosim.Contact{Name: "Оплата 9123456789"})
	found, err := e.api.SearchContacts(ctx, "9123456789", true)
	if err != nil || len(found) != 2 {
		t.Fatalf("search: %d %v", len(found), err)
	}
	var match []int
	for _, c := range found {
		for _, p := range c.Values("PHONE") {
			if phone.Same(p, "+79123456789", phone.Default) {
				match = append(match, c.ID)
			}
		}
	}
	if len(match) != 1 || match[0] != eight {
		t.Errorf("confirmed %v, want [%d]", match, eight)
	}
	if n, _ := e.api.SearchContacts(ctx, "79123456789", false); n != nil {
		t.Errorf("full number with 7 found the 8-stored contact: %v", n)
	}

	// A new customer: contact and lead in one call.
	res, err := e.api.CreateLeadsComplex(ctx, []amocrm.LeadInput{{Name: "WhatsApp: +7 916 123-45-67", PipelineID: 7000001, StatusID: 61000003,
		ResponsibleUserID: 9000002, Embedded: &amocrm.LeadEmbed{Tags: []amocrm.Tag{{Name: "WhatsApp"}},
			Contacts: []amocrm.ContactInput{{Name: "Мария", CustomFields: []amocrm.FieldValues{amocrm.Phone("+79161234567", "MOB")}}}},
		RequestID: "conv-1"}})
	if err != nil || len(res) != 1 || res[0].ContactID == nil {
		t.Fatalf("complex: %+v %v", res, err)
	}
	leadID := res[0].ID
	lead, ok, err := e.api.GetLead(ctx, leadID, true)
	if err != nil || !ok || lead.StatusID != 61000003 || lead.ResponsibleUserID != 9000002 || lead.Embedded.Contacts[0].ID != *res[0].ContactID || !lead.Open() {
		t.Fatalf("lead %+v %v", lead, err)
	}
	// First responder: hand the lead over; later close it.
	if err := e.api.UpdateLead(ctx, leadID, amocrm.LeadPatch{ResponsibleUserID: 9000001, TagsToAdd: []amocrm.Tag{{Name: "VIP"}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.api.UpdateLead(ctx, leadID, amocrm.LeadPatch{StatusID: amocrm.StatusWon, PipelineID: 7000001}); err != nil {
		t.Fatal(err)
	}
	sl := e.sim.Leads(acct)[0]
	if sl.ResponsibleUserID != 9000001 || sl.StatusID != 142 || sl.ClosedAt == 0 || strings.Join(sl.Tags, ",") != "WhatsApp,VIP" {
		t.Errorf("lead in the account %+v", sl)
	}
	// A stage of another pipeline is refused and changes nothing.
	err = e.api.UpdateLead(ctx, leadID, amocrm.LeadPatch{StatusID: 61000011})
	if !errors.Is(err, amocrm.ErrValidation) || !amocrm.Permanent(err) {
		t.Errorf("foreign stage: %v", err)
	}
	if e.sim.Leads(acct)[0].StatusID != 142 {
		t.Error("refused patch changed the lead")
	}

	zero := 0
	notes, err := e.api.AddNotes(ctx, "leads", []amocrm.NoteInput{
		{EntityID: leadID, NoteType: amocrm.NoteServiceMessage, CreatedBy: &zero, Params: amocrm.NoteParams{Service: "WhatsApp", Text: "Клиент: привет"}, RequestID: "m1"},
		{EntityID: leadID, NoteType: amocrm.NoteCommon, Params: amocrm.NoteParams{Text: "Менеджер: здравствуйте"}, RequestID: "m2"},
	})
	if err != nil || len(notes) != 2 || notes[1].RequestID != "m2" {
		t.Fatalf("notes %+v %v", notes, err)
	}
	sn := e.sim.Notes(acct)
	if len(sn) != 2 || sn[0].NoteType != "service_message" || sn[0].Params["service"] != "WhatsApp" || sn[1].Text() != "Менеджер: здравствуйте" {
		t.Errorf("notes in the account %+v", sn)
	}
	if _, err := e.api.AddNotes(ctx, "leads", []amocrm.NoteInput{{EntityID: leadID, NoteType: amocrm.NoteCommon, Params: amocrm.NoteParams{Text: strings.Repeat("я", amocrm.NoteTextLimit+1)}}}); err == nil {
		t.Error("over-long note sent")
	}
	parts := amocrm.SplitText(strings.Repeat("строка текста\n", 700), amocrm.NoteTextLimit)
	if len(parts) != 3 || len([]rune(parts[0])) > amocrm.NoteTextLimit || !strings.HasSuffix(parts[0], "\n") || strings.Join(parts, "") != strings.Repeat("строка текста\n", 700) {
		t.Errorf("split into %d parts", len(parts))
	}
	// Service notes without their service are refused per item.
	_, err = e.api.AddNotes(ctx, "leads", []amocrm.NoteInput{{EntityID: leadID, NoteType: amocrm.NoteServiceMessage, Params: amocrm.NoteParams{Text: "x"}, RequestID: "bad"}})
	if fe := amocrm.ItemErrors(err)["bad"]; len(fe) != 1 || fe[0].Path != "params.service" || fe[0].Code != "FieldMissing" {
		t.Errorf("service note without service: %v", err)
	}

	tasks, err := e.api.AddTasks(ctx, []amocrm.TaskInput{{TaskTypeID: 1, Text: "Ответить клиенту", CompleteTill: e.clk.Now().Add(15 * time.Minute).Unix(),
		EntityID: leadID, EntityType: "leads", ResponsibleUserID: 9000002, RequestID: "t1"}})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("tasks %+v %v", tasks, err)
	}
	if st := e.sim.Tasks(acct); len(st) != 1 || st[0].EntityID != leadID || st[0].ResponsibleUserID != 9000002 {
		t.Errorf("tasks in the account %+v", st)
	}
}

// Validation errors come back per item and the refused batch creates
// nothing.
func TestValidationPerItem(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.install()
	_, err := e.api.CreateLeadsComplex(context.Background(), []amocrm.LeadInput{
		{Name: "ok", RequestID: "good"},
		{Name: "bad field", RequestID: "conv-wa-77071234567", Embedded: &amocrm.LeadEmbed{Contacts: []amocrm.ContactInput{{Name: "A",
			CustomFields: []amocrm.FieldValues{{FieldID: 1, Values: []amocrm.FieldValue{{Value: "x"}}}}}}}},
		{Name: "bad user", RequestID: "conv-ig-1", ResponsibleUserID: 1},
		{Name: "bad stage", RequestID: "conv-3", PipelineID: 7000002, StatusID: 61000002},
	})
	items := amocrm.ItemErrors(err)
	if len(items) != 3 || items["good"] != nil ||
		items["conv-wa-77071234567"][0].Path != "_embedded.contacts.0.custom_fields_values.0.field_id" ||
		items["conv-ig-1"][0].Path != "responsible_user_id" || items["conv-3"][0].Path != "status_id" {
		t.Errorf("item errors %+v (%v)", items, err)
	}
	if len(e.sim.Leads(acct)) != 0 || len(e.sim.Contacts(acct)) != 0 {
		t.Error("the refused batch created something")
	}
}

func TestUsersAndPipelines(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.install()
	spec := amosim.ExampleAccount()
	for i := 0; i < 300; i++ { // more than one page of 250
		spec.Users = append(spec.Users, amosim.User{ID: 9100000 + i, Name: "U" + strconv.Itoa(i), IsActive: i%2 == 0})
	}
	if err := e.sim.AddAccount(spec); err != nil {
		t.Fatal(err)
	}
	e.install()
	users, err := e.api.Users(context.Background())
	if err != nil || len(users) != 303 {
		t.Fatalf("users %d %v", len(users), err)
	}
	active := 0
	for _, u := range users {
		if u.Rights.IsActive {
			active++
		}
	}
	if active != 152 {
		t.Errorf("active users %d", active)
	}
	pipes, err := e.api.Pipelines(context.Background())
	if err != nil || len(pipes) != 2 || pipes[1].Statuses[len(pipes[1].Statuses)-1].ID != amocrm.StatusLost {
		t.Errorf("pipelines %+v %v", pipes, err)
	}
}

func TestAmojoAgainstSimulator(t *testing.T) {
	var hookBody []byte
	var hookSig string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<16)
		n, _ := r.Body.Read(buf)
		hookBody, hookSig = buf[:n], r.Header.Get("X-Signature")
	}))
	defer hook.Close()
	e := newEnv(t, envOpts{sim: amosim.Options{HookURL: hook.URL + "/amojo/hook/:scope_id"}})
	e.install()
	ctx := context.Background()
	acc, err := e.api.Account(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aj := &amocrm.AmojoClient{ChannelID: channelID, Secret: channelSec, BaseURL: e.srv.URL, Now: e.clk.Now}
	conn, err := aj.Connect(ctx, acc.AmojoID, "WhatsApp (Example)")
	if err != nil || conn.ScopeID != channelID+"_"+acc.AmojoID {
		t.Fatalf("connect: %+v %v", conn, err)
	}
	sent, err := aj.SendMessage(ctx, conn.ScopeID, amocrm.AmojoMessage{Timestamp: e.clk.Now().Unix(), MsecTimestamp: e.clk.Now().UnixMilli(),
		MsgID: "wamid.1", ConversationID: "wa-79161234567",
		Sender:  amocrm.AmojoSender{ID: "wa-79161234567", Name: "Мария", Profile: &amocrm.AmojoProfile{Phone: "+79161234567"}},
		Message: amocrm.AmojoContent{Type: "text", Text: "Привет"}})
	if err != nil || sent.RefID != "wamid.1" || sent.MsgID == "" {
		t.Fatalf("send: %+v %v", sent, err)
	}
	msgID, d, err := e.sim.ManagerReply(ctx, acct, "wa-79161234567", 9000002, "Здравствуйте!")
	if err != nil || d.Status != 200 {
		t.Fatalf("reply: %v %+v", err, d)
	}
	h, err := amocrm.ParseAmojoHook(channelSec, hookBody, hookSig)
	if err != nil || h.Message.Message.ID != msgID || h.Message.Conversation.ClientID != "wa-79161234567" || h.Message.Message.Text != "Здравствуйте!" {
		t.Fatalf("hook: %+v %v", h, err)
	}
	for _, st := range []int{amocrm.DeliveryDelivered, amocrm.DeliveryRead} {
		if err := aj.DeliveryStatus(ctx, conn.ScopeID, msgID, amocrm.AmojoDeliveryStatus{StatusCode: st}); err != nil {
			t.Fatalf("status %d: %v", st, err)
		}
	}
	chats := e.sim.Chats(acct)
	if len(chats) != 1 || len(chats[0].Messages) != 2 || chats[0].Messages[1].Delivery != amocrm.DeliveryRead {
		t.Errorf("chats %+v", chats)
	}
	// Wrong secret: 403, nothing stored; an unknown message: 404.
	bad := &amocrm.AmojoClient{ChannelID: channelID, Secret: strings.Repeat("0", 40), BaseURL: e.srv.URL, Now: e.clk.Now}
	_, err = bad.SendMessage(ctx, conn.ScopeID, amocrm.AmojoMessage{Timestamp: 1, MsgID: "x", ConversationID: "c2", Sender: amocrm.AmojoSender{ID: "c2"}, Message: amocrm.AmojoContent{Type: "text", Text: "x"}})
	if !errors.Is(err, amocrm.ErrForbidden) {
		t.Errorf("wrong secret: %v", err)
	}
	if len(e.sim.Chats(acct)) != 1 {
		t.Error("refused message stored")
	}
	if err := aj.DeliveryStatus(ctx, conn.ScopeID, "nope", amocrm.AmojoDeliveryStatus{StatusCode: 1}); !errors.Is(err, amocrm.ErrNotFound) {
		t.Errorf("unknown message: %v", err)
	}
	// A clock 20 minutes off makes amojo refuse the signature.
	skewed := &amocrm.AmojoClient{ChannelID: channelID, Secret: channelSec, BaseURL: e.srv.URL,
		Now: func() time.Time { return e.clk.Now().Add(-20 * time.Minute) }}
	if err := skewed.DeliveryStatus(ctx, conn.ScopeID, msgID, amocrm.AmojoDeliveryStatus{StatusCode: 1}); !errors.Is(err, amocrm.ErrForbidden) {
		t.Errorf("stale date: %v", err)
	}
}

func TestLongLivedToken(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok, err := e.sim.LongLivedToken(acct, 24*time.Hour*365)
	if err != nil {
		t.Fatal(err)
	}
	e.toks.Put(e.acct.ID, e.acct.Host, amocrm.Token{AccessToken: tok})
	if _, err := e.api.Account(context.Background()); err != nil {
		t.Fatalf("long-lived token: %v", err)
	}
	e.sim.RevokeTokens(acct)
	if _, err := e.api.Account(context.Background()); !amocrm.NeedsReauth(err) {
		t.Errorf("revoked long-lived token: %v", err)
	}
}
