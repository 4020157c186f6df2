package amosim

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Fixed status ids every pipeline has (contract §2.6).
const (
	StatusWon  = 142
	StatusLost = 143
)

// Field ids of the account's PHONE and EMAIL contact fields and their enums,
// as in the fixtures (they differ per real account; codes are stable).
const (
	FieldPhone = 512301
	FieldEmail = 512303
)

var phoneEnums = map[string]int{"WORK": 301199, "MOB": 301201, "WORKDD": 301203, "FAX": 301205, "HOME": 301207, "OTHER": 301209}
var emailEnums = map[string]int{"WORK": 301211, "PRIV": 301213, "OTHER": 301215}

// AccountSpec describes an account to add.
type AccountSpec struct {
	ID        int
	Subdomain string
	// Domain defaults to {Subdomain}.amocrm.ru.
	Domain    string
	Name      string
	AmojoID   string
	Timezone  string // IANA name; default Europe/Moscow
	Users     []User
	Pipelines []Pipeline
}

// User is an account user.
type User struct {
	ID       int
	Name     string
	Email    string
	Lang     string
	IsAdmin  bool
	IsActive bool
	GroupID  int // 0 = no group
	AmojoID  string
}

// Pipeline is a lead pipeline; 142 and 143 are added when missing.
type Pipeline struct {
	ID           int
	Name         string
	Sort         int
	IsMain       bool
	IsUnsortedOn bool
	Statuses     []Status
}

// Status is a pipeline stage. Type 1 is "unsorted".
type Status struct {
	ID       int
	Name     string
	Sort     int
	Type     int
	Color    string
	Editable bool
}

// Value is one value of a multitext field (PHONE, EMAIL).
type Value struct {
	Value    string
	EnumCode string
}

// Contact is a contact as stored.
type Contact struct {
	ID                int
	Name              string
	FirstName         string
	LastName          string
	ResponsibleUserID int
	CreatedBy         int
	Phones            []Value
	Emails            []Value
	// Other holds text values of other custom fields by field id: the
	// search matches them too.
	Other     map[int]string
	Tags      []string
	LeadIDs   []int
	CreatedAt int64
	UpdatedAt int64
}

// Lead is a lead as stored.
type Lead struct {
	ID                int
	Name              string
	Price             int
	StatusID          int
	PipelineID        int
	ResponsibleUserID int
	CreatedBy         int
	ContactIDs        []int // the first is the main contact
	Tags              []string
	CreatedAt         int64
	UpdatedAt         int64
	ClosedAt          int64
}

// Open reports whether the lead is not closed (won or lost).
func (l Lead) Open() bool { return l.StatusID != StatusWon && l.StatusID != StatusLost }

// Note is a note on a lead or contact.
type Note struct {
	ID         int
	EntityType string // "leads" or "contacts"
	EntityID   int
	NoteType   string
	Params     map[string]any
	CreatedBy  int
	CreatedAt  int64
	RequestID  string
}

// Text returns the note's params.text.
func (n Note) Text() string { s, _ := n.Params["text"].(string); return s }

// Task is a task.
type Task struct {
	ID                int
	Text              string
	CompleteTill      int64
	EntityType        string
	EntityID          int
	ResponsibleUserID int
	TaskTypeID        int
	IsCompleted       bool
	// ResultText is the result written when the task was completed.
	ResultText string
	// Completions counts the PATCHes that completed it (a test's proof
	// that it was closed exactly once).
	Completions int
	CreatedBy   int
	CreatedAt   int64
	UpdatedAt   int64
}

type account struct {
	spec      AccountSpec
	unpaid    bool
	contacts  map[int]*Contact
	leads     map[int]*Lead
	notes     []*Note
	tasks     []*Task
	tags      map[string]int
	counts    Counts
	bucket    tokenBucket
	chat      *chatState
	installer int // user id tokens act as
	dp        []dpAction
}

// ExampleAccount is the account of the fixtures: example.amocrm.ru, id
// 30123456, users 9000001 (admin), 9000002 (manager), 9000003 (inactive),
// pipelines 7000001 (with unsorted) and 7000002.
func ExampleAccount() AccountSpec {
	return AccountSpec{
		ID: 30123456, Subdomain: "example", Name: "Example LLC",
		AmojoID: "2f4b7c1e-6a3d-4e8f-9b21-5c0d7e8f9a10", Timezone: "Europe/Moscow",
		Users: []User{
			{ID: 9000001, Name: "Анна Админова", Email: "anna@example.com", Lang: "ru", IsAdmin: true, IsActive: true, AmojoID: "76fc2bea-902f-425c-9a3d-dcdac4766090"},
			{ID: 9000002, Name: "Иван Менеджеров", Email: "ivan@example.com", Lang: "ru", IsActive: true, AmojoID: "31fc2bea-902f-925c-6a3d-dcdac4766091"},
			{ID: 9000003, Name: "Пётр Уволенный", Email: "petr@example.com", Lang: "ru", GroupID: 412301},
		},
		Pipelines: []Pipeline{
			{ID: 7000001, Name: "Продажи", Sort: 1, IsMain: true, IsUnsortedOn: true, Statuses: []Status{
				{ID: 61000001, Name: "Неразобранное", Sort: 10, Type: 1, Color: "#c1c1c1"},
				{ID: 61000002, Name: "Первичный контакт", Sort: 20, Color: "#99ccff", Editable: true},
				{ID: 61000003, Name: "Переговоры", Sort: 30, Color: "#ffcc66", Editable: true},
			}},
			{ID: 7000002, Name: "Instagram", Sort: 2, Statuses: []Status{
				{ID: 61000011, Name: "Новая заявка", Sort: 10, Color: "#98cbff", Editable: true},
			}},
		},
	}
}

// AddAccount adds (or replaces) an account. The first user that is an
// active admin is the one the integration's tokens act as.
func (s *Server) AddAccount(spec AccountSpec) error {
	if spec.ID <= 0 || spec.Subdomain == "" {
		return fmt.Errorf("amosim: account needs an id and a subdomain")
	}
	if spec.Domain == "" {
		spec.Domain = spec.Subdomain + ".amocrm.ru"
	}
	if spec.Timezone == "" {
		spec.Timezone = "Europe/Moscow"
	}
	if _, err := time.LoadLocation(spec.Timezone); err != nil {
		return fmt.Errorf("amosim: account time zone: %w", err)
	}
	spec.Users = slices.Clone(spec.Users)
	spec.Pipelines = slices.Clone(spec.Pipelines)
	for i := range spec.Pipelines {
		p := &spec.Pipelines[i]
		p.Statuses = slices.Clone(p.Statuses)
		has := map[int]bool{}
		for _, st := range p.Statuses {
			has[st.ID] = true
		}
		if !has[StatusWon] {
			p.Statuses = append(p.Statuses, Status{ID: StatusWon, Name: "Успешно реализовано", Sort: 10000, Color: "#CCFF66"})
		}
		if !has[StatusLost] {
			p.Statuses = append(p.Statuses, Status{ID: StatusLost, Name: "Закрыто и не реализовано", Sort: 11000, Color: "#D5D8DB"})
		}
		sort.SliceStable(p.Statuses, func(i, j int) bool { return p.Statuses[i].Sort < p.Statuses[j].Sort })
	}
	a := &account{spec: spec, contacts: map[int]*Contact{}, leads: map[int]*Lead{}, tags: map[string]int{},
		counts: Counts{ByRoute: map[string]int{}}}
	for _, u := range spec.Users {
		if u.IsAdmin && u.IsActive {
			a.installer = u.ID
			break
		}
	}
	if a.installer == 0 {
		return fmt.Errorf("amosim: account %d has no active admin to install the integration", spec.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[spec.ID]; !ok {
		s.order = append(s.order, spec.ID)
	}
	s.accounts[spec.ID] = a
	if s.nextID < 40200000 {
		s.nextID = 40200000 // ids above the fixtures' so both can coexist
	}
	return nil
}

// Accounts returns the specs of all accounts in the order added.
func (s *Server) Accounts() []AccountSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AccountSpec, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.accounts[id].spec)
	}
	return out
}

// SetUnpaid switches an account's subscription: unpaid accounts answer
// every API call with 402.
func (s *Server) SetUnpaid(accountID int, unpaid bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[accountID]; a != nil {
		a.unpaid = unpaid
	}
}

// SetUserActive (de)activates a user, as an admin does in the account.
func (s *Server) SetUserActive(accountID, userID int, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[accountID]; a != nil {
		for i := range a.spec.Users {
			if a.spec.Users[i].ID == userID {
				a.spec.Users[i].IsActive = active
			}
		}
	}
}

// PutContact stores a contact as if a user had created it (ID 0 gets a new
// id) and returns its id.
func (s *Server) PutContact(accountID int, c Contact) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		return 0
	}
	if c.ID == 0 {
		c.ID = s.newID()
	}
	now := s.clock().Unix()
	if c.CreatedAt == 0 {
		c.CreatedAt, c.UpdatedAt = now, now
	}
	if c.Name == "" {
		c.Name = joinName(c.FirstName, c.LastName)
	}
	c.Phones, c.Emails, c.Tags, c.LeadIDs = slices.Clone(c.Phones), slices.Clone(c.Emails), slices.Clone(c.Tags), slices.Clone(c.LeadIDs)
	a.contacts[c.ID] = &c
	return c.ID
}

// PutLead stores a lead (ID 0 gets a new id), linking its contacts, and
// returns its id.
func (s *Server) PutLead(accountID int, l Lead) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		return 0
	}
	if l.ID == 0 {
		l.ID = s.newID()
	}
	now := s.clock().Unix()
	if l.CreatedAt == 0 {
		l.CreatedAt, l.UpdatedAt = now, now
	}
	if !l.Open() && l.ClosedAt == 0 {
		l.ClosedAt = now
	}
	l.ContactIDs, l.Tags = slices.Clone(l.ContactIDs), slices.Clone(l.Tags)
	a.leads[l.ID] = &l
	for _, cid := range l.ContactIDs {
		if c := a.contacts[cid]; c != nil && !slices.Contains(c.LeadIDs, l.ID) {
			c.LeadIDs = append(c.LeadIDs, l.ID)
		}
	}
	return l.ID
}

// Leads returns an account's leads by id.
func (s *Server) Leads(accountID int) []Lead {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Lead
	if a := s.accounts[accountID]; a != nil {
		for _, id := range sortedKeys(a.leads) {
			l := *a.leads[id]
			l.ContactIDs, l.Tags = slices.Clone(l.ContactIDs), slices.Clone(l.Tags)
			out = append(out, l)
		}
	}
	return out
}

// Contacts returns an account's contacts by id.
func (s *Server) Contacts(accountID int) []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Contact
	if a := s.accounts[accountID]; a != nil {
		for _, id := range sortedKeys(a.contacts) {
			c := *a.contacts[id]
			c.Phones, c.Emails, c.Tags, c.LeadIDs = slices.Clone(c.Phones), slices.Clone(c.Emails), slices.Clone(c.Tags), slices.Clone(c.LeadIDs)
			out = append(out, c)
		}
	}
	return out
}

// Notes returns an account's notes, oldest first.
func (s *Server) Notes(accountID int) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Note
	if a := s.accounts[accountID]; a != nil {
		for _, n := range a.notes {
			out = append(out, *n)
		}
	}
	return out
}

// PutTask adds a task as the account's own users make them (not through
// the API) and returns its id.
func (s *Server) PutTask(accountID int, t Task) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		return 0
	}
	t.ID = s.newID()
	if t.CreatedAt == 0 {
		t.CreatedAt = s.clock().Unix()
	}
	if t.TaskTypeID == 0 {
		t.TaskTypeID = 1
	}
	a.tasks = append(a.tasks, &t)
	return t.ID
}

// Tasks returns an account's tasks, oldest first.
func (s *Server) Tasks(accountID int) []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Task
	if a := s.accounts[accountID]; a != nil {
		for _, t := range a.tasks {
			out = append(out, *t)
		}
	}
	return out
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func joinName(first, last string) string {
	switch {
	case first == "":
		return last
	case last == "":
		return first
	}
	return first + " " + last
}

func (a *account) user(id int) *User {
	for i := range a.spec.Users {
		if a.spec.Users[i].ID == id {
			return &a.spec.Users[i]
		}
	}
	return nil
}

func (a *account) pipeline(id int) *Pipeline {
	for i := range a.spec.Pipelines {
		if a.spec.Pipelines[i].ID == id {
			return &a.spec.Pipelines[i]
		}
	}
	return nil
}

func (a *account) mainPipeline() *Pipeline {
	for i := range a.spec.Pipelines {
		if a.spec.Pipelines[i].IsMain {
			return &a.spec.Pipelines[i]
		}
	}
	if len(a.spec.Pipelines) > 0 {
		return &a.spec.Pipelines[0]
	}
	return nil
}

// firstStage is where a lead lands without status_id: the first regular
// (not unsorted) stage by sort.
func (p *Pipeline) firstStage() int {
	for _, st := range p.Statuses {
		if st.Type == 0 && st.ID != StatusWon && st.ID != StatusLost {
			return st.ID
		}
	}
	return 0
}

func (p *Pipeline) hasStatus(id int) bool {
	for _, st := range p.Statuses {
		if st.ID == id {
			return true
		}
	}
	return false
}

func (a *account) tagID(name string, next func() int) int {
	if id, ok := a.tags[name]; ok {
		return id
	}
	id := next()
	a.tags[name] = id
	return id
}

// tokenBucket is the per-account limiter, driven by the server clock. Not
// goroutine-safe: callers hold the server lock.
type tokenBucket struct {
	tokens float64
	last   time.Time
	init   bool
}

// take reports whether a request may pass. Refused requests take nothing,
// so a client that backs off recovers at the documented rate.
func (b *tokenBucket) take(now time.Time, rate float64, burst int) bool {
	if !b.init {
		b.tokens, b.last, b.init = float64(burst), now, true
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens += el.Seconds() * rate
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// SetLeadStatus moves a lead as a user would in the account's pipeline
// view: to 142 (won) or 143 (lost) closes it, to an open status reopens
// it. It reports whether the lead exists.
func (s *Server) SetLeadStatus(accountID, leadID, statusID int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil || a.leads[leadID] == nil {
		return false
	}
	l := a.leads[leadID]
	wasOpen := l.Open()
	l.StatusID, l.UpdatedAt = statusID, s.clock().Unix()
	switch {
	case wasOpen && !l.Open():
		l.ClosedAt = l.UpdatedAt
	case l.Open():
		l.ClosedAt = 0
	}
	return true
}

// DeleteContact deletes a contact as a user would: the API no longer
// finds it (GET answers 204, a lead naming it in leads/complex is refused
// with _embedded.contacts.0.id NotFound, linking a chat to it is refused),
// its leads lose it and its chats belong to no contact until linked again.
func (s *Server) DeleteContact(accountID, contactID int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil || a.contacts[contactID] == nil {
		return false
	}
	delete(a.contacts, contactID)
	for _, l := range a.leads {
		l.ContactIDs = slices.DeleteFunc(l.ContactIDs, func(id int) bool { return id == contactID })
	}
	if a.chat != nil {
		for _, ch := range a.chat.chats {
			if ch.ContactID == contactID {
				ch.ContactID, ch.LinkID = 0, 0
			}
		}
	}
	return true
}

// DeleteLead deletes a lead as a user would: the API no longer finds it
// (GET answers 204, notes on it are refused as NotFound).
func (s *Server) DeleteLead(accountID, leadID int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil || a.leads[leadID] == nil {
		return false
	}
	delete(a.leads, leadID)
	for _, c := range a.contacts {
		c.LeadIDs = slices.DeleteFunc(c.LeadIDs, func(id int) bool { return id == leadID })
	}
	return true
}
