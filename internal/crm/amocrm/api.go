package amocrm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Closed statuses, the same ids in every pipeline (contract §2.6).
const (
	StatusWon  = 142
	StatusLost = 143
)

// API is the client bound to one account.
type API struct {
	c *Client
	a Account
}

// For binds the client to an account.
func (c *Client) For(a Account) *API { return &API{c: c, a: a} }

// AccountInfo is GET /api/v4/account?with=amojo_id,datetime_settings.
type AccountInfo struct {
	ID             int    `json:"id"`
	Name           string `json:"name"`
	Subdomain      string `json:"subdomain"`
	CurrentUserID  int    `json:"current_user_id"`
	Country        string `json:"country"`
	AmojoID        string `json:"amojo_id"`
	Timezone       string `json:"-"`
	TimezoneOffset string `json:"-"`
	Embedded       struct {
		DatetimeSettings struct {
			Timezone       string `json:"timezone"`
			TimezoneOffset string `json:"timezone_offset"`
		} `json:"datetime_settings"`
	} `json:"_embedded"`
}

// Account reads the account: id, subdomain, amojo id and time zone.
func (p *API) Account(ctx context.Context) (*AccountInfo, error) {
	var out AccountInfo
	found, err := p.c.getJSON(ctx, p.a, "/api/v4/account", url.Values{"with": {"amojo_id,datetime_settings"}}, &out)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("amocrm: GET /api/v4/account: empty answer")
	}
	out.Timezone = out.Embedded.DatetimeSettings.Timezone
	out.TimezoneOffset = out.Embedded.DatetimeSettings.TimezoneOffset
	return &out, nil
}

// User is an account user.
type User struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Lang    string `json:"lang"`
	AmojoID string `json:"amojo_id"`
	Rights  struct {
		IsAdmin  bool `json:"is_admin"`
		IsActive bool `json:"is_active"`
		IsFree   bool `json:"is_free"`
		GroupID  *int `json:"group_id"`
	} `json:"rights"`
}

// Users lists all users (admin rights needed), with their amojo ids. Only
// Rights.IsActive users may be made responsible for leads.
func (p *API) Users(ctx context.Context) ([]User, error) {
	var out []User
	err := p.c.List(ctx, p.a, "/api/v4/users", url.Values{"with": {"amojo_id"}, "limit": {strconv.Itoa(PageLimit)}}, "users",
		func(raw json.RawMessage) error {
			var u User
			if err := json.Unmarshal(raw, &u); err != nil {
				return fmt.Errorf("amocrm: user: %w", err)
			}
			out = append(out, u)
			return nil
		})
	return out, err
}

// Pipeline is a lead pipeline with its statuses.
type Pipeline struct {
	ID           int      `json:"id"`
	Name         string   `json:"name"`
	Sort         int      `json:"sort"`
	IsMain       bool     `json:"is_main"`
	IsUnsortedOn bool     `json:"is_unsorted_on"`
	IsArchive    bool     `json:"is_archive"`
	Statuses     []Status `json:"-"`
	Embedded     struct {
		Statuses []Status `json:"statuses"`
	} `json:"_embedded"`
}

// Status is a pipeline stage; Type 1 is the unsorted stage.
type Status struct {
	ID         int    `json:"id"`
	Name       string `json:"name"`
	Sort       int    `json:"sort"`
	Type       int    `json:"type"`
	PipelineID int    `json:"pipeline_id"`
	Color      string `json:"color"`
}

// Closed reports whether the status closes a lead (won or lost).
func (s Status) Closed() bool { return s.ID == StatusWon || s.ID == StatusLost }

// Pipelines lists the account's pipelines with their statuses.
func (p *API) Pipelines(ctx context.Context) ([]Pipeline, error) {
	var out []Pipeline
	err := p.c.List(ctx, p.a, "/api/v4/leads/pipelines", nil, "pipelines", func(raw json.RawMessage) error {
		var pl Pipeline
		if err := json.Unmarshal(raw, &pl); err != nil {
			return fmt.Errorf("amocrm: pipeline: %w", err)
		}
		pl.Statuses = pl.Embedded.Statuses
		out = append(out, pl)
		return nil
	})
	return out, err
}

// FieldValues is one custom field of an entity: PHONE and EMAIL by
// FieldCode on write, any field by FieldID.
type FieldValues struct {
	FieldID   int          `json:"field_id,omitempty"`
	FieldName string       `json:"field_name,omitempty"`
	FieldCode string       `json:"field_code,omitempty"`
	FieldType string       `json:"field_type,omitempty"`
	Values    []FieldValue `json:"values"`
}

// FieldValue is one value; the enum by EnumCode (MOB, WORK...) or EnumID.
type FieldValue struct {
	Value    string `json:"value"`
	EnumID   int    `json:"enum_id,omitempty"`
	EnumCode string `json:"enum_code,omitempty"`
}

// UnmarshalJSON accepts non-string values (numbers, booleans of other
// field types) as their JSON text.
func (v *FieldValue) UnmarshalJSON(b []byte) error {
	var raw struct {
		Value    json.RawMessage `json:"value"`
		EnumID   int             `json:"enum_id"`
		EnumCode string          `json:"enum_code"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	v.EnumID, v.EnumCode = raw.EnumID, raw.EnumCode
	if err := json.Unmarshal(raw.Value, &v.Value); err != nil {
		v.Value = string(raw.Value)
	}
	return nil
}

// Phone is a PHONE field with one value.
func Phone(value, enumCode string) FieldValues {
	return FieldValues{FieldCode: "PHONE", Values: []FieldValue{{Value: value, EnumCode: enumCode}}}
}

// Tag names a tag (or an existing one by id).
type Tag struct {
	ID   int    `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// EntityLink is a linked entity in _embedded (a lead's contact, a
// contact's lead).
type EntityLink struct {
	ID     int  `json:"id"`
	IsMain bool `json:"is_main,omitempty"`
}

// Contact is a contact as amoCRM returns it.
type Contact struct {
	ID                int           `json:"id"`
	Name              string        `json:"name"`
	FirstName         string        `json:"first_name"`
	LastName          string        `json:"last_name"`
	ResponsibleUserID int           `json:"responsible_user_id"`
	CreatedAt         int64         `json:"created_at"`
	UpdatedAt         int64         `json:"updated_at"`
	CustomFields      []FieldValues `json:"custom_fields_values"`
	Embedded          struct {
		Tags  []Tag        `json:"tags"`
		Leads []EntityLink `json:"leads"`
	} `json:"_embedded"`
}

// Values returns the values of the field with this code (PHONE, EMAIL).
func (c *Contact) Values(fieldCode string) []string {
	var out []string
	for _, f := range c.CustomFields {
		if strings.EqualFold(f.FieldCode, fieldCode) {
			for _, v := range f.Values {
				out = append(out, v.Value)
			}
		}
	}
	return out
}

// LeadIDs returns the ids of the contact's leads (read with leads).
func (c *Contact) LeadIDs() []int {
	var out []int
	for _, l := range c.Embedded.Leads {
		out = append(out, l.ID)
	}
	return out
}

// SearchContacts is GET /api/v4/contacts?query=: amoCRM's text search over
// every filled field. For phones it matches the query's digits inside the
// stored digits, so search the national number and confirm on the PHONE
// values (the search also hits other fields holding those digits) with
// internal/phone's Same under the workspace's rule. withLeads adds each contact's lead ids.
func (p *API) SearchContacts(ctx context.Context, query string, withLeads bool) ([]Contact, error) {
	q := url.Values{"query": {query}, "limit": {strconv.Itoa(PageLimit)}}
	if withLeads {
		q.Set("with", "leads")
	}
	var out []Contact
	err := p.c.List(ctx, p.a, "/api/v4/contacts", q, "contacts", func(raw json.RawMessage) error {
		var c Contact
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("amocrm: contact: %w", err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// GetContact reads one contact; found is false when amoCRM has no such id
// (204).
func (p *API) GetContact(ctx context.Context, id int, withLeads bool) (c *Contact, found bool, err error) {
	q := url.Values{}
	if withLeads {
		q.Set("with", "leads")
	}
	var out Contact
	found, err = p.c.getJSON(ctx, p.a, "/api/v4/contacts/"+strconv.Itoa(id), q, &out)
	if err != nil || !found {
		return nil, found, err
	}
	return &out, true, nil
}

// ContactInput is a contact to create (alone or inside a complex lead).
type ContactInput struct {
	ID                int           `json:"id,omitempty"` // an existing contact, inside a lead
	Name              string        `json:"name,omitempty"`
	FirstName         string        `json:"first_name,omitempty"`
	LastName          string        `json:"last_name,omitempty"`
	ResponsibleUserID int           `json:"responsible_user_id,omitempty"`
	CreatedBy         *int          `json:"created_by,omitempty"`
	CustomFields      []FieldValues `json:"custom_fields_values,omitempty"`
	TagsToAdd         []Tag         `json:"tags_to_add,omitempty"`
	RequestID         string        `json:"request_id,omitempty"`
}

// Created is one item of a create answer.
type Created struct {
	ID        int    `json:"id"`
	EntityID  int    `json:"entity_id,omitempty"` // notes
	RequestID string `json:"request_id"`
}

// createMany posts items in batches of MaxBatch and collects the created
// ids, in input order.
func createMany[T any](ctx context.Context, p *API, path, key string, items []T) ([]Created, error) {
	var out []Created
	for len(items) > 0 {
		n := min(len(items), MaxBatch)
		var resp struct {
			Embedded map[string][]Created `json:"_embedded"`
		}
		if err := p.c.sendJSON(ctx, p.a, http.MethodPost, path, items[:n], &resp); err != nil {
			return out, err
		}
		got := resp.Embedded[key]
		if len(got) != n {
			return out, fmt.Errorf("amocrm: POST %s: %d items created for %d sent", path, len(got), n)
		}
		out = append(out, got...)
		items = items[n:]
	}
	return out, nil
}

// CreateContacts creates contacts.
func (p *API) CreateContacts(ctx context.Context, cs []ContactInput) ([]Created, error) {
	return createMany(ctx, p, "/api/v4/contacts", "contacts", cs)
}

// Lead is a lead as amoCRM returns it.
type Lead struct {
	ID                int    `json:"id"`
	Name              string `json:"name"`
	Price             int    `json:"price"`
	ResponsibleUserID int    `json:"responsible_user_id"`
	StatusID          int    `json:"status_id"`
	PipelineID        int    `json:"pipeline_id"`
	CreatedAt         int64  `json:"created_at"`
	UpdatedAt         int64  `json:"updated_at"`
	ClosedAt          *int64 `json:"closed_at"`
	Embedded          struct {
		Tags     []Tag        `json:"tags"`
		Contacts []EntityLink `json:"contacts"`
	} `json:"_embedded"`
}

// Open reports whether the lead is not closed.
func (l *Lead) Open() bool { return l.StatusID != StatusWon && l.StatusID != StatusLost }

// LeadInput is a lead to create; for POST /leads/complex Embedded.Contacts
// holds at most one contact (a full model or just its ID).
type LeadInput struct {
	Name              string     `json:"name,omitempty"`
	Price             *int       `json:"price,omitempty"`
	PipelineID        int        `json:"pipeline_id,omitempty"`
	StatusID          int        `json:"status_id,omitempty"`
	ResponsibleUserID int        `json:"responsible_user_id,omitempty"`
	CreatedBy         *int       `json:"created_by,omitempty"`
	Embedded          *LeadEmbed `json:"_embedded,omitempty"`
	RequestID         string     `json:"request_id,omitempty"`
}

// LeadEmbed is what a lead to create embeds.
type LeadEmbed struct {
	Tags     []Tag          `json:"tags,omitempty"`
	Contacts []ContactInput `json:"contacts,omitempty"`
}

// ComplexResult is one item of the bare array POST /leads/complex answers.
type ComplexResult struct {
	ID         int      `json:"id"`
	ContactID  *int     `json:"contact_id"`
	CompanyID  *int     `json:"company_id"`
	RequestIDs []string `json:"request_id"`
	Merged     bool     `json:"merged"`
}

// CreateLeadsComplex creates leads with their contacts in one call per 50
// leads. Validation errors name the failing leads by request_id (see
// ItemErrors); nothing of a refused call is created.
func (p *API) CreateLeadsComplex(ctx context.Context, leads []LeadInput) ([]ComplexResult, error) {
	var out []ComplexResult
	for len(leads) > 0 {
		n := min(len(leads), MaxComplex)
		var got []ComplexResult
		if err := p.c.sendJSON(ctx, p.a, http.MethodPost, "/api/v4/leads/complex", leads[:n], &got); err != nil {
			return out, err
		}
		if len(got) == 0 {
			return out, fmt.Errorf("amocrm: POST /api/v4/leads/complex: empty answer for %d leads", n)
		}
		out = append(out, got...)
		leads = leads[n:]
	}
	return out, nil
}

// CreateLeads creates leads linked to existing contacts.
func (p *API) CreateLeads(ctx context.Context, leads []LeadInput) ([]Created, error) {
	return createMany(ctx, p, "/api/v4/leads", "leads", leads)
}

// LeadFilter narrows Leads.
type LeadFilter struct {
	IDs          []int
	PipelineIDs  []int
	WithContacts bool
}

// Leads lists leads matching f, all pages.
func (p *API) Leads(ctx context.Context, f LeadFilter) ([]Lead, error) {
	q := url.Values{"limit": {strconv.Itoa(PageLimit)}}
	for _, id := range f.IDs {
		q.Add("filter[id][]", strconv.Itoa(id))
	}
	for _, id := range f.PipelineIDs {
		q.Add("filter[pipeline_id][]", strconv.Itoa(id))
	}
	if f.WithContacts {
		q.Set("with", "contacts")
	}
	var out []Lead
	err := p.c.List(ctx, p.a, "/api/v4/leads", q, "leads", func(raw json.RawMessage) error {
		var l Lead
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("amocrm: lead: %w", err)
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// RecentLeads lists, newest first, one page (RecentLimit) of the leads
// created since the given time (unix seconds), in the pipeline (0: any),
// with their contacts.
func (p *API) RecentLeads(ctx context.Context, pipelineID int, since int64) ([]Lead, error) {
	q := url.Values{"limit": {strconv.Itoa(RecentLimit)}, "order[created_at]": {"desc"}, "with": {"contacts"},
		"filter[created_at][from]": {strconv.FormatInt(since, 10)}}
	if pipelineID != 0 {
		q.Add("filter[pipeline_id][]", strconv.Itoa(pipelineID))
	}
	var page struct {
		Embedded struct {
			Leads []Lead `json:"leads"`
		} `json:"_embedded"`
	}
	if _, err := p.c.getJSON(ctx, p.a, "/api/v4/leads", q, &page); err != nil {
		return nil, err
	}
	return page.Embedded.Leads, nil
}

// RecentLimit bounds RecentLeads to one full page: a lead made minutes
// ago is among the few newest of its pipeline.
const RecentLimit = PageLimit

// GetLead reads one lead; found is false for an unknown id (204).
func (p *API) GetLead(ctx context.Context, id int, withContacts bool) (l *Lead, found bool, err error) {
	q := url.Values{}
	if withContacts {
		q.Set("with", "contacts")
	}
	var out Lead
	found, err = p.c.getJSON(ctx, p.a, "/api/v4/leads/"+strconv.Itoa(id), q, &out)
	if err != nil || !found {
		return nil, found, err
	}
	return &out, true, nil
}

// LeadPatch changes a lead: move it (StatusID with PipelineID), hand it
// to another user, tag it.
type LeadPatch struct {
	ID                int    `json:"id,omitempty"`
	Name              string `json:"name,omitempty"`
	StatusID          int    `json:"status_id,omitempty"`
	PipelineID        int    `json:"pipeline_id,omitempty"`
	ResponsibleUserID int    `json:"responsible_user_id,omitempty"`
	TagsToAdd         []Tag  `json:"tags_to_add,omitempty"`
	TagsToDelete      []Tag  `json:"tags_to_delete,omitempty"`
	RequestID         string `json:"request_id,omitempty"`
}

// UpdateLead patches one lead.
func (p *API) UpdateLead(ctx context.Context, id int, patch LeadPatch) error {
	patch.ID = 0
	return p.c.sendJSON(ctx, p.a, http.MethodPatch, "/api/v4/leads/"+strconv.Itoa(id), patch, nil)
}

// UpdateLeads patches several leads (each patch carries its ID).
func (p *API) UpdateLeads(ctx context.Context, patches []LeadPatch) error {
	for len(patches) > 0 {
		n := min(len(patches), MaxBatch)
		if err := p.c.sendJSON(ctx, p.a, http.MethodPatch, "/api/v4/leads", patches[:n], nil); err != nil {
			return err
		}
		patches = patches[n:]
	}
	return nil
}

// Note types the gateway writes (contract §2.9).
const (
	NoteCommon          = "common"
	NoteServiceMessage  = "service_message"
	NoteExtendedService = "extended_service_message"
)

// NoteTextLimit is the longest note text the client sends: amoCRM
// documents no limit, so stay far below any text column (contract §2.9,
// unsure); SplitText cuts longer transcripts.
const NoteTextLimit = 4000

// NoteInput is a note to add.
type NoteInput struct {
	EntityID  int        `json:"entity_id"`
	NoteType  string     `json:"note_type"`
	CreatedBy *int       `json:"created_by,omitempty"`
	Params    NoteParams `json:"params"`
	RequestID string     `json:"request_id,omitempty"`
}

// NoteParams are the params of common and service notes.
type NoteParams struct {
	Service string `json:"service,omitempty"`
	Text    string `json:"text"`
}

// AddNotes adds notes to leads (entityType "leads") or contacts.
func (p *API) AddNotes(ctx context.Context, entityType string, notes []NoteInput) ([]Created, error) {
	if entityType != "leads" && entityType != "contacts" {
		return nil, fmt.Errorf("amocrm: notes of %q", entityType)
	}
	for i, n := range notes {
		if len([]rune(n.Params.Text)) > NoteTextLimit {
			return nil, fmt.Errorf("amocrm: note %d: text longer than %d characters (split it with SplitText)", i, NoteTextLimit)
		}
	}
	return createMany(ctx, p, "/api/v4/"+entityType+"/notes", "notes", notes)
}

// SplitText cuts text into pieces of at most limit characters, at a line
// break where one is near the end of a piece, else at a space, else hard.
func SplitText(text string, limit int) []string {
	if limit <= 0 {
		limit = NoteTextLimit
	}
	r := []rune(text)
	var out []string
	for len(r) > limit {
		cut := limit
		for i := limit; i > limit*3/4; i-- {
			if r[i-1] == '\n' {
				cut = i
				break
			}
		}
		if cut == limit {
			for i := limit; i > limit*3/4; i-- {
				if r[i-1] == ' ' {
					cut = i
					break
				}
			}
		}
		out = append(out, string(r[:cut]))
		r = r[cut:]
	}
	return append(out, string(r))
}

// TaskInput is a task to create.
type TaskInput struct {
	TaskTypeID        int    `json:"task_type_id,omitempty"`
	Text              string `json:"text"`
	CompleteTill      int64  `json:"complete_till"`
	EntityID          int    `json:"entity_id,omitempty"`
	EntityType        string `json:"entity_type,omitempty"`
	ResponsibleUserID int    `json:"responsible_user_id,omitempty"`
	RequestID         string `json:"request_id,omitempty"`
}

// AddTasks creates tasks.
func (p *API) AddTasks(ctx context.Context, tasks []TaskInput) ([]Created, error) {
	return createMany(ctx, p, "/api/v4/tasks", "tasks", tasks)
}

// TaskCompletion completes one task: PATCH /api/v4/tasks takes
// is_completed with the result amoCRM shows under the closed task.
type TaskCompletion struct {
	ID          int        `json:"id"`
	IsCompleted bool       `json:"is_completed"`
	Result      TaskResult `json:"result"`
	RequestID   string     `json:"request_id,omitempty"`
}

// TaskResult is a completed task's result.
type TaskResult struct {
	Text string `json:"text"`
}

// CompleteTasks marks tasks completed with the result text, MaxBatch a
// call. Completing a completed task again changes nothing but its result.
func (p *API) CompleteTasks(ctx context.Context, ids []int, result string) error {
	items := make([]TaskCompletion, len(ids))
	for i, id := range ids {
		items[i] = TaskCompletion{ID: id, IsCompleted: true, Result: TaskResult{Text: result}, RequestID: strconv.Itoa(i)}
	}
	for len(items) > 0 {
		n := min(len(items), MaxBatch)
		if err := p.c.sendJSON(ctx, p.a, http.MethodPatch, "/api/v4/tasks", items[:n], nil); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}
