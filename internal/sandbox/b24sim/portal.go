package b24sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultScope is what the app card of a connector lists (contract §1.1),
// plus bizproc for automation-rule robots.
const DefaultScope = "crm,imopenlines,imconnector,im,user,department,placement,contact_center,bizproc"

// PortalOptions describe one Bitrix24 portal with the app installed.
// Zero fields get defaults matching the fixtures.
type PortalOptions struct {
	// MemberID is the stable 32-hex portal id; empty means random.
	MemberID string
	// Domain is the portal host, e.g. "example.bitrix24.ru". It appears in
	// event auth blocks and authorize redirects; REST goes to the simulator
	// (client_endpoint) whatever the domain.
	Domain string
	// ApplicationToken authenticates events; empty means random 32 hex.
	ApplicationToken string
	// AdminUserID installs the app and owns install tokens; 0 means 1.
	AdminUserID int
	// OperatorUserID answers in Open Lines (OperatorReply); 0 means the
	// first active user other than the admin, else the admin.
	OperatorUserID int
	// Status is the app status letter (L, F, D, T, P); empty means "P".
	Status string
	// Scope is the comma list granted to tokens; empty means DefaultScope.
	Scope string
	// LanguageID is the portal language; empty means "ru".
	LanguageID string
	// Lines are the Open Lines; nil means one active line {ID: 1}.
	Lines []OpenLine
	// Users are the employees; nil means the two users of
	// user-get-response.json (1 Ivan Petrov, admin; 27 Olga Ivanova).
	Users []User
	// Departments; nil means those of department-get-response.json.
	Departments []Department
	// DealCategories are extra deal pipelines next to the default one
	// (id 0, "General", or "Общая" on a Russian portal); each gets NEW,
	// PREPARATION, WON and LOSE stages.
	DealCategories []DealCategory
}

// OpenLine is an Open Lines configuration. Lines are active unless Inactive
// is set (the zero value is the common case in tests).
type OpenLine struct {
	ID       int
	Name     string
	Inactive bool
}

// User is a portal employee.
type User struct {
	ID             int
	Name           string
	LastName       string
	SecondName     string
	Email          string
	PersonalMobile string
	WorkPhone      string
	WorkPosition   string
	Gender         string // "M", "F" or ""
	Departments    []int
	Inactive       bool
	Online         bool
	// UserType is "employee" unless set ("extranet", "email", "bot"...).
	UserType string
}

// FullName is "Name LastName", trimmed.
func (u User) FullName() string { return strings.TrimSpace(u.Name + " " + u.LastName) }

// Department is a node of the company structure.
type Department struct {
	ID     int
	Name   string
	Sort   int
	Parent int // 0 for the root
	Head   int // user id, 0 for none
}

// DealCategory is a deal pipeline.
type DealCategory struct {
	ID   int
	Name string
	Sort int
}

// Portal is one simulated Bitrix24 account. Its inspection methods return
// copies and are safe for concurrent use.
type Portal struct {
	s *Server

	memberID   string
	domain     string
	appToken   string
	adminID    int
	operatorID int
	status     string
	scope      string
	lang       string

	paymentRequired bool

	users       []User
	departments []Department
	lines       []*LineState
	connectors  []*connectorReg
	conn        map[connLineKey]*connStatus
	events      []*EventBinding
	placements  []*PlacementBinding
	contacts    *entityTable
	leads       *entityTable
	deals       *entityTable
	categories  []DealCategory
	statuses    []*crmStatus
	timeline    []TimelineComment
	todos       []Todo
	notifies    []Notification
	chatMsgs    []ChatMessage
	files       map[string]*storedFile

	robots       []*Robot
	robotRuns    map[string]*robotRun // by event_token
	robotResults []RobotResult
	// dealContacts are the contact bindings of each deal (by deal ID), the
	// primary one first; CONTACT_ID mirrors the first.
	dealContacts map[string][]int
	failures     []*failure
	// failuresAfter fail calls after applying them (FailAfterNext).
	failuresAfter []*failure
	// restCalls counts authenticated REST requests (RESTCalls).
	restCalls int
	bucket    leakyBucket
	seq       portalSeq
}

// portalSeq hands out ids. Ranges differ per kind so that a gateway mixing
// up, say, an IM chat id with a session id does not match by accident.
type portalSeq struct {
	imChat, imMessage, session, connUser  int
	eventHandler, placement, status       int
	timeline, todo, notify, chatMsg, file int
	multifield                            int
}

// AddPortal registers a portal with the app installed. Registering an
// existing member id replaces it.
func (s *Server) AddPortal(o PortalOptions) *Portal {
	if o.MemberID == "" {
		o.MemberID = randomHex(16)
	}
	o.MemberID = strings.ToLower(o.MemberID)
	if o.Domain == "" {
		o.Domain = "b24-" + o.MemberID[:6] + ".bitrix24.ru"
	}
	if o.ApplicationToken == "" {
		o.ApplicationToken = randomHex(16)
	}
	if o.AdminUserID == 0 {
		o.AdminUserID = 1
	}
	if o.Status == "" {
		o.Status = "P"
	}
	if o.Scope == "" {
		o.Scope = DefaultScope
	}
	if o.LanguageID == "" {
		o.LanguageID = "ru"
	}
	if o.Lines == nil {
		o.Lines = []OpenLine{{ID: 1, Name: "Open Line"}}
	}
	if o.Users == nil {
		o.Users = defaultUsers(o.AdminUserID)
	}
	if o.Departments == nil {
		o.Departments = []Department{
			{ID: 1, Name: "Acme LLC", Sort: 500, Head: o.AdminUserID},
			{ID: 5, Name: "Sales", Sort: 500, Parent: 1, Head: o.AdminUserID},
		}
	}
	if o.OperatorUserID == 0 {
		o.OperatorUserID = o.AdminUserID
		for _, u := range o.Users {
			if u.ID != o.AdminUserID && !u.Inactive {
				o.OperatorUserID = u.ID
				break
			}
		}
	}
	p := &Portal{
		s:            s,
		memberID:     o.MemberID,
		domain:       o.Domain,
		appToken:     o.ApplicationToken,
		adminID:      o.AdminUserID,
		operatorID:   o.OperatorUserID,
		status:       o.Status,
		scope:        o.Scope,
		lang:         o.LanguageID,
		users:        slices.Clone(o.Users),
		departments:  slices.Clone(o.Departments),
		conn:         make(map[connLineKey]*connStatus),
		contacts:     newEntityTable("CONTACT", 100),
		leads:        newEntityTable("LEAD", 400),
		deals:        newEntityTable("DEAL", 700),
		files:        make(map[string]*storedFile),
		robotRuns:    make(map[string]*robotRun),
		dealContacts: make(map[string][]int),
		seq: portalSeq{
			imChat: 1800, imMessage: 86400, session: 320, connUser: 580,
			eventHandler: 550, placement: 10, status: 300,
			timeline: 5000, todo: 9000, notify: 12000, chatMsg: 90000, file: 9900, multifield: 1000,
		},
	}
	for _, l := range o.Lines {
		name := l.Name
		if name == "" {
			name = "Open Line " + strconv.Itoa(l.ID)
		}
		p.lines = append(p.lines, &LineState{s: s, id: l.ID, name: name, active: !l.Inactive})
	}
	slices.SortFunc(p.lines, func(a, b *LineState) int { return a.id - b.id })
	p.categories = append([]DealCategory{{ID: 0, Name: p.localName("CATEGORY", "0", "General"), Sort: 300}}, o.DealCategories...)
	p.seedStatuses()

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.portals[p.memberID]; !ok {
		s.order = append(s.order, p.memberID)
	}
	s.portals[p.memberID] = p
	return p
}

func defaultUsers(adminID int) []User {
	return []User{
		{ID: adminID, Name: "Ivan", LastName: "Petrov", Email: "admin@example.com", WorkPosition: "Head of sales", Gender: "M", Departments: []int{1}, Online: true},
		{ID: 27, Name: "Olga", LastName: "Ivanova", Email: "olga@example.com", PersonalMobile: "+79031112233", WorkPosition: "Manager", Gender: "F", Departments: []int{5}},
	}
}

// Portal returns the portal with memberID, or nil.
func (s *Server) Portal(memberID string) *Portal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.portals[strings.ToLower(memberID)]
}

// Portals returns every portal in AddPortal order.
func (s *Server) Portals() []*Portal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Portal, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.portals[id])
	}
	return out
}

func (s *Server) portalLocked(memberID string) (*Portal, error) {
	p, ok := s.portals[strings.ToLower(memberID)]
	if !ok {
		return nil, fmt.Errorf("b24sim: unknown portal %q", memberID)
	}
	return p, nil
}

// mustPortalLocked is for test helpers whose signatures have no error: an
// unknown member id is a bug in the test.
func (s *Server) mustPortalLocked(memberID string) *Portal {
	p, err := s.portalLocked(memberID)
	if err != nil {
		panic(err)
	}
	return p
}

// MemberID, Domain, ApplicationToken, AdminUserID and OperatorUserID
// return the portal's fixed identity (defaults applied).
func (p *Portal) MemberID() string         { return p.memberID }
func (p *Portal) Domain() string           { return p.domain }
func (p *Portal) ApplicationToken() string { return p.appToken }
func (p *Portal) AdminUserID() int         { return p.adminID }
func (p *Portal) OperatorUserID() int      { return p.operatorID }

func (p *Portal) user(id int) (User, bool) {
	for _, u := range p.users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

func (p *Portal) lineLocked(id int) *LineState {
	for _, l := range p.lines {
		if l.id == id {
			return l
		}
	}
	return nil
}

// Line returns the Open Line's state, or nil.
func (p *Portal) Line(lineID int) *LineState {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.lineLocked(lineID)
}

// Lines returns every Open Line ordered by id.
func (p *Portal) Lines() []*LineState {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return slices.Clone(p.lines)
}

// Line returns the state of an Open Line, or nil if the portal or line does
// not exist.
func (s *Server) Line(memberID string, lineID int) *LineState {
	p := s.Portal(memberID)
	if p == nil {
		return nil
	}
	return p.Line(lineID)
}

// AddLine adds (or reactivates) an Open Line, as an admin creating one in
// Contact Center would.
func (s *Server) AddLine(memberID string, line OpenLine) (*LineState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		return nil, err
	}
	if l := p.lineLocked(line.ID); l != nil {
		l.active = !line.Inactive
		if line.Name != "" {
			l.name = line.Name
		}
		return l, nil
	}
	name := line.Name
	if name == "" {
		name = "Open Line " + strconv.Itoa(line.ID)
	}
	l := &LineState{s: s, id: line.ID, name: name, active: !line.Inactive}
	p.lines = append(p.lines, l)
	slices.SortFunc(p.lines, func(a, b *LineState) int { return a.id - b.id })
	return l, nil
}

// SetLineActive switches an Open Line on or off; sending into an inactive
// line fails with NOT_ACTIVE_LINE.
func (s *Server) SetLineActive(memberID string, lineID int, active bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		return err
	}
	l := p.lineLocked(lineID)
	if l == nil {
		return fmt.Errorf("b24sim: portal %s has no line %d", memberID, lineID)
	}
	l.active = active
	return nil
}

// SetPaymentRequired makes the OAuth server refuse tokens and REST refuse
// calls with PAYMENT_REQUIRED, as when a paid app's subscription ends.
func (s *Server) SetPaymentRequired(memberID string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustPortalLocked(memberID).paymentRequired = on
}

// failure is an injected error for the next n calls of a method.
type failure struct {
	method string
	n      int
	err    *apiError
}

// FailNext makes the next n calls of method on the portal (also inside
// batch) fail with HTTP status and the given error body, after
// authentication and the leaky bucket. Use it for errors the simulator does
// not produce by itself: OPERATION_TIME_LIMIT (429), OVERLOAD_LIMIT (503),
// INTERNAL_SERVER_ERROR (500), ACCESS_DENIED (403)...
func (s *Server) FailNext(memberID, method string, n, status int, code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	p.failures = append(p.failures, &failure{method: normalizeMethod(method), n: n, err: newAPIError(status, code, description)})
}

func (p *Portal) takeFailure(method string) *apiError {
	for i, f := range p.failures {
		if f.method == method && f.n > 0 {
			f.n--
			if f.n == 0 {
				p.failures = slices.Delete(p.failures, i, i+1)
			}
			e := *f.err
			return &e
		}
	}
	return nil
}

// Direction tells who wrote a transcript message.
type Direction string

const (
	// Inbound messages came from the connector (imconnector.send.messages).
	Inbound Direction = "in"
	// Outbound messages were written by an operator and posted to the app
	// as ONIMCONNECTORMESSAGEADD.
	Outbound Direction = "out"
)

// ExternalUser is the "user" block of imconnector.send.messages.
type ExternalUser struct {
	ID                string
	Name              string
	LastName          string
	Phone             string
	Email             string
	PictureURL        string
	URL               string
	Gender            string
	SkipPhoneValidate bool
}

// File is an attachment. Inbound files carry URL and Name as the connector
// sent them. For operator replies set Name (and Mime/Type/Size if you care)
// plus either Content, which the simulator then serves at generated Link
// and DownloadLink URLs, or explicit Link/DownloadLink.
type File struct {
	Name         string
	URL          string
	Type         string // image, file, audio, video
	Mime         string
	Size         int64
	Link         string
	DownloadLink string
	Content      []byte
}

// Message is one entry of an Open Line transcript.
type Message struct {
	Direction       Direction
	Connector       string
	Line            int
	IMChatID        string // Bitrix24 chat id (session.CHAT_ID / im.chat_id)
	IMMessageID     string // Bitrix24 message id (im.message_id)
	SessionID       string
	ConnectorUserID string // IM user id standing for the external user
	ChatID          string // external chat id (chat.id)
	ChatName        string
	ChatURL         string
	User            ExternalUser // inbound only
	ExternalID      string       // inbound: message.id
	Date            int64        // inbound: message.date as sent (unix), 0 if absent
	Text            string
	Files           []File
	DisableCRM      bool
	OperatorID      int // outbound: author; inbound: message.user_id when mirrored
	Edits           int
	Deleted         bool
	Delivered       bool // outbound: confirmed by send.status.delivery
	Read            bool // outbound: confirmed by send.status.reading
	Time            time.Time
}

// StatusReport is one imconnector.send.status.delivery/reading item.
type StatusReport struct {
	Connector   string
	Line        int
	IMChatID    string
	IMMessageID string
	ExternalIDs []string
	ChatID      string
	Date        int64
	Time        time.Time
}

// Dialog is an Open Lines conversation with one external user (CHAT_GROUP
// false) or chat (CHAT_GROUP true).
type Dialog struct {
	Connector       string
	UserID          string // external user.id
	ChatID          string // external chat.id last used
	ChatName        string
	IMChatID        string
	SessionID       string
	ConnectorUserID string
	Closed          bool
}

// LineState is the simulated state of one Open Line.
type LineState struct {
	s          *Server
	id         int
	name       string
	active     bool
	crmSource  string
	messages   []Message
	deliveries []StatusReport
	reads      []StatusReport
	dialogs    []*Dialog
}

// ID is the Open Line id.
func (l *LineState) ID() int { return l.id }

// Name is the line's LINE_NAME.
func (l *LineState) Name() string {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.name
}

// Active reports whether the line itself is switched on.
func (l *LineState) Active() bool {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.active
}

// Messages returns the transcript, oldest first: what the connector sent
// and what operators answered.
func (l *LineState) Messages() []Message {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	out := slices.Clone(l.messages)
	for i := range out {
		out[i].Files = slices.Clone(out[i].Files)
	}
	return out
}

// Deliveries returns the imconnector.send.status.delivery items received.
func (l *LineState) Deliveries() []StatusReport {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return slices.Clone(l.deliveries)
}

// Reads returns the imconnector.send.status.reading items received.
func (l *LineState) Reads() []StatusReport {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return slices.Clone(l.reads)
}

// Dialogs returns the line's conversations.
func (l *LineState) Dialogs() []Dialog {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	out := make([]Dialog, 0, len(l.dialogs))
	for _, d := range l.dialogs {
		out = append(out, *d)
	}
	return out
}

// CRMSource is the source the line's CRM tracker gives the leads and deals
// it creates (imopenlines.config.update PARAMS[CRM_SOURCE]).
func (l *LineState) CRMSource() string {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.crmSource
}
