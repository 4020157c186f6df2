package metasim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults mirror Meta's documented limits (contract §2.8).
const (
	DefaultThroughputPerSecond = 80
	DefaultPairInterval        = 6 * time.Second
	// DefaultPairBurst is the number of back-to-back messages to one user that
	// Meta tolerates before 131056 ("short bursts tolerated"); the exact
	// figure is not published, so it is a knob.
	DefaultPairBurst = 5

	mediaURLTTL = 5 * time.Minute
	// Inbound media can be up to 100 MB; leave room for multipart framing.
	maxRequestBody = 110 << 20
)

// Options configure a Server. The zero value is usable: no webhooks are
// delivered until WebhookURL is set.
type Options struct {
	// AppSecret signs every webhook delivery (X-Hub-Signature-256).
	AppSecret string
	// WebhookURL is the gateway's callback, e.g. http://127.0.0.1:8080/webhooks/meta.
	WebhookURL string
	// HTTPClient posts webhooks; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// BaseURL is how clients reach this simulator, used in media download
	// URLs. Empty means derive it from each request's Host.
	BaseURL string
	// Clock drives windows, rate limits, URL expiry and timestamps. Nil
	// means time.Now. Status delays use real time regardless.
	Clock func() time.Time
	// Logger receives one line per Graph request and per webhook delivery.
	// Access tokens are never logged. Nil discards.
	Logger *slog.Logger

	// ThroughputPerSecond is the per phone number send limit (130429).
	// 0 means DefaultThroughputPerSecond; negative disables the limit. Meta
	// counts inbound and outbound together; the simulator counts only Graph
	// sends, so that simulated customers never trip the business's limit.
	ThroughputPerSecond int
	// PairLimit is the per (number, recipient) limit (131056).
	PairLimit PairLimit

	// AutoStatuses makes every accepted WhatsApp send produce sent,
	// delivered and read status webhooks, and every Instagram send an echo
	// and a read event. Failures (131047) are reported regardless.
	AutoStatuses bool
	// StatusDelay is the pause before each status webhook.
	StatusDelay time.Duration
	// Chaos knobs, off by default; each is deterministic when on so tests can
	// assert on the exact sequence.
	OutOfOrderStatuses   bool // delivered is posted before sent
	DuplicateStatuses    bool // every status webhook is posted twice
	ReadWithoutDelivered bool // delivered is skipped, as Meta does when both happen at once
	BatchStatuses        bool // all statuses of a message go in one POST

	// MaxRecorded caps Requests() and Webhooks() (oldest dropped first).
	// 0 means unlimited, which suits tests; long-running sims should set it.
	MaxRecorded int
}

// PairLimit configures Meta's business/consumer pair rate limit.
type PairLimit struct {
	Disabled bool
	Interval time.Duration // one message per Interval; 0 means DefaultPairInterval
	Burst    int           // 0 means DefaultPairBurst
}

// Request is one HTTP request the simulator received, kept verbatim
// (including Authorization) so tests can assert on what the gateway sent.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	Time   time.Time
}

// IsReadMark reports whether the request marks a customer's message read
// (POST …/messages with "status":"read") rather than sending a message:
// both share one Graph path, and tests that count sends must tell them
// apart.
func (r Request) IsReadMark() bool {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/messages") {
		return false
	}
	var body struct {
		Status string `json:"status"`
	}
	return json.Unmarshal(r.Body, &body) == nil && body.Status == "read"
}

// WebhookDelivery is one webhook POST the simulator made.
type WebhookDelivery struct {
	Time   time.Time
	Kind   string // e.g. "whatsapp.message", "whatsapp.status.sent", "instagram.echo"
	Body   []byte
	Status int    // receiver's HTTP status; 0 if the request failed
	Err    string // transport error, if any
}

// OK reports whether the receiver acknowledged the delivery.
func (d WebhookDelivery) OK() bool { return d.Err == "" && d.Status >= 200 && d.Status < 300 }

// Server simulates graph.facebook.com and Meta's webhook delivery.
type Server struct {
	opts   Options
	clock  func() time.Time
	log    *slog.Logger
	hook   *WebhookClient
	urlKey []byte // signs media download URLs

	ctx    context.Context // cancelled by Close; parents background deliveries
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	numbers    map[string]*waNumber
	igAccounts map[string]*igAccount
	tokens     map[string]*tokenState
	media      map[string]*mediaObject
	waLastIn   map[pairKey]time.Time // (phone_number_id, wa_id) -> last inbound
	igLastIn   map[pairKey]time.Time // (ig_user_id, igsid) -> last inbound
	igProfiles map[string]InstagramProfile
	throughput map[string]*bucket
	pairs      map[pairKey]*bucket
	sync131047 bool
	// templates holds message templates set per WABA (SetTemplates); a
	// WABA without an entry serves DefaultTemplates. templatePage is the
	// page size of GET /{waba-id}/message_templates when the client asks
	// for none smaller (0: Graph's 25).
	templates    map[string][]Template
	templatePage int
	closed       bool
	requests     []Request
	deliveries   []WebhookDelivery
	readMarks    []ReadMark
}

type waNumber struct {
	id, wabaID, displayPhone, token string
}

type igAccount struct {
	id, token string
}

type tokenState struct {
	expired   bool
	expiredAt time.Time
}

type pairKey struct{ account, user string }

// New returns a simulator with no accounts; add them with AddWhatsAppNumber
// and AddInstagramAccount.
func New(opts Options) *Server {
	if opts.ThroughputPerSecond == 0 {
		opts.ThroughputPerSecond = DefaultThroughputPerSecond
	}
	if opts.PairLimit.Interval <= 0 {
		opts.PairLimit.Interval = DefaultPairInterval
	}
	if opts.PairLimit.Burst <= 0 {
		opts.PairLimit.Burst = DefaultPairBurst
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:       opts,
		clock:      clock,
		log:        logger,
		hook:       &WebhookClient{URL: opts.WebhookURL, AppSecret: opts.AppSecret, HTTPClient: hc},
		urlKey:     []byte(randomHex(16)),
		ctx:        ctx,
		cancel:     cancel,
		numbers:    make(map[string]*waNumber),
		igAccounts: make(map[string]*igAccount),
		tokens:     make(map[string]*tokenState),
		media:      make(map[string]*mediaObject),
		waLastIn:   make(map[pairKey]time.Time),
		igLastIn:   make(map[pairKey]time.Time),
		igProfiles: make(map[string]InstagramProfile),
		throughput: make(map[string]*bucket),
		pairs:      make(map[pairKey]*bucket),
	}
}

// Close stops pending background deliveries (statuses, echoes) and waits for
// in-flight ones to return.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Wait blocks until every background delivery scheduled so far has been
// attempted. Tests use it instead of sleeping; work is scheduled before the
// triggering Graph call answers, so calling Wait after a response is safe.
func (s *Server) Wait() { s.wg.Wait() }

// AddWhatsAppNumber registers a business phone number reachable with token.
// displayPhone may contain '+' and punctuation; webhooks carry digits only.
func (s *Server) AddWhatsAppNumber(phoneNumberID, wabaID, displayPhone, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numbers[phoneNumberID] = &waNumber{id: phoneNumberID, wabaID: wabaID, displayPhone: digitsOnly(displayPhone), token: token}
	s.addTokenLocked(token)
}

// AddInstagramAccount registers an Instagram professional account.
func (s *Server) AddInstagramAccount(igUserID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.igAccounts[igUserID] = &igAccount{id: igUserID, token: token}
	s.addTokenLocked(token)
}

func (s *Server) addTokenLocked(token string) {
	if _, ok := s.tokens[token]; !ok {
		s.tokens[token] = &tokenState{}
	}
}

// ExpireToken makes every later call with token fail with 190/463.
func (s *Server) ExpireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, ok := s.tokens[token]
	if !ok {
		ts = &tokenState{}
		s.tokens[token] = ts
	}
	ts.expired = true
	ts.expiredAt = s.clock()
}

// SetSynchronous131047 chooses how a free-form send outside the 24-hour
// window fails: false (default) accepts it and then posts a failed status,
// true answers the send itself with HTTP 400 / 131047. Meta does both.
func (s *Server) SetSynchronous131047(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sync131047 = on
}

// BackdateWhatsAppInbound moves the customer's last message to a business
// number back to at, so the 24-hour window is reckoned from then (closed,
// for an at over a day ago) without waiting: the demo's "close the
// window". It never opens a window the customer did not open.
func (s *Server) BackdateWhatsAppInbound(phoneNumberID, waID string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := pairKey{phoneNumberID, waID}
	if last, ok := s.waLastIn[k]; ok && last.After(at) {
		s.waLastIn[k] = at
	}
}

// Requests returns a copy of every request received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Webhooks returns every webhook delivery attempted, oldest first.
func (s *Server) Webhooks() []WebhookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// WebhookErrors returns the deliveries that failed or were not acknowledged
// with 2xx.
func (s *Server) WebhookErrors() []WebhookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []WebhookDelivery
	for _, d := range s.deliveries {
		if !d.OK() {
			out = append(out, d)
		}
	}
	return out
}

// ReadMark is a business marking a customer's WhatsApp message read, as
// the simulator accepted it.
type ReadMark struct {
	PhoneNumberID string
	MessageID     string // the customer's wamid
	At            time.Time
}

// ReadMarks returns the read marks accepted so far, oldest first.
func (s *Server) ReadMarks() []ReadMark {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.readMarks)
}

// Reset forgets recorded requests and deliveries and refills rate limits.
// Accounts, media, tokens and conversation windows are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.deliveries = nil
	s.readMarks = nil
	clear(s.throughput)
	clear(s.pairs)
}

func appendCapped[T any](list []T, v T, limit int) []T {
	list = append(list, v)
	if limit > 0 && len(list) > limit {
		list = slices.Delete(list, 0, len(list)-limit)
	}
	return list
}

var versionRe = regexp.MustCompile(`^v\d+\.\d+$`)

// ServeHTTP serves the Graph API subset and the media download host.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeGraphError(w, errWAInvalidParam("request body too large or unreadable"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.requests = appendCapped(s.requests, Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
		Body:   body,
		Time:   s.clock(),
	}, s.opts.MaxRecorded)
	s.mu.Unlock()

	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.route(sw, r, body)
	s.log.Info("graph request",
		"method", r.Method, "path", r.URL.Path, "query", redactQuery(r.URL.Query()),
		"auth", authKind(r), "bytes", len(body), "status", sw.status)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	if strings.HasPrefix(r.URL.Path, lookasidePath) {
		s.handleMediaDownload(w, r)
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) < 2 || !versionRe.MatchString(segs[0]) {
		writeGraphError(w, errUnknownPath(r.URL.Path))
		return
	}
	token, gerr := s.authenticate(r)
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	id := segs[1]
	switch {
	case len(segs) == 2:
		s.handleObject(w, r, token, id)
	case len(segs) == 3 && segs[2] == "messages" && r.Method == http.MethodPost:
		if num := s.whatsAppNumber(id, token); num != nil {
			s.handleWASend(w, num, body)
			return
		}
		if acc := s.instagramAccount(id, token); acc != nil {
			s.handleIGSend(w, acc, body)
			return
		}
		writeGraphError(w, errUnsupported(r.Method, id))
	case len(segs) == 3 && segs[2] == "phone_numbers" && r.Method == http.MethodGet:
		s.handleWABAPhoneNumbers(w, r, token, id)
	case len(segs) == 3 && segs[2] == "message_templates" && r.Method == http.MethodGet:
		s.handleWABATemplates(w, r, token, id)
	case len(segs) == 3 && segs[2] == "media" && r.Method == http.MethodPost:
		if num := s.whatsAppNumber(id, token); num != nil {
			s.handleMediaUpload(w, r, num)
			return
		}
		writeGraphError(w, errUnsupported(r.Method, id))
	default:
		writeGraphError(w, errUnsupported(r.Method, id))
	}
}

// handleObject serves GET/DELETE /{id}: a media object, the business's own
// phone number or Instagram account, or an Instagram customer.
func (s *Server) handleObject(w http.ResponseWriter, r *http.Request, token, id string) {
	switch r.Method {
	case http.MethodGet:
		if s.handleMediaGet(w, r, token, id) {
			return
		}
		if s.handlePhoneNumberGet(w, token, id) {
			return
		}
		if s.handleIGUserGet(w, r, token, id) {
			return
		}
		if s.handleIGProfile(w, r, token, id) {
			return
		}
	case http.MethodDelete:
		if s.handleMediaDelete(w, token, id) {
			return
		}
	}
	writeGraphError(w, errUnsupported(r.Method, id))
}

// authenticate accepts a Bearer header or an access_token query parameter,
// as Graph does.
func (s *Server) authenticate(r *http.Request) (string, *graphError) {
	token := bearerToken(r)
	if token == "" {
		token = r.URL.Query().Get("access_token")
	}
	if token == "" {
		return "", errNoToken()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, ok := s.tokens[token]
	switch {
	case !ok:
		return "", errInvalidToken()
	case ts.expired:
		return "", errTokenExpired(ts.expiredAt, s.clock())
	}
	return token, nil
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// whatsAppNumber returns the number if token may act for it.
func (s *Server) whatsAppNumber(id, token string) *waNumber {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.numbers[id]; ok && n.token == token {
		return n
	}
	return nil
}

// instagramAccount resolves an IG account id, or "me" from the token.
func (s *Server) instagramAccount(id, token string) *igAccount {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "me" {
		// Lowest id first so that a token shared by several accounts resolves
		// the same way every time.
		var found *igAccount
		for _, a := range s.igAccounts {
			if a.token == token && (found == nil || a.id < found.id) {
				found = a
			}
		}
		return found
	}
	if a, ok := s.igAccounts[id]; ok && a.token == token {
		return a
	}
	return nil
}

func (s *Server) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return strings.TrimSuffix(s.opts.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// redactQuery hides the access_token parameter so logs never carry it.
func redactQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	c := make(url.Values, len(q))
	for k, v := range q {
		if k == "access_token" {
			c[k] = []string{"REDACTED"}
			continue
		}
		c[k] = v
	}
	return c.Encode()
}

func authKind(r *http.Request) string {
	switch {
	case bearerToken(r) != "":
		return "bearer"
	case r.URL.Query().Get("access_token") != "":
		return "query"
	}
	return "none"
}
