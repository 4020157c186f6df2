package b24sim

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestUserTokens(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	olga := env.sim.UserToken(testMemberID, 27)

	r := env.rest(t, olga, "user.current", nil)
	res, _ := r.body["result"].(map[string]any)
	if r.status != 200 || res["ID"] != "27" || res["NAME"] != "Olga" || res["LAST_NAME"] != "Ivanova" {
		t.Fatalf("user.current: %d %s", r.status, r.raw)
	}
	if _, ok := res["ADMIN"]; ok {
		t.Errorf("user.current has ADMIN: %s", r.raw)
	}
	if r := env.rest(t, olga, "user.admin", nil); r.status != 200 || r.body["result"] != false {
		t.Errorf("user.admin for 27: %s", r.raw)
	}
	if r := env.rest(t, env.access, "user.admin", nil); r.body["result"] != true {
		t.Errorf("user.admin for admin: %s", r.raw)
	}
	if r := env.rest(t, env.access, "user.current", nil); dig(r.body, "result", "ID") != "1" {
		t.Errorf("admin user.current: %s", r.raw)
	}

	// Calls run as the token's user.
	r = env.rest(t, olga, "crm.contact.add", map[string]any{"fields": map[string]any{"NAME": "Anna"}})
	id := r.body["result"]
	r = env.rest(t, olga, "crm.contact.get", map[string]any{"id": id})
	if dig(r.body, "result", "CREATED_BY_ID") != "27" {
		t.Errorf("created by: %s", r.raw)
	}
	if calls := env.sim.Calls("crm.contact.add"); calls[len(calls)-1].UserID != 27 {
		t.Errorf("call user: %+v", calls)
	}

	// A token identifies its portal: another portal's data is out of reach.
	other := env.sim.AddPortal(PortalOptions{Users: []User{{ID: 5, Name: "Boris", LastName: "Sidorov"}, {ID: 9, Name: "Vera"}}, AdminUserID: 5})
	otherDeal := env.sim.AddDeal(other.MemberID(), map[string]any{"TITLE": "theirs"})
	vera := env.sim.UserToken(other.MemberID(), 9)
	if r := env.rest(t, vera, "user.current", nil); dig(r.body, "result", "ID") != "9" || dig(r.body, "result", "NAME") != "Vera" {
		t.Errorf("other portal user.current: %s", r.raw)
	}
	if r := env.rest(t, vera, "user.admin", nil); r.body["result"] != false {
		t.Errorf("other portal user.admin: %s", r.raw)
	}
	if r := env.rest(t, olga, "crm.deal.get", map[string]any{"id": otherDeal}); r.status != 400 {
		t.Errorf("cross-portal read: %d %s", r.status, r.raw)
	}
	if r := env.rest(t, vera, "crm.deal.get", map[string]any{"id": otherDeal}); dig(r.body, "result", "TITLE") != "theirs" {
		t.Errorf("own read: %s", r.raw)
	}
	if len(env.portal.Contacts()) != 1 || len(other.Contacts()) != 0 {
		t.Error("contact landed on the wrong portal")
	}
}

func TestCRMCardReads(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	anna := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Anna", "LAST_NAME": "Smirnova",
		"PHONE": []map[string]any{{"VALUE": "+79161234567", "VALUE_TYPE": "MOBILE"}}})
	boris := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Boris", "PHONE": "+79035550000"})

	r := env.ok(t, "crm.contact.get", map[string]any{"id": anna})
	phones, _ := dig(r.body, "result", "PHONE").([]any)
	if len(phones) != 1 {
		t.Fatalf("PHONE: %s", r.raw)
	}
	ph := phones[0].(map[string]any)
	if _, ok := ph["ID"].(string); !ok || ph["VALUE_TYPE"] != "MOBILE" || ph["VALUE"] != "+79161234567" || ph["TYPE_ID"] != "PHONE" || len(ph) != 4 {
		t.Errorf("phone item: %v", ph)
	}

	// A deal with two contacts, the first primary.
	r = env.ok(t, "crm.deal.add", map[string]any{"fields": map[string]any{"TITLE": "Two", "CONTACT_IDS": []int{anna, boris}}})
	deal := int(r.body["result"].(float64))
	r = env.ok(t, "crm.deal.get", map[string]any{"id": deal})
	if dig(r.body, "result", "CONTACT_ID") != itoa(anna) {
		t.Errorf("CONTACT_ID: %s", r.raw)
	}
	if _, ok := r.body["result"].(map[string]any)["CONTACT_IDS"]; ok {
		t.Errorf("crm.deal.get has CONTACT_IDS: %s", r.raw)
	}
	r = env.ok(t, "crm.deal.contact.items.get", map[string]any{"id": deal})
	want := []any{
		map[string]any{"CONTACT_ID": float64(anna), "SORT": float64(10), "ROLE_ID": float64(0), "IS_PRIMARY": "Y"},
		map[string]any{"CONTACT_ID": float64(boris), "SORT": float64(20), "ROLE_ID": float64(0), "IS_PRIMARY": "N"},
	}
	if !reflect.DeepEqual(r.body["result"], want) {
		t.Errorf("items.get: %s", r.raw)
	}

	// CONTACT_ID alone makes that contact primary, keeping the others.
	env.ok(t, "crm.deal.update", map[string]any{"id": deal, "fields": map[string]any{"CONTACT_ID": boris}})
	if got := env.portal.DealContacts(deal); !slices.Equal(got, []int{boris, anna}) {
		t.Errorf("after CONTACT_ID update: %v", got)
	}
	if r := env.ok(t, "crm.deal.get", map[string]any{"id": deal}); dig(r.body, "result", "CONTACT_ID") != itoa(boris) {
		t.Errorf("primary: %s", r.raw)
	}
	// The simulator's seeding helper takes CONTACT_ID too; crm.deal.list
	// filters on the primary contact.
	seeded := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "Seeded", "CONTACT_ID": anna})
	if got := env.portal.DealContacts(seeded); !slices.Equal(got, []int{anna}) {
		t.Errorf("seeded: %v", got)
	}
	r = env.ok(t, "crm.deal.list", map[string]any{"filter": map[string]any{"CONTACT_ID": anna}, "select": []string{"ID"}})
	if rows, _ := r.body["result"].([]any); len(rows) != 1 || dig(rows[0], "ID") != itoa(seeded) {
		t.Errorf("list by primary contact: %s", r.raw)
	}

	// No contacts: CONTACT_ID is null and the list empty.
	lone := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "Lone"})
	r = env.ok(t, "crm.deal.get", map[string]any{"id": lone})
	if v, ok := r.body["result"].(map[string]any)["CONTACT_ID"]; !ok || v != nil {
		t.Errorf("lone CONTACT_ID: %s", r.raw)
	}
	if r := env.ok(t, "crm.deal.contact.items.get", map[string]any{"id": lone}); !strings.Contains(string(r.raw), `"result":[]`) {
		t.Errorf("lone items: %s", r.raw)
	}
	if r := env.rest(t, env.access, "crm.deal.contact.items.get", map[string]any{"id": 99999}); r.status != 400 || r.body["error_description"] != "Not found." {
		t.Errorf("unknown deal: %d %s", r.status, r.raw)
	}
	if r := env.rest(t, env.access, "crm.deal.contact.items.get", nil); r.status != 400 || r.body["error_description"] != "The parameter ownerEntityID is invalid or not defined." {
		t.Errorf("no id: %d %s", r.status, r.raw)
	}

	lead := env.sim.AddLead(testMemberID, map[string]any{"TITLE": "WhatsApp lead", "PHONE": "+79161234567"})
	r = env.ok(t, "crm.lead.get", map[string]any{"id": lead})
	if dig(r.body, "result", "TITLE") != "WhatsApp lead" || dig(r.body, "result", "STATUS_ID") != "NEW" || dig(r.body, "result", "PHONE", 0, "TYPE_ID") != "PHONE" {
		t.Errorf("crm.lead.get: %s", r.raw)
	}
}

// iframeStub records what a browser posts to an app page.
type iframeStub struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func newIframeStub(t *testing.T) *iframeStub {
	t.Helper()
	s := &iframeStub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.body = append(s.body, string(b))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<html>tab "+r.URL.Path+"</html>")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *iframeStub) last() (*http.Request, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1], s.body[len(s.body)-1]
}

func TestOpenPlacement(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	page := newIframeStub(t)
	for _, code := range []string{"CRM_LEAD_DETAIL_TAB", "CRM_DEAL_DETAIL_TAB", "CRM_CONTACT_DETAIL_TAB"} {
		r := env.ok(t, "placement.bind", map[string]any{"PLACEMENT": code, "HANDLER": page.URL + "/tab", "TITLE": "WhatsApp"})
		if r.body["result"] != true {
			t.Fatalf("bind %s: %s", code, r.raw)
		}
	}

	status, body, err := env.sim.OpenPlacement(testMemberID, 27, "CRM_DEAL_DETAIL_TAB", page.URL+"/tab", map[string]any{"ID": "8061"}, "en")
	if err != nil || status != 200 || body != "<html>tab /tab</html>" {
		t.Fatalf("OpenPlacement: %d %q %v", status, body, err)
	}
	req, form := page.last()
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || req.Header.Get("Origin") != "https://"+testDomain {
		t.Errorf("request: %s %v", req.Method, req.Header)
	}
	q := req.URL.Query()
	if q.Get("DOMAIN") != testDomain || q.Get("PROTOCOL") != "1" || q.Get("LANG") != "en" || len(q.Get("APP_SID")) != 32 || len(q) != 4 {
		t.Errorf("query: %s", req.URL.RawQuery)
	}

	// Body keys and their order as in the fixture (contract §1.4).
	keyOrder := func(body string) []string {
		var ks []string
		for _, kv := range strings.Split(strings.TrimSpace(body), "&") {
			k, _, _ := strings.Cut(kv, "=")
			ks = append(ks, k)
		}
		return ks
	}
	var fixtureBody string
	for _, line := range strings.Split(string(fixture(t, "iframe-setting-connector-post.txt")), "\n") {
		if strings.HasPrefix(line, "AUTH_ID=") {
			fixtureBody = line
		}
	}
	if got, want := keyOrder(form), keyOrder(fixtureBody); !slices.Equal(got, want) {
		t.Errorf("body keys:\ngot  %v\nwant %v", got, want)
	}
	f, _ := url.ParseQuery(form)
	if f.Get("AUTH_EXPIRES") != "3600" || f.Get("SERVER_ENDPOINT") != env.srv.URL+"/rest/" || f.Get("APPLICATION_TOKEN") != testAppToken ||
		f.Get("APPLICATION_SCOPE") != DefaultScope || f.Get("member_id") != testMemberID || f.Get("status") != "P" ||
		f.Get("PLACEMENT") != "CRM_DEAL_DETAIL_TAB" || f.Get("PLACEMENT_OPTIONS") != `{"ID":"8061"}` {
		t.Errorf("body: %v", f)
	}
	// AUTH_ID is Olga's token, REFRESH_ID its refresh token.
	if r := env.rest(t, f.Get("AUTH_ID"), "user.current", nil); dig(r.body, "result", "ID") != "27" {
		t.Errorf("AUTH_ID user: %s", r.raw)
	}
	tr := env.token(t, http.MethodGet, url.Values{"grant_type": {"refresh_token"}, "client_id": {testClientID}, "client_secret": {testSecret}, "refresh_token": {f.Get("REFRESH_ID")}})
	if tr.status != 200 || tr.body["user_id"] != float64(27) {
		t.Errorf("REFRESH_ID: %d %s", tr.status, tr.raw)
	}
	d := env.sim.Deliveries()
	if len(d) != 1 || d[0].Event != PlacementEventPrefix+"CRM_DEAL_DETAIL_TAB" || d[0].Body != form || d[0].Status != 200 {
		t.Errorf("recorded: %+v", d)
	}

	// Defaults: admin user, portal language, the bound handler, slashes
	// escaped as PHP does.
	if _, _, err := env.sim.OpenPlacement(testMemberID, 0, "crm_lead_detail_tab", "", map[string]any{"ID": "5", "URI": "/crm/lead/details/5/"}, ""); err != nil {
		t.Fatal(err)
	}
	req, form = page.last()
	f, _ = url.ParseQuery(form)
	if req.URL.Query().Get("LANG") != "ru" || f.Get("PLACEMENT") != "CRM_LEAD_DETAIL_TAB" || f.Get("PLACEMENT_OPTIONS") != `{"ID":"5","URI":"\/crm\/lead\/details\/5\/"}` {
		t.Errorf("defaults: %s %v", req.URL.RawQuery, f)
	}
	if r := env.rest(t, f.Get("AUTH_ID"), "user.admin", nil); r.body["result"] != true {
		t.Errorf("admin token: %s", r.raw)
	}

	// The main page needs no binding; options default to {}.
	if _, _, err := env.sim.OpenPlacement(testMemberID, 27, "DEFAULT", page.URL+"/app?x=1", nil, ""); err != nil {
		t.Fatal(err)
	}
	req, form = page.last()
	f, _ = url.ParseQuery(form)
	if req.URL.Query().Get("x") != "1" || req.URL.Query().Get("DOMAIN") != testDomain || f.Get("PLACEMENT_OPTIONS") != "{}" {
		t.Errorf("main page: %s %v", req.URL.RawQuery, f)
	}

	// Unbound widgets and unknown users are refused.
	if _, _, err := env.sim.OpenPlacement(testMemberID, 27, "CRM_COMPANY_DETAIL_TAB", page.URL+"/tab", nil, ""); !errors.Is(err, ErrPlacementNotBound) {
		t.Errorf("unbound: %v", err)
	}
	if _, _, err := env.sim.OpenPlacement(testMemberID, 27, "CRM_DEAL_DETAIL_TAB", page.URL+"/elsewhere", nil, ""); !errors.Is(err, ErrPlacementNotBound) {
		t.Errorf("other handler: %v", err)
	}
	if _, _, err := env.sim.OpenPlacement(testMemberID, 4242, "CRM_DEAL_DETAIL_TAB", page.URL+"/tab", nil, ""); err == nil {
		t.Error("unknown user accepted")
	}
}
