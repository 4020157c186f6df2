package bitrix24

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
)

func TestCallRequestShape(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
		writeJSON(w, 200, string(fixture(t, "crm-deal-list-response.json")))
	})
	params := map[string]any{"filter": map[string]any{"CONTACT_ID": 275}, "order": map[string]any{"ID": "DESC"}}
	resp, err := env.client.CallResult(context.Background(), testIntegration, "crm.deal.list", params)
	if err != nil {
		t.Fatal(err)
	}
	calls := env.portal.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d portal calls, want 1", len(calls))
	}
	c := calls[0]
	if c.Method != "crm.deal.list" || c.Token != "valid-access" || len(c.Query) != 1 {
		t.Errorf("call = %s auth=%s query=%v", c.Method, c.Token, c.Query)
	}
	var got map[string]any
	if err := json.Unmarshal(c.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"filter": map[string]any{"CONTACT_ID": float64(275)}, "order": map[string]any{"ID": "DESC"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body = %v, want %v", got, want)
	}
	if resp.Total != 2 || resp.Next != 0 || resp.Time.OperatingResetAt == 0 {
		t.Errorf("total=%d next=%d time=%+v", resp.Total, resp.Next, resp.Time)
	}
	var deals []struct{ ID, STAGE_ID string }
	if err := json.Unmarshal(resp.Result, &deals); err != nil || len(deals) != 2 || deals[0].ID != "412" {
		t.Errorf("deals = %+v, %v", deals, err)
	}
}

func TestCallRejectsBadMethodNames(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	for _, m := range []string{"", "../admin", "crm.deal.list?x=1", "crm/deal", "crm..deal", "a b"} {
		if err := env.call(context.Background(), m); err == nil {
			t.Errorf("method %q accepted", m)
		}
	}
	if n := len(env.portal.Calls()); n != 0 {
		t.Errorf("%d portal calls", n)
	}
}

func TestCallPortalErrors(t *testing.T) {
	tests := []struct {
		fixture     string
		status      int
		code        string
		rateLimited bool
	}{
		{"error-not-active-line.json", 400, "NOT_ACTIVE_LINE", false},
		{"error-wrong-auth-type.json", 403, "WRONG_AUTH_TYPE", false},
		{"error-query-limit-exceeded.json", 503, "QUERY_LIMIT_EXCEEDED", true},
		{"error-operation-time-limit.json", 429, "OPERATION_TIME_LIMIT", true},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
				writeJSON(w, tt.status, string(fixture(t, tt.fixture)))
			})
			err := env.call(context.Background(), "imconnector.send.messages")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if ae.HTTPStatus != tt.status || ae.Code != tt.code {
				t.Errorf("got %d %s", ae.HTTPStatus, ae.Code)
			}
			if IsRateLimited(err) != tt.rateLimited || IsReauthRequired(err) {
				t.Errorf("rateLimited=%v reauth=%v", IsRateLimited(err), IsReauthRequired(err))
			}
			if !strings.Contains(err.Error(), "imconnector.send.messages") {
				t.Errorf("error does not name the method: %v", err)
			}
			if env.oauth.refreshes.Load() != 0 {
				t.Error("refreshed on a non-token error")
			}
		})
	}
}

func TestCallRegisterQuirk(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
		switch c.Method {
		case "imconnector.register":
			writeJSON(w, 200, `{"result":{"result":false,"error":"NO_PLACEMENT_HANDLER","error_description":"No placement handler"}}`)
		case "imconnector.unregister":
			writeJSON(w, 200, `{"result":{"result":false}}`)
		default:
			writeJSON(w, 200, string(fixture(t, "imconnector-register-response.json")))
		}
	})
	err := env.call(context.Background(), "imconnector.register")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "NO_PLACEMENT_HANDLER" || ae.HTTPStatus != 200 {
		t.Errorf("register: err = %v", err)
	}
	if err := env.call(context.Background(), "imconnector.unregister"); !errors.As(err, &ae) {
		t.Errorf("unregister result=false: err = %v", err)
	}
	var out struct{ Result bool }
	if err := env.client.Call(context.Background(), testIntegration, "imconnector.activate", nil, &out); err != nil || !out.Result {
		t.Errorf("success shape: %+v, %v", out, err)
	}
}

func TestCallErrorBodyOn200(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
		writeJSON(w, 200, `{"error":"ERROR_CORE","error_description":"Internal error"}`)
	})
	err := env.call(context.Background(), "crm.lead.add")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "ERROR_CORE" {
		t.Errorf("err = %v", err)
	}
}

func TestCallExpiredTokenRefreshesOnce(t *testing.T) {
	for _, code := range []string{"expired", "invalid"} {
		t.Run(code, func(t *testing.T) {
			env := newTestEnv(t, "stale-access", "rt-0", "not-yet-issued", nil)
			before, _ := env.store.Credentials(context.Background(), testIntegration)
			if code == "invalid" {
				env.portal.handle = func(w http.ResponseWriter, c portalCall) {
					if c.Token != env.oauth.validAccess() {
						writeJSON(w, 401, string(fixture(t, "error-invalid-token.json")))
						return
					}
					writeJSON(w, 200, `{"result": 1}`)
				}
			}
			if err := env.call(context.Background(), "user.current"); err != nil {
				t.Fatal(err)
			}
			if n := env.oauth.refreshes.Load(); n != 1 {
				t.Errorf("%d refreshes, want 1", n)
			}
			calls := env.portal.Calls()
			if len(calls) != 2 || calls[0].Token != "stale-access" || calls[1].Token != "fresh-access-1" {
				t.Errorf("portal calls = %+v", calls)
			}
			creds, err := env.store.Credentials(context.Background(), testIntegration)
			if err != nil {
				t.Fatal(err)
			}
			if creds.AccessToken != "fresh-access-1" || creds.RefreshToken != "fresh-rt-1" || creds.Version <= before.Version {
				t.Errorf("stored = %+v", creds)
			}
			if d := time.Until(creds.Expiry); d < 50*time.Minute || d > 61*time.Minute {
				t.Errorf("expiry in %v", d)
			}
		})
	}
}

func TestCallConcurrentExpiryRefreshesOnce(t *testing.T) {
	const n = 20
	var arrived atomic.Int32
	allIn := make(chan struct{})
	env := newTestEnv(t, "stale-access", "rt-0", "not-yet-issued", nil)
	env.portal.handle = func(w http.ResponseWriter, c portalCall) {
		if c.Token == "stale-access" {
			// Hold every stale call until all of them have arrived, so all
			// twenty see expired_token at once.
			if arrived.Add(1) == n {
				close(allIn)
			}
			select {
			case <-allIn:
			case <-time.After(5 * time.Second):
				t.Error("not all calls arrived")
			}
			writeJSON(w, 401, string(fixture(t, "error-expired-token.json")))
			return
		}
		if c.Token != env.oauth.validAccess() {
			t.Errorf("call with token %q", c.Token)
		}
		writeJSON(w, 200, `{"result": true}`)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- env.call(context.Background(), "user.current") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := env.oauth.refreshes.Load(); got != 1 {
		t.Errorf("%d refresh calls to the auth server, want exactly 1", got)
	}
	if got := len(env.portal.Calls()); got != 2*n {
		t.Errorf("%d portal calls, want %d", got, 2*n)
	}
	if _, marked := env.store.NeedsReauth(testIntegration); marked {
		t.Error("integration marked for re-auth")
	}
}

func TestCallUsesTokenRefreshedElsewhere(t *testing.T) {
	env := newTestEnv(t, "stale-access", "rt-0", "other-instance-access", nil)
	env.portal.handle = func(w http.ResponseWriter, c portalCall) {
		if c.Token == "stale-access" {
			// Another gateway instance refreshes while this call is out.
			env.store.Put(Credentials{IntegrationID: testIntegration, MemberID: testMemberID, ClientEndpoint: env.portal.endpoint(),
				AccessToken: "other-instance-access", RefreshToken: "other-rt"})
			writeJSON(w, 401, string(fixture(t, "error-expired-token.json")))
			return
		}
		writeJSON(w, 200, `{"result": true}`)
	}
	if err := env.call(context.Background(), "user.current"); err != nil {
		t.Fatal(err)
	}
	if n := env.oauth.refreshes.Load(); n != 0 {
		t.Errorf("%d refreshes, want 0", n)
	}
	if calls := env.portal.Calls(); len(calls) != 2 || calls[1].Token != "other-instance-access" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestCallRefreshRefusedMarksReauth(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		fixture string
		code    string
	}{
		{"invalid_grant", 400, "oauth-token-error-invalid-grant.json", "invalid_grant"},
		{"payment_required", 402, "oauth-token-error-payment-required.json", "PAYMENT_REQUIRED"},
		{"invalid_client", 401, "", "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, "stale-access", "rt-0", "never", nil)
			env.oauth.override = func(w http.ResponseWriter, _ url.Values) {
				body := `{"error":"invalid_client","error_description":"Invalid client"}`
				if tt.fixture != "" {
					body = string(fixture(t, tt.fixture))
				}
				writeJSON(w, tt.status, body)
			}
			err := env.call(context.Background(), "user.current")
			if !errors.Is(err, ErrNeedsReauth) || !IsReauthRequired(err) {
				t.Fatalf("err = %v, want ErrNeedsReauth", err)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tt.code {
				t.Errorf("APIError = %+v", ae)
			}
			if strings.Contains(err.Error(), testClientSecret) || strings.Contains(err.Error(), "rt-0") {
				t.Errorf("error leaks a secret: %v", err)
			}
			reason, marked := env.store.NeedsReauth(testIntegration)
			if !marked || !strings.Contains(reason, tt.code) {
				t.Errorf("marked=%v reason=%q", marked, reason)
			}
			// Later calls fail fast, without the portal or the auth server.
			before := len(env.portal.Calls())
			if err := env.call(context.Background(), "user.current"); !errors.Is(err, ErrNeedsReauth) {
				t.Errorf("second call: %v", err)
			}
			if len(env.portal.Calls()) != before || env.oauth.refreshes.Load() != 1 {
				t.Error("second call reached the portal or the auth server")
			}
		})
	}
}

func TestCallRefreshTransientFailure(t *testing.T) {
	env := newTestEnv(t, "stale-access", "rt-0", "never", nil)
	env.oauth.override = func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		w.Write([]byte("<html><body>Bad gateway</body></html>"))
	}
	err := env.call(context.Background(), "user.current")
	if err == nil || IsReauthRequired(err) || !IsRateLimited(err) {
		t.Fatalf("err = %v (reauth=%v retryable=%v)", err, IsReauthRequired(err), IsRateLimited(err))
	}
	if _, marked := env.store.NeedsReauth(testIntegration); marked {
		t.Error("marked for re-auth on a 502")
	}
	creds, _ := env.store.Credentials(context.Background(), testIntegration)
	if creds.RefreshToken != "rt-0" {
		t.Errorf("refresh token changed to %q", creds.RefreshToken)
	}
}

func TestCallRefusedAfterRefreshMarksReauth(t *testing.T) {
	env := newTestEnv(t, "stale-access", "rt-0", "never", nil)
	env.portal.handle = func(w http.ResponseWriter, c portalCall) {
		writeJSON(w, 401, string(fixture(t, "error-invalid-token.json")))
	}
	err := env.call(context.Background(), "user.current")
	if !errors.Is(err, ErrNeedsReauth) || !IsInvalidToken(err) {
		t.Fatalf("err = %v", err)
	}
	if n := env.oauth.refreshes.Load(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if _, marked := env.store.NeedsReauth(testIntegration); !marked {
		t.Error("not marked")
	}
}

func TestCallErrorsDoNotLeakToken(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	env.portal.srv.Close()
	err := env.call(context.Background(), "user.current")
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if strings.Contains(err.Error(), "valid-access") || strings.Contains(err.Error(), "auth=") {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestCallRedirectRePOST(t *testing.T) {
	for _, status := range []int{301, 302, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
				writeJSON(w, 200, `{"result": 42}`)
			})
			var oldHits atomic.Int32
			old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				oldHits.Add(1)
				http.Redirect(w, r, env.portal.srv.URL+r.URL.RequestURI(), status)
			}))
			defer old.Close()
			if err := env.store.SetEndpoint(testIntegration, old.URL+"/rest/"); err != nil {
				t.Fatal(err)
			}
			var id int
			if err := env.client.Call(context.Background(), testIntegration, "crm.contact.add", map[string]any{"fields": map[string]any{"NAME": "Anna"}}, &id); err != nil {
				t.Fatal(err)
			}
			if id != 42 || oldHits.Load() != 1 {
				t.Errorf("id=%d oldHits=%d", id, oldHits.Load())
			}
			calls := env.portal.Calls()
			if len(calls) != 1 || calls[0].HTTPMethod != http.MethodPost || !strings.Contains(string(calls[0].Body), `"Anna"`) {
				t.Errorf("new host got %+v", calls)
			}
			select {
			case got := <-env.moved:
				if want := testIntegration + " " + env.portal.endpoint(); got != want {
					t.Errorf("moved = %q, want %q", got, want)
				}
			default:
				t.Error("OnEndpointMoved not called")
			}
		})
	}
}

func TestCallRedirectToInvalidEndpoint(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://evil.example/rest/user.current.json", http.StatusFound)
	}))
	defer old.Close()
	if err := env.store.SetEndpoint(testIntegration, old.URL+"/rest/"); err != nil {
		t.Fatal(err)
	}
	err := env.call(context.Background(), "user.current")
	if !errors.Is(err, ErrInvalidEndpoint) {
		t.Errorf("err = %v", err)
	}
	if len(env.moved) != 0 {
		t.Error("OnEndpointMoved called")
	}
}

func TestMovedEndpoint(t *testing.T) {
	tests := []struct {
		endpoint, location string
		insecure           bool
		want               string // "" = error
	}{
		{"https://old.bitrix24.ru/rest/", "https://new.bitrix24.ru/rest/user.current.json?auth=x", false, "https://new.bitrix24.ru/rest/"},
		{"https://old.bitrix24.ru/rest/", "https://new.bitrix24.ru/rest/user.current", false, "https://new.bitrix24.ru/rest/"},
		{"https://old.bitrix24.ru/rest/", "https://new.bitrix24.ru/", false, "https://new.bitrix24.ru/rest/"},
		{"https://old.bitrix24.ru/rest/", "/rest/user.current.json", false, "https://old.bitrix24.ru/rest/"},
		{"https://old.bitrix24.ru/rest/", "http://new.bitrix24.ru/rest/user.current.json", false, ""},
		{"http://old.test/rest/", "http://new.test/rest/user.current.json", true, "http://new.test/rest/"},
		{"https://old.bitrix24.ru/rest/", "https://new.bitrix24.ru/api/user.current.json", false, ""},
		{"https://old.bitrix24.ru/rest/", "https://user:pw@new.bitrix24.ru/rest/user.current.json", false, ""},
	}
	for _, tt := range tests {
		got, err := movedEndpoint(tt.endpoint, tt.location, "user.current", tt.insecure)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s → %s: accepted %s", tt.endpoint, tt.location, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s → %s: %q, %v; want %q", tt.endpoint, tt.location, got, err, tt.want)
		}
	}
}

func TestCallRefusesInsecureStoredEndpoint(t *testing.T) {
	st := NewMemoryTokenStore()
	st.Put(Credentials{IntegrationID: "i", ClientEndpoint: "http://example.bitrix24.ru/rest/", AccessToken: "a"})
	c := NewClient(ClientOptions{Tokens: st})
	if err := c.Call(context.Background(), "i", "user.current", nil, nil); !errors.Is(err, ErrInvalidEndpoint) {
		t.Errorf("err = %v", err)
	}
}

// fakeClock drives the limiter: sleeping advances time instead of waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return nil
}

func TestRateLimiterSpacesCallsPerPortal(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	env.store.Put(Credentials{IntegrationID: "other", ClientEndpoint: env.portal.endpoint(), AccessToken: "valid-access"})
	clock := &fakeClock{now: time.Now()}
	env.client = NewClient(ClientOptions{Tokens: env.store, AllowInsecure: true,
		Limiter: crm.NewLimiter(crm.LimiterOptions{Rate: 2, Burst: 3, Now: clock.Now, Sleep: clock.Sleep})})

	for range 6 {
		if err := env.call(context.Background(), "user.current"); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}
	if !reflect.DeepEqual(clock.sleeps, want) {
		t.Errorf("sleeps = %v, want %v (burst 3, then 2/s)", clock.sleeps, want)
	}
	// Another portal has its own bucket.
	if err := env.client.Call(context.Background(), "other", "user.current", nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(clock.sleeps) != 3 {
		t.Errorf("other portal waited: %v", clock.sleeps)
	}
	if n := len(env.portal.Calls()); n != 7 {
		t.Errorf("%d portal calls", n)
	}
}

func TestRateLimiterHonoursContext(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	clock := &fakeClock{now: time.Now()}
	env.client = NewClient(ClientOptions{Tokens: env.store, AllowInsecure: true,
		Limiter: crm.NewLimiter(crm.LimiterOptions{Rate: 1, Burst: 1, Now: clock.Now, Sleep: clock.Sleep})})
	if err := env.call(context.Background(), "user.current"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := env.call(ctx, "user.current"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer dcancel()
	if err := env.call(dctx, "user.current"); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("short deadline: err = %v", err)
	}
	if n := len(env.portal.Calls()); n != 1 {
		t.Errorf("%d portal calls, want 1", n)
	}
	// The cancelled reservations were given back: the next call waits one
	// interval, not three.
	if err := env.call(context.Background(), "user.current"); err != nil {
		t.Fatal(err)
	}
	if len(clock.sleeps) != 1 || clock.sleeps[0] > time.Second {
		t.Errorf("sleeps = %v", clock.sleeps)
	}
}

func TestList(t *testing.T) {
	const total = 110
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
		var p struct {
			Start  int
			Filter map[string]any
		}
		if err := json.Unmarshal(c.Body, &p); err != nil {
			t.Error(err)
		}
		if p.Filter["CLOSED"] != "N" {
			t.Errorf("filter lost: %s", c.Body)
		}
		var items []string
		for i := p.Start; i < min(p.Start+PageSize, total); i++ {
			items = append(items, fmt.Sprintf(`{"ID":"%d"}`, i))
		}
		next := ""
		if p.Start+PageSize < total {
			next = fmt.Sprintf(`,"next":%d`, p.Start+PageSize)
		}
		writeJSON(w, 200, fmt.Sprintf(`{"result":[%s],"total":%d%s}`, strings.Join(items, ","), total, next))
	})
	var ids []string
	err := env.client.List(context.Background(), testIntegration, "crm.deal.list",
		map[string]any{"filter": map[string]any{"CLOSED": "N"}}, func(item json.RawMessage) error {
			var d struct{ ID string }
			if err := json.Unmarshal(item, &d); err != nil {
				return err
			}
			ids = append(ids, d.ID)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != total || ids[0] != "0" || ids[total-1] != "109" {
		t.Errorf("got %d items: first %v", len(ids), ids[:min(3, len(ids))])
	}
	var starts []int
	for _, c := range env.portal.Calls() {
		var p struct{ Start int }
		json.Unmarshal(c.Body, &p)
		starts = append(starts, p.Start)
	}
	if !reflect.DeepEqual(starts, []int{0, 50, 100}) {
		t.Errorf("starts = %v", starts)
	}
}

func TestListObjectResultAndStop(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
		writeJSON(w, 200, `{"result":{"categories":[{"id":0},{"id":1},{"id":2}]},"total":3,"next":50}`)
	})
	stop := errors.New("stop")
	n := 0
	err := env.client.List(context.Background(), testIntegration, "crm.category.list", map[string]any{"entityTypeId": 2},
		func(json.RawMessage) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("err=%v n=%d", err, n)
	}
}

func TestCallNilParamsSendObject(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	var nilMap map[string]any
	for _, p := range []any{nil, nilMap, json.RawMessage(nil)} {
		if err := env.client.Call(context.Background(), testIntegration, "user.current", p, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range env.portal.Calls() {
		if string(c.Body) != "{}" {
			t.Errorf("body = %q", c.Body)
		}
	}
}

func TestCallCapsResponseBody(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
		writeJSON(w, 200, `{"result":"`+strings.Repeat("x", 4096)+`"}`)
	})
	env.client = NewClient(ClientOptions{Tokens: env.store, AllowInsecure: true, MaxResponseBytes: 1024})
	if err := env.call(context.Background(), "user.current"); err == nil || !strings.Contains(err.Error(), "larger than 1024 bytes") {
		t.Errorf("err = %v", err)
	}
}

func TestRefreshReportsNewEndpoint(t *testing.T) {
	env := newTestEnv(t, "stale-access", "rt-0", "never", nil)
	renamed := newFakePortal(t, func(w http.ResponseWriter, c portalCall) {
		if c.Token != env.oauth.validAccess() {
			t.Errorf("token %q", c.Token)
		}
		writeJSON(w, 200, `{"result": true}`)
	})
	env.oauth.endpoint = renamed.endpoint()
	if err := env.call(context.Background(), "user.current"); err != nil {
		t.Fatal(err)
	}
	if len(renamed.Calls()) != 1 {
		t.Errorf("renamed portal got %d calls", len(renamed.Calls()))
	}
	select {
	case got := <-env.moved:
		if got != testIntegration+" "+renamed.endpoint() {
			t.Errorf("moved = %q", got)
		}
	default:
		t.Error("OnEndpointMoved not called")
	}
}

func TestRefreshWithoutRefreshToken(t *testing.T) {
	env := newTestEnv(t, "stale-access", "", "never", nil)
	err := env.call(context.Background(), "user.current")
	if !errors.Is(err, ErrNeedsReauth) || !strings.Contains(err.Error(), "refresh token") {
		t.Errorf("err = %v", err)
	}
	if env.oauth.refreshes.Load() != 0 {
		t.Error("asked the auth server without a refresh token")
	}
	if _, marked := env.store.NeedsReauth(testIntegration); !marked {
		t.Error("not marked")
	}
}
