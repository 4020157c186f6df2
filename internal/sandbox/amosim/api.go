package amosim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST /oauth2/access_token", s.handleToken)
	m.HandleFunc("GET /oauth2/account/current/subdomain", s.handleSubdomain)

	m.HandleFunc("GET /api/v4/account", s.api(s.getAccount))
	m.HandleFunc("GET /api/v4/users", s.api(s.listUsers))
	m.HandleFunc("GET /api/v4/users/{id}", s.api(s.getUser))
	m.HandleFunc("GET /api/v4/leads/pipelines", s.api(s.listPipelines))
	m.HandleFunc("GET /api/v4/contacts", s.api(s.listContacts))
	m.HandleFunc("POST /api/v4/contacts", s.api(s.createContacts))
	m.HandleFunc("GET /api/v4/contacts/{id}", s.api(s.getContact))
	m.HandleFunc("GET /api/v4/leads", s.api(s.listLeads))
	m.HandleFunc("POST /api/v4/leads", s.api(s.createLeads))
	m.HandleFunc("PATCH /api/v4/leads", s.api(s.patchLeads))
	m.HandleFunc("GET /api/v4/leads/{id}", s.api(s.getLead))
	m.HandleFunc("PATCH /api/v4/leads/{id}", s.api(s.patchLead))
	m.HandleFunc("POST /api/v4/leads/complex", s.api(s.complexLeads))
	m.HandleFunc("POST /api/v4/leads/notes", s.api(s.notesHandler("leads")))
	m.HandleFunc("POST /api/v4/contacts/notes", s.api(s.notesHandler("contacts")))
	m.HandleFunc("POST /api/v4/contacts/chats", s.api(s.linkChats))
	m.HandleFunc("GET /api/v4/contacts/chats", s.api(s.listChatLinks))
	m.HandleFunc("POST /api/v4/leads/{id}/notes", s.api(s.notesHandler("leads")))
	m.HandleFunc("GET /api/v4/leads/{id}/notes", s.api(s.listNotes))
	m.HandleFunc("POST /api/v4/tasks", s.api(s.createTasks))
	m.HandleFunc("PATCH /api/v4/tasks", s.api(s.patchTasks))

	s.amojoRoutes(m)
	s.frameRoutes(m)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem(http.StatusNotFound, "Not Found", "Unknown path "+r.URL.Path))
	})
	return m
}

// call is one authorised API request; handlers run holding s.mu.
type call struct {
	a      *account
	userID int
	now    time.Time
	body   []byte
}

// api wraps an endpoint with what every v4 call goes through, in amoCRM's
// order: the bearer token (401), the per-account rate limit (429), the
// subscription (402).
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request, c *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		if _, err := body.ReadFrom(r.Body); err != nil {
			writeProblem(w, problem(http.StatusBadRequest, "Bad Request", "unreadable body"))
			return
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		now := s.clock()
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.access[tok]
		if t == nil || t.revoked || !now.Before(t.expires) {
			if t != nil {
				if a := s.accounts[t.accountID]; a != nil {
					a.counts.Unauthorized++
					noteAccount(r, a.spec.ID)
				}
			}
			// error_401.json; the detail text is illustrative.
			writeProblem(w, problem(http.StatusUnauthorized, "Unauthorized", "Неверный логин или пароль"))
			return
		}
		a := s.accounts[t.accountID]
		if a == nil {
			writeProblem(w, problem(http.StatusUnauthorized, "Unauthorized", "Account not found"))
			return
		}
		noteAccount(r, a.spec.ID)
		a.counts.Requests++
		if s.opts.Rate > 0 && !a.bucket.take(now, s.opts.Rate, s.opts.Burst) {
			a.counts.TooMany++
			writeTooMany(w)
			return
		}
		if a.unpaid {
			writeProblem(w, problem(http.StatusPaymentRequired, "Payment Required", "Account is not paid"))
			return
		}
		a.counts.ByRoute[r.Pattern]++
		c := &call{a: a, userID: t.userID, now: now, body: body.Bytes()}
		if f := s.failRoute[r.Pattern]; f.n > 0 {
			f.n--
			s.failRoute[r.Pattern] = f
			writeProblem(w, problem(f.status, http.StatusText(f.status), "failing on purpose (FailRoute)"))
			return
		}
		if s.failAfter[r.Pattern] > 0 {
			s.failAfter[r.Pattern]--
			h(httptest.NewRecorder(), r, c)
			writeProblem(w, problem(http.StatusBadGateway, "Bad Gateway", "upstream timed out"))
			return
		}
		h(w, r, c)
	}
}

func (c *call) href(path string) map[string]any {
	return map[string]any{"self": map[string]string{"href": "https://" + c.a.spec.Domain + path}}
}

func withSet(r *http.Request) map[string]bool {
	out := map[string]bool{}
	for _, v := range r.URL.Query()["with"] {
		for _, p := range strings.Split(v, ",") {
			out[strings.TrimSpace(p)] = true
		}
	}
	return out
}

func pathID(r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	return id, err == nil && id > 0
}

// paging reads page and limit (default 50, at most 250: larger limits are
// cut to 250, which is what amoCRM is reported to do; unsure).
func paging(q url.Values) (page, limit int, p *Problem) {
	page, limit = 1, 50
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, badQuery("page", "This value should be greater than 0.")
		}
		page = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, badQuery("limit", "This value should be greater than 0.")
		}
		limit = min(n, MaxLimit)
	}
	return page, limit, nil
}

func badQuery(field, detail string) *Problem {
	p := problem(http.StatusBadRequest, "Bad Request", "Request validation failed")
	p.Validation = []ValidationError{{RequestID: "0", Errors: []FieldError{{Code: "InvalidValue", Path: field, Detail: detail}}}}
	return p
}

// writeList writes one page of a HAL list, or 204 when the page is empty.
func writeList[T any](w http.ResponseWriter, r *http.Request, c *call, key string, all []T, page, limit int, extra map[string]any) {
	from := (page - 1) * limit
	if from >= len(all) {
		writeNoContent(w)
		return
	}
	to := min(from+limit, len(all))
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(page))
	q.Set("limit", strconv.Itoa(limit))
	links := map[string]any{"self": map[string]string{"href": "https://" + c.a.spec.Domain + r.URL.Path + "?" + q.Encode()}}
	if to < len(all) {
		q.Set("page", strconv.Itoa(page+1))
		links["next"] = map[string]string{"href": "https://" + c.a.spec.Domain + r.URL.Path + "?" + q.Encode()}
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page-1))
		links["prev"] = map[string]string{"href": "https://" + c.a.spec.Domain + r.URL.Path + "?" + q.Encode()}
	}
	out := map[string]any{"_page": page, "_links": links, "_embedded": map[string]any{key: all[from:to]}}
	for k, v := range extra {
		out[k] = v
	}
	writeHAL(w, http.StatusOK, out)
}

// ---- account, users, pipelines ----

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, c *call) {
	with := withSet(r)
	sp := c.a.spec
	out := map[string]any{
		"id": sp.ID, "name": sp.Name, "subdomain": sp.Subdomain, "current_user_id": c.userID,
		"country": "RU", "currency": "RUB", "customers_mode": "disabled", "is_unsorted_on": true,
		"is_loss_reason_enabled": true, "is_helpbot_enabled": false, "is_technical_account": false,
		"contact_name_display_order": 1, "uuid": "824f3a59-6154-4edf-ba90-0b5593715d07",
		"_links": c.href("/api/v4/account"),
	}
	emb := map[string]any{}
	if with["amojo_id"] {
		out["amojo_id"] = sp.AmojoID
	}
	if with["version"] {
		out["version"] = 16
	}
	if with["amojo_rights"] {
		emb["amojo_rights"] = map[string]bool{"can_direct": true, "can_create_groups": true}
	}
	if with["task_types"] {
		emb["task_types"] = []map[string]any{
			{"id": 1, "name": "Связаться", "color": nil, "icon_id": nil, "code": "FOLLOW_UP"},
			{"id": 2, "name": "Встреча", "color": nil, "icon_id": nil, "code": "MEETING"},
		}
	}
	if with["users_groups"] {
		emb["users_groups"] = []map[string]any{{"id": 0, "name": "Отдел продаж", "uuid": nil}, {"id": 412301, "name": "Support", "uuid": nil}}
	}
	if with["datetime_settings"] {
		loc, _ := time.LoadLocation(sp.Timezone)
		off := c.now.In(loc).Format("-07:00")
		emb["datetime_settings"] = map[string]any{
			"date_pattern": "d.m.Y H:i", "short_date_pattern": "d.m.Y", "short_time_pattern": "H:i",
			"date_formant": "d.m.Y", "time_format": "H:i:s", "timezone": sp.Timezone, "timezone_offset": off,
		}
	}
	if len(emb) > 0 {
		out["_embedded"] = emb
	}
	writeHAL(w, http.StatusOK, out)
}

type rightsJSON struct {
	View   string `json:"view"`
	Edit   string `json:"edit"`
	Add    string `json:"add"`
	Delete string `json:"delete"`
	Export string `json:"export"`
}

func (c *call) userJSON(u User, with map[string]bool) map[string]any {
	ent := rightsJSON{"A", "A", "A", "D", "D"}
	if u.IsAdmin {
		ent = rightsJSON{"A", "A", "A", "A", "A"}
	}
	var group any
	if u.GroupID != 0 {
		group = u.GroupID
	}
	out := map[string]any{
		"id": u.ID, "name": u.Name, "email": u.Email, "lang": u.Lang,
		"rights": map[string]any{
			"leads": ent, "contacts": ent, "companies": ent,
			"tasks":       map[string]string{"edit": "A", "delete": "A"},
			"mail_access": false, "catalog_access": true, "status_rights": []any{},
			"is_admin": u.IsAdmin, "is_free": false, "is_active": u.IsActive, "group_id": group, "role_id": nil,
		},
		"_links": c.href("/api/v4/users/" + strconv.Itoa(u.ID)),
	}
	if with["amojo_id"] {
		if u.AmojoID == "" {
			out["amojo_id"] = nil
		} else {
			out["amojo_id"] = u.AmojoID
		}
	}
	return out
}

// listUsers needs admin rights (contract §2.8).
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, c *call) {
	if u := c.a.user(c.userID); u == nil || !u.IsAdmin {
		writeProblem(w, problem(http.StatusForbidden, "Forbidden", "Access denied"))
		return
	}
	page, limit, p := paging(r.URL.Query())
	if p != nil {
		writeProblem(w, p)
		return
	}
	with := withSet(r)
	var all []map[string]any
	for _, u := range c.a.spec.Users {
		all = append(all, c.userJSON(u, with))
	}
	pages := (len(all) + limit - 1) / limit
	writeList(w, r, c, "users", all, page, limit, map[string]any{"_total_items": len(all), "_page_count": pages})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := pathID(r)
	u := c.a.user(id)
	if !ok || u == nil {
		writeNoContent(w)
		return
	}
	writeHAL(w, http.StatusOK, c.userJSON(*u, withSet(r)))
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request, c *call) {
	var list []map[string]any
	for _, p := range c.a.spec.Pipelines {
		var sts []map[string]any
		for _, st := range p.Statuses {
			sts = append(sts, map[string]any{
				"id": st.ID, "name": st.Name, "sort": st.Sort, "is_editable": st.Editable, "pipeline_id": p.ID,
				"color": st.Color, "type": st.Type, "account_id": c.a.spec.ID,
				"_links": c.href("/api/v4/leads/pipelines/" + strconv.Itoa(p.ID) + "/statuses/" + strconv.Itoa(st.ID)),
			})
		}
		list = append(list, map[string]any{
			"id": p.ID, "name": p.Name, "sort": p.Sort, "is_main": p.IsMain, "is_unsorted_on": p.IsUnsortedOn,
			"is_archive": false, "account_id": c.a.spec.ID, "_links": c.href("/api/v4/leads/pipelines/" + strconv.Itoa(p.ID)),
			"_embedded": map[string]any{"statuses": sts},
		})
	}
	if len(list) == 0 {
		writeNoContent(w)
		return
	}
	writeHAL(w, http.StatusOK, map[string]any{"_total_items": len(list), "_links": c.href("/api/v4/leads/pipelines"),
		"_embedded": map[string]any{"pipelines": list}})
}

// ---- contacts ----

type cfValueJSON struct {
	Value    string `json:"value"`
	EnumID   int    `json:"enum_id,omitempty"`
	EnumCode string `json:"enum_code,omitempty"`
}

type cfJSON struct {
	FieldID   int           `json:"field_id"`
	FieldName string        `json:"field_name"`
	FieldCode any           `json:"field_code"`
	FieldType string        `json:"field_type"`
	Values    []cfValueJSON `json:"values"`
}

func multitext(id int, name, code string, enums map[string]int, vals []Value) cfJSON {
	f := cfJSON{FieldID: id, FieldName: name, FieldCode: code, FieldType: "multitext"}
	for _, v := range vals {
		f.Values = append(f.Values, cfValueJSON{Value: v.Value, EnumID: enums[v.EnumCode], EnumCode: v.EnumCode})
	}
	return f
}

func (c *call) contactJSON(ct *Contact, with map[string]bool) map[string]any {
	var cf []cfJSON
	if len(ct.Phones) > 0 {
		cf = append(cf, multitext(FieldPhone, "Телефон", "PHONE", phoneEnums, ct.Phones))
	}
	if len(ct.Emails) > 0 {
		cf = append(cf, multitext(FieldEmail, "Email", "EMAIL", emailEnums, ct.Emails))
	}
	for _, id := range sortedKeys(ct.Other) {
		cf = append(cf, cfJSON{FieldID: id, FieldName: "Поле " + strconv.Itoa(id), FieldType: "text",
			Values: []cfValueJSON{{Value: ct.Other[id]}}})
	}
	var cfv any // null when empty, as amoCRM sends
	if len(cf) > 0 {
		cfv = cf
	}
	emb := map[string]any{"tags": c.tagsJSON(ct.Tags), "companies": []any{}}
	if with["leads"] {
		var leads []map[string]any
		for _, id := range ct.LeadIDs {
			leads = append(leads, map[string]any{"id": id, "_links": c.href("/api/v4/leads/" + strconv.Itoa(id))})
		}
		if leads == nil {
			leads = []map[string]any{}
		}
		emb["leads"] = leads
	}
	return map[string]any{
		"id": ct.ID, "name": ct.Name, "first_name": ct.FirstName, "last_name": ct.LastName,
		"responsible_user_id": ct.ResponsibleUserID, "group_id": 0, "created_by": ct.CreatedBy, "updated_by": 0,
		"created_at": ct.CreatedAt, "updated_at": ct.UpdatedAt, "closest_task_at": nil, "is_deleted": false,
		"custom_fields_values": cfv, "account_id": c.a.spec.ID,
		"_links": c.href("/api/v4/contacts/" + strconv.Itoa(ct.ID)), "_embedded": emb,
	}
}

func (c *call) tagsJSON(names []string) []map[string]any {
	out := []map[string]any{}
	for _, n := range names {
		out = append(out, map[string]any{"id": c.a.tags[n], "name": n, "color": nil})
	}
	return out
}

// matchContact is the search of GET /api/v4/contacts?query=: a text match
// over the contact's filled fields. Text (names, e-mails, other fields) is
// matched as a case-insensitive substring. Phones are matched on their
// digits: the query's digits must appear in the stored value's digits, so
// formatting (spaces, dashes, brackets) does not matter but the prefix
// does: 9161234567 finds "+7 916 123-45-67" and "8 (916) 123-45-67",
// while 89161234567 does not find +79161234567 (contract §2.5; the
// integrators' recipe "search the national digits, then check the PHONE
// field" in amocrm-php issue 81 says the same).
func matchContact(ct *Contact, query string) bool {
	q := strings.ToLower(strings.TrimSpace(query))
	if q == "" {
		return true
	}
	texts := []string{ct.Name, ct.FirstName, ct.LastName}
	for _, e := range ct.Emails {
		texts = append(texts, e.Value)
	}
	for _, v := range ct.Other {
		texts = append(texts, v)
	}
	for _, p := range ct.Phones {
		texts = append(texts, p.Value)
	}
	for _, t := range texts {
		if strings.Contains(strings.ToLower(t), q) {
			return true
		}
	}
	qd := digits(q)
	if len(qd) < 3 || len(qd) < len(strings.Map(keepPhoneChars, q)) {
		return false // not a phone-like query
	}
	for _, p := range ct.Phones {
		if strings.Contains(digits(p.Value), qd) {
			return true
		}
	}
	return false
}

// keepPhoneChars keeps the characters that are not phone formatting, so a
// query is phone-like when all of them are digits.
func keepPhoneChars(r rune) rune {
	switch r {
	case ' ', '-', '(', ')', '+', '.':
		return -1
	}
	return r
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	page, limit, p := paging(q)
	if p != nil {
		writeProblem(w, p)
		return
	}
	ids := intSet(q["filter[id][]"])
	with := withSet(r)
	var all []map[string]any
	for _, id := range sortedKeys(c.a.contacts) {
		ct := c.a.contacts[id]
		if len(ids) > 0 && !ids[id] {
			continue
		}
		if !matchContact(ct, q.Get("query")) {
			continue
		}
		all = append(all, c.contactJSON(ct, with))
	}
	writeList(w, r, c, "contacts", all, page, limit, nil)
}

func intSet(vals []string) map[int]bool {
	out := map[int]bool{}
	for _, v := range vals {
		if n, err := strconv.Atoi(v); err == nil {
			out[n] = true
		}
	}
	return out
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := pathID(r)
	ct := c.a.contacts[id]
	if !ok || ct == nil {
		writeNoContent(w)
		return
	}
	writeHAL(w, http.StatusOK, c.contactJSON(ct, withSet(r)))
}

func (s *Server) createContacts(w http.ResponseWriter, r *http.Request, c *call) {
	items, p := decodeBatch(c.body, 250)
	if p != nil {
		writeProblem(w, p)
		return
	}
	var parsed []*Contact
	var rids []string
	var verrs []ValidationError
	for i, it := range items {
		e := &itemErrs{rid: requestID(it, i)}
		ct := s.parseContact(c, it, "", e)
		if e.failed() {
			verrs = append(verrs, e.result())
			continue
		}
		parsed = append(parsed, ct)
		rids = append(rids, e.rid)
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs)
		return
	}
	var out []map[string]any
	for i, ct := range parsed {
		s.storeContact(c, ct)
		out = append(out, map[string]any{"id": ct.ID, "request_id": rids[i], "_links": c.href("/api/v4/contacts/" + strconv.Itoa(ct.ID))})
	}
	writeHAL(w, http.StatusOK, map[string]any{"_links": c.href("/api/v4/contacts"), "_embedded": map[string]any{"contacts": out}})
}

func (s *Server) storeContact(c *call, ct *Contact) {
	ct.ID = s.newID()
	ct.CreatedAt, ct.UpdatedAt = c.now.Unix(), c.now.Unix()
	if ct.Name == "" {
		ct.Name = joinName(ct.FirstName, ct.LastName)
	}
	for _, t := range ct.Tags {
		c.a.tagID(t, s.newID)
	}
	c.a.contacts[ct.ID] = ct
}

// parseContact reads a contact model; prefix is the path of the model in
// the item ("_embedded.contacts.0." inside a complex lead).
func (s *Server) parseContact(c *call, m map[string]any, prefix string, e *itemErrs) *Contact {
	ct := &Contact{ResponsibleUserID: c.userID, CreatedBy: c.userID}
	ct.Name, _ = e.str(m, "name", prefix)
	ct.FirstName, _ = e.str(m, "first_name", prefix)
	ct.LastName, _ = e.str(m, "last_name", prefix)
	if id, ok := e.int(m, "responsible_user_id", prefix); ok {
		if c.a.user(id) == nil {
			e.add("NotSupportedChoice", prefix+"responsible_user_id", "The value you selected is not a valid choice.")
		}
		ct.ResponsibleUserID = id
	}
	if id, ok := e.int(m, "created_by", prefix); ok {
		ct.CreatedBy = id
	}
	ct.Phones, ct.Emails, ct.Other = e.customFields(m, prefix)
	ct.Tags = e.tags(m, prefix)
	for _, t := range e.tagNames(m, "tags_to_add") {
		if !slices.Contains(ct.Tags, t) {
			ct.Tags = append(ct.Tags, t)
		}
	}
	return ct
}

// ---- leads ----

func (c *call) leadJSON(l *Lead, with map[string]bool) map[string]any {
	var closed any
	if l.ClosedAt != 0 {
		closed = l.ClosedAt
	}
	emb := map[string]any{"tags": c.tagsJSON(l.Tags), "companies": []any{}}
	if with["contacts"] {
		cs := []map[string]any{}
		for i, id := range l.ContactIDs {
			cs = append(cs, map[string]any{"id": id, "is_main": i == 0, "_links": c.href("/api/v4/contacts/" + strconv.Itoa(id))})
		}
		emb["contacts"] = cs
	}
	return map[string]any{
		"id": l.ID, "name": l.Name, "price": l.Price, "responsible_user_id": l.ResponsibleUserID, "group_id": 0,
		"status_id": l.StatusID, "pipeline_id": l.PipelineID, "loss_reason_id": nil, "created_by": l.CreatedBy,
		"updated_by": 0, "created_at": l.CreatedAt, "updated_at": l.UpdatedAt, "closed_at": closed,
		"closest_task_at": nil, "is_deleted": false, "custom_fields_values": nil, "score": nil,
		"account_id": c.a.spec.ID, "labor_cost": nil,
		"_links": c.href("/api/v4/leads/" + strconv.Itoa(l.ID)), "_embedded": emb,
	}
}

func (s *Server) listLeads(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	page, limit, p := paging(q)
	if p != nil {
		writeProblem(w, p)
		return
	}
	ids := intSet(append(q["filter[id][]"], q["filter[id]"]...))
	for k, v := range q { // filter[id][0]=.. as PHP clients index arrays
		if strings.HasPrefix(k, "filter[id][") {
			for id := range intSet(v) {
				ids[id] = true
			}
		}
	}
	pipes := intSet(q["filter[pipeline_id][]"])
	resp := intSet(q["filter[responsible_user_id][]"])
	with := withSet(r)
	var all []map[string]any
	for _, id := range sortedKeys(c.a.leads) {
		l := c.a.leads[id]
		if (len(ids) > 0 && !ids[id]) || (len(pipes) > 0 && !pipes[l.PipelineID]) || (len(resp) > 0 && !resp[l.ResponsibleUserID]) {
			continue
		}
		if qs := strings.ToLower(q.Get("query")); qs != "" && !strings.Contains(strings.ToLower(l.Name), qs) {
			continue
		}
		if from, err := strconv.ParseInt(q.Get("filter[created_at][from]"), 10, 64); err == nil && l.CreatedAt < from {
			continue
		}
		if to, err := strconv.ParseInt(q.Get("filter[created_at][to]"), 10, 64); err == nil && l.CreatedAt > to {
			continue
		}
		all = append(all, c.leadJSON(l, with))
	}
	// Ids grow with creation time, so the newest first is the ids
	// reversed.
	if q.Get("order[created_at]") == "desc" || q.Get("order[id]") == "desc" {
		slices.Reverse(all)
	}
	writeList(w, r, c, "leads", all, page, limit, nil)
}

func (s *Server) getLead(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := pathID(r)
	l := c.a.leads[id]
	if !ok || l == nil {
		writeNoContent(w)
		return
	}
	writeHAL(w, http.StatusOK, c.leadJSON(l, withSet(r)))
}

// parseLead reads the lead fields shared by POST /leads, complex and
// PATCH. cur is the lead being patched (nil on create).
func (s *Server) parseLead(c *call, m map[string]any, cur *Lead, e *itemErrs) *Lead {
	l := &Lead{ResponsibleUserID: c.userID, CreatedBy: c.userID}
	if cur != nil {
		cp := *cur
		cp.Tags, cp.ContactIDs = slices.Clone(cur.Tags), slices.Clone(cur.ContactIDs)
		l = &cp
	}
	if v, ok := e.str(m, "name", ""); ok {
		l.Name = v
	}
	if v, ok := e.int(m, "price", ""); ok {
		l.Price = v
	}
	if v, ok := e.int(m, "created_by", ""); ok && cur == nil {
		l.CreatedBy = v
	}
	if v, ok := e.int(m, "responsible_user_id", ""); ok {
		if c.a.user(v) == nil {
			e.add("NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice.")
		}
		l.ResponsibleUserID = v
	}
	pid, hasPipe := e.int(m, "pipeline_id", "")
	sid, hasStatus := e.int(m, "status_id", "")
	if hasPipe {
		if c.a.pipeline(pid) == nil {
			e.add("NotSupportedChoice", "pipeline_id", "The value you selected is not a valid choice.")
			return l
		}
		l.PipelineID = pid
	} else if cur == nil {
		if mp := c.a.mainPipeline(); mp != nil {
			l.PipelineID = mp.ID
		}
	}
	pipe := c.a.pipeline(l.PipelineID)
	switch {
	case pipe == nil:
		e.add("NotSupportedChoice", "pipeline_id", "The value you selected is not a valid choice.")
	case hasStatus:
		if !pipe.hasStatus(sid) {
			e.add("NotSupportedChoice", "status_id", "The value you selected is not a valid choice.")
		}
		l.StatusID = sid
	case cur == nil || hasPipe:
		l.StatusID = pipe.firstStage()
	}
	if tags := e.tags(m, ""); tags != nil {
		l.Tags = tags
	}
	for _, t := range e.tagNames(m, "tags_to_add") {
		if !slices.Contains(l.Tags, t) {
			l.Tags = append(l.Tags, t)
		}
	}
	for _, t := range e.tagNames(m, "tags_to_delete") {
		l.Tags = slices.DeleteFunc(l.Tags, func(x string) bool { return x == t })
	}
	return l
}

func (s *Server) storeLead(c *call, l *Lead) {
	l.ID = s.newID()
	l.CreatedAt, l.UpdatedAt = c.now.Unix(), c.now.Unix()
	if !l.Open() {
		l.ClosedAt = c.now.Unix()
	}
	for _, t := range l.Tags {
		c.a.tagID(t, s.newID)
	}
	c.a.leads[l.ID] = l
	for _, cid := range l.ContactIDs {
		if ct := c.a.contacts[cid]; ct != nil && !slices.Contains(ct.LeadIDs, l.ID) {
			ct.LeadIDs = append(ct.LeadIDs, l.ID)
		}
	}
}

func (s *Server) createLeads(w http.ResponseWriter, r *http.Request, c *call) {
	items, p := decodeBatch(c.body, 250)
	if p != nil {
		writeProblem(w, p)
		return
	}
	var parsed []*Lead
	var rids []string
	var verrs []ValidationError
	for i, it := range items {
		e := &itemErrs{rid: requestID(it, i)}
		l := s.parseLead(c, it, nil, e)
		emb, _ := it["_embedded"].(map[string]any)
		cs, _ := emb["contacts"].([]any)
		for j, x := range cs {
			cm, _ := x.(map[string]any)
			id, ok := e.int(cm, "id", "_embedded.contacts."+strconv.Itoa(j)+".")
			switch {
			case !ok:
				e.add("FieldMissing", "_embedded.contacts."+strconv.Itoa(j)+".id", "This field is missing.")
			case c.a.contacts[id] == nil:
				e.add("NotFound", "_embedded.contacts."+strconv.Itoa(j)+".id", "Entity not found.")
			default:
				l.ContactIDs = append(l.ContactIDs, id)
			}
		}
		if e.failed() {
			verrs = append(verrs, e.result())
			continue
		}
		parsed = append(parsed, l)
		rids = append(rids, e.rid)
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs)
		return
	}
	var out []map[string]any
	for i, l := range parsed {
		s.storeLead(c, l)
		out = append(out, map[string]any{"id": l.ID, "request_id": rids[i], "_links": c.href("/api/v4/leads/" + strconv.Itoa(l.ID))})
	}
	writeHAL(w, http.StatusOK, map[string]any{"_links": c.href("/api/v4/leads"), "_embedded": map[string]any{"leads": out}})
}

// complexLeads is POST /api/v4/leads/complex: up to 50 leads, each with at
// most one contact (a full model or {id}); the answer is a bare array.
func (s *Server) complexLeads(w http.ResponseWriter, r *http.Request, c *call) {
	items, p := decodeBatch(c.body, MaxComplex)
	if p != nil {
		writeProblem(w, p)
		return
	}
	type pending struct {
		lead    *Lead
		contact *Contact
		rid     string
	}
	var todo []pending
	var verrs []ValidationError
	for i, it := range items {
		e := &itemErrs{rid: requestID(it, i)}
		l := s.parseLead(c, it, nil, e)
		var ct *Contact
		emb, _ := it["_embedded"].(map[string]any)
		if _, unsorted := emb["metadata"]; unsorted {
			if pipe := c.a.pipeline(l.PipelineID); pipe != nil {
				for _, st := range pipe.Statuses {
					if st.Type == 1 {
						l.StatusID = st.ID
					}
				}
			}
		}
		cs, _ := emb["contacts"].([]any)
		if len(cs) > 1 {
			e.add("InvalidCount", "_embedded.contacts", "This collection should contain 1 element or less.")
		}
		if len(cs) == 1 {
			cm, _ := cs[0].(map[string]any)
			if cm == nil {
				e.add("InvalidType", "_embedded.contacts.0", "This value should be of type object.")
			} else if id, ok := e.int(cm, "id", "_embedded.contacts.0."); ok {
				if c.a.contacts[id] == nil {
					e.add("NotFound", "_embedded.contacts.0.id", "Entity not found.")
				}
				l.ContactIDs = []int{id}
			} else {
				ct = s.parseContact(c, cm, "_embedded.contacts.0.", e)
			}
		}
		if e.failed() {
			verrs = append(verrs, e.result())
			continue
		}
		todo = append(todo, pending{l, ct, e.rid})
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs)
		return
	}
	var out []map[string]any
	for _, t := range todo {
		var contactID any
		if t.contact != nil {
			s.storeContact(c, t.contact)
			t.lead.ContactIDs = []int{t.contact.ID}
		}
		s.storeLead(c, t.lead)
		if len(t.lead.ContactIDs) > 0 {
			contactID = t.lead.ContactIDs[0]
		}
		out = append(out, map[string]any{"id": t.lead.ID, "contact_id": contactID, "company_id": nil,
			"request_id": []string{t.rid}, "merged": false})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(mustJSON(out))
}

func (s *Server) patchLead(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := pathID(r)
	cur := c.a.leads[id]
	if !ok || cur == nil {
		writeProblem(w, problem(http.StatusNotFound, "Not Found", "Lead not found"))
		return
	}
	m, p := decodeObject(c.body)
	if p != nil {
		writeProblem(w, p)
		return
	}
	e := &itemErrs{rid: "0"}
	l := s.parseLead(c, m, cur, e)
	if e.failed() {
		writeValidation(w, []ValidationError{e.result()})
		return
	}
	s.updateLead(c, cur, l)
	writeHAL(w, http.StatusOK, map[string]any{"id": cur.ID, "updated_at": cur.UpdatedAt, "_links": c.href("/api/v4/leads/" + strconv.Itoa(cur.ID))})
}

func (s *Server) patchLeads(w http.ResponseWriter, r *http.Request, c *call) {
	items, p := decodeBatch(c.body, 250)
	if p != nil {
		writeProblem(w, p)
		return
	}
	type pair struct{ cur, next *Lead }
	var todo []pair
	var verrs []ValidationError
	for i, it := range items {
		e := &itemErrs{rid: requestID(it, i)}
		id, ok := e.int(it, "id", "")
		cur := c.a.leads[id]
		if !ok || cur == nil {
			e.add("NotFound", "id", "Entity not found.")
			verrs = append(verrs, e.result())
			continue
		}
		l := s.parseLead(c, it, cur, e)
		if e.failed() {
			verrs = append(verrs, e.result())
			continue
		}
		todo = append(todo, pair{cur, l})
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs)
		return
	}
	var out []map[string]any
	for _, t := range todo {
		s.updateLead(c, t.cur, t.next)
		out = append(out, map[string]any{"id": t.cur.ID, "updated_at": t.cur.UpdatedAt, "_links": c.href("/api/v4/leads/" + strconv.Itoa(t.cur.ID))})
	}
	writeHAL(w, http.StatusOK, map[string]any{"_links": c.href("/api/v4/leads"), "_embedded": map[string]any{"leads": out}})
}

func (s *Server) updateLead(c *call, cur, next *Lead) {
	wasOpen := cur.Open()
	id, created := cur.ID, cur.CreatedAt
	*cur = *next
	cur.ID, cur.CreatedAt, cur.UpdatedAt = id, created, c.now.Unix()
	switch {
	case wasOpen && !cur.Open():
		cur.ClosedAt = c.now.Unix()
	case cur.Open():
		cur.ClosedAt = 0
	}
	for _, t := range cur.Tags {
		c.a.tagID(t, s.newID)
	}
}

// ---- notes ----

// noteParams lists the params each writable note type needs (contract
// §2.9).
var noteParams = map[string][]string{
	"common":                   {"text"},
	"service_message":          {"service", "text"},
	"extended_service_message": {"service", "text"},
	"message_cashier":          {"status", "text"},
	"sms_in":                   {"text", "phone"},
	"sms_out":                  {"text", "phone"},
	"call_in":                  {"uniq", "duration", "source", "phone"},
	"call_out":                 {"uniq", "duration", "source", "phone"},
	"geolocation":              {"text", "address", "longitude", "latitude"},
	"attachment":               {"file_uuid", "file_name"},
}

func (s *Server) notesHandler(entity string) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		pathEntity := 0
		if r.PathValue("id") != "" {
			id, ok := pathID(r)
			if !ok || c.a.leads[id] == nil {
				writeProblem(w, problem(http.StatusNotFound, "Not Found", "Entity not found"))
				return
			}
			pathEntity = id
		}
		items, p := decodeBatch(c.body, 250)
		if p != nil {
			writeProblem(w, p)
			return
		}
		var parsed []*Note
		var verrs []ValidationError
		for i, it := range items {
			e := &itemErrs{rid: requestID(it, i)}
			n := &Note{EntityType: entity, EntityID: pathEntity, CreatedBy: c.userID, RequestID: e.rid}
			if pathEntity == 0 {
				id, ok := e.int(it, "entity_id", "")
				exists := (entity == "leads" && c.a.leads[id] != nil) || (entity == "contacts" && c.a.contacts[id] != nil)
				switch {
				case !ok && !e.failed():
					e.add("FieldMissing", "entity_id", "This field is missing.")
				case ok && !exists:
					e.add("NotFound", "entity_id", "Entity not found.")
				}
				n.EntityID = id
			}
			if v, ok := e.int(it, "created_by", ""); ok {
				n.CreatedBy = v
			}
			typ, ok := e.str(it, "note_type", "")
			need, known := noteParams[typ]
			switch {
			case !ok:
				e.add("FieldMissing", "note_type", "This field is missing.")
			case !known:
				e.add("NotSupportedChoice", "note_type", "The value you selected is not a valid choice.")
			}
			n.NoteType = typ
			params, isObj := it["params"].(map[string]any)
			if known && !isObj {
				e.add("FieldMissing", "params", "This field is missing.")
			}
			if known && isObj {
				for _, k := range need {
					v, present := params[k]
					str, isStr := v.(string)
					switch {
					case !present || v == nil || (isStr && str == ""):
						e.add("FieldMissing", "params."+k, "This field is missing.")
					case k == "text" && isStr && len([]rune(str)) > s.opts.NoteTextLimit:
						e.add("InvalidLength", "params.text", "This value is too long. It should have "+strconv.Itoa(s.opts.NoteTextLimit)+" characters or less.")
					}
				}
				n.Params = plainParams(params)
			}
			if e.failed() {
				verrs = append(verrs, e.result())
				continue
			}
			parsed = append(parsed, n)
		}
		if len(verrs) > 0 {
			writeValidation(w, verrs)
			return
		}
		var out []map[string]any
		for _, n := range parsed {
			n.ID = s.newID()
			n.CreatedAt = c.now.Unix()
			c.a.notes = append(c.a.notes, n)
			out = append(out, map[string]any{"id": n.ID, "entity_id": n.EntityID, "request_id": n.RequestID,
				"_links": c.href("/api/v4/" + entity + "/" + strconv.Itoa(n.EntityID) + "/notes/" + strconv.Itoa(n.ID))})
		}
		writeHAL(w, http.StatusOK, map[string]any{"_links": c.href(r.URL.Path), "_embedded": map[string]any{"notes": out}})
	}
}

// plainParams turns json.Number values back into numbers for inspection.
func plainParams(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				out[k] = i
				continue
			}
			f, _ := n.Float64()
			out[k] = f
			continue
		}
		out[k] = v
	}
	return out
}

func (s *Server) listNotes(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := pathID(r)
	if !ok || c.a.leads[id] == nil {
		writeNoContent(w)
		return
	}
	page, limit, p := paging(r.URL.Query())
	if p != nil {
		writeProblem(w, p)
		return
	}
	types := map[string]bool{}
	for _, t := range r.URL.Query()["filter[note_type][]"] {
		types[t] = true
	}
	var all []map[string]any
	for _, n := range c.a.notes {
		if n.EntityType != "leads" || n.EntityID != id || (len(types) > 0 && !types[n.NoteType]) {
			continue
		}
		all = append(all, map[string]any{"id": n.ID, "entity_id": n.EntityID, "created_by": n.CreatedBy,
			"updated_by": n.CreatedBy, "created_at": n.CreatedAt, "updated_at": n.CreatedAt,
			"responsible_user_id": n.CreatedBy, "group_id": 0, "note_type": n.NoteType, "params": n.Params,
			"account_id": c.a.spec.ID, "_links": c.href("/api/v4/leads/" + strconv.Itoa(id) + "/notes/" + strconv.Itoa(n.ID))})
	}
	writeList(w, r, c, "notes", all, page, limit, nil)
}

// ---- tasks ----

func (s *Server) createTasks(w http.ResponseWriter, r *http.Request, c *call) {
	items, p := decodeBatch(c.body, 250)
	if p != nil {
		writeProblem(w, p)
		return
	}
	var parsed []*Task
	var rids []string
	var verrs []ValidationError
	for i, it := range items {
		e := &itemErrs{rid: requestID(it, i)}
		t := &Task{ResponsibleUserID: c.userID, CreatedBy: c.userID, TaskTypeID: 1, CreatedAt: c.now.Unix()}
		if v, ok := e.str(it, "text", ""); !ok || v == "" {
			if !e.failed() {
				e.add("FieldMissing", "text", "This field is missing.")
			}
		} else {
			t.Text = v
		}
		if v, ok := e.int(it, "complete_till", ""); ok {
			t.CompleteTill = int64(v)
		} else if !e.has("complete_till") {
			e.add("FieldMissing", "complete_till", "This field is missing.")
		}
		if v, ok := e.int(it, "responsible_user_id", ""); ok {
			if c.a.user(v) == nil {
				e.add("NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice.")
			}
			t.ResponsibleUserID = v
		}
		if v, ok := e.int(it, "task_type_id", ""); ok {
			if v != 1 && v != 2 {
				e.add("NotSupportedChoice", "task_type_id", "The value you selected is not a valid choice.")
			}
			t.TaskTypeID = v
		}
		if v, ok := e.str(it, "entity_type", ""); ok {
			if v != "leads" && v != "contacts" {
				e.add("NotSupportedChoice", "entity_type", "The value you selected is not a valid choice.")
			}
			t.EntityType = v
		}
		if v, ok := e.int(it, "entity_id", ""); ok {
			exists := (t.EntityType == "leads" && c.a.leads[v] != nil) || (t.EntityType == "contacts" && c.a.contacts[v] != nil)
			if !exists {
				e.add("NotFound", "entity_id", "Entity not found.")
			}
			t.EntityID = v
		}
		if e.failed() {
			verrs = append(verrs, e.result())
			continue
		}
		parsed = append(parsed, t)
		rids = append(rids, e.rid)
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs)
		return
	}
	var out []map[string]any
	for i, t := range parsed {
		t.ID = s.newID()
		c.a.tasks = append(c.a.tasks, t)
		out = append(out, map[string]any{"id": t.ID, "request_id": rids[i], "_links": c.href("/api/v4/tasks/" + strconv.Itoa(t.ID))})
	}
	writeHAL(w, http.StatusOK, map[string]any{"_links": c.href("/api/v4/tasks"), "_embedded": map[string]any{"tasks": out}})
}

// patchTasks updates tasks (PATCH /api/v4/tasks, an array with ids): the
// fields an integration changes, chiefly is_completed with its result. As
// in amoCRM a result goes only with is_completed true and needs its text;
// an unknown id refuses the whole batch, which changes nothing.
func (s *Server) patchTasks(w http.ResponseWriter, r *http.Request, c *call) {
	items, p := decodeBatch(c.body, 250)
	if p != nil {
		writeProblem(w, p)
		return
	}
	type change struct {
		t          *Task
		text       *string
		till       *int64
		completed  *bool
		resultText string
	}
	var todo []change
	var verrs []ValidationError
	for i, it := range items {
		e := &itemErrs{rid: requestID(it, i)}
		id, ok := e.int(it, "id", "")
		var cur *Task
		for _, t := range c.a.tasks {
			if ok && t.ID == id {
				cur = t
			}
		}
		if cur == nil {
			if !e.has("id") {
				e.add("NotFound", "id", "Entity not found.")
			}
			verrs = append(verrs, e.result())
			continue
		}
		ch := change{t: cur}
		if v, ok := e.str(it, "text", ""); ok {
			if v == "" {
				e.add("NotBlank", "text", "This value should not be blank.")
			}
			ch.text = &v
		}
		if v, ok := e.int(it, "complete_till", ""); ok {
			till := int64(v)
			ch.till = &till
		}
		if v, ok := it["is_completed"]; ok && v != nil {
			b, isBool := v.(bool)
			if !isBool {
				e.add("InvalidType", "is_completed", "This value should be of type bool.")
			}
			ch.completed = &b
		}
		if v, ok := it["result"]; ok && v != nil {
			res, isObj := v.(map[string]any)
			switch {
			case !isObj:
				e.add("InvalidType", "result", "This value should be of type object.")
			case ch.completed == nil || !*ch.completed:
				e.add("NotSupportedChoice", "result", "A result is given only when the task is completed.")
			default:
				if txt, ok := e.str(res, "text", "result."); !ok || txt == "" {
					if !e.has("result.text") {
						e.add("FieldMissing", "result.text", "This field is missing.")
					}
				} else {
					ch.resultText = txt
				}
			}
		}
		if e.failed() {
			verrs = append(verrs, e.result())
			continue
		}
		todo = append(todo, ch)
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs)
		return
	}
	var out []map[string]any
	for _, ch := range todo {
		t := ch.t
		if ch.text != nil {
			t.Text = *ch.text
		}
		if ch.till != nil {
			t.CompleteTill = *ch.till
		}
		if ch.completed != nil {
			t.IsCompleted = *ch.completed
			if *ch.completed {
				t.Completions++
				if ch.resultText != "" {
					t.ResultText = ch.resultText
				}
			}
		}
		t.UpdatedAt = c.now.Unix()
		out = append(out, map[string]any{"id": t.ID, "updated_at": t.UpdatedAt, "_links": c.href("/api/v4/tasks/" + strconv.Itoa(t.ID))})
	}
	writeHAL(w, http.StatusOK, map[string]any{"_links": c.href("/api/v4/tasks"), "_embedded": map[string]any{"tasks": out}})
}
