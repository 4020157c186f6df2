package amosim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Defaults mirror amoCRM (contract §1.2–§1.4, §2.4, §6.2).
const (
	DefaultAccessTTL  = 24 * time.Hour
	DefaultRefreshTTL = 90 * 24 * time.Hour
	DefaultCodeTTL    = 20 * time.Minute
	// DefaultRate is the documented limit of requests per second per
	// integration and account.
	DefaultRate = 7.0
	// DefaultNoteTextLimit is the longest note text accepted. amoCRM
	// documents none (contract §2.9, unsure); 65,535 is a text column.
	DefaultNoteTextLimit = 65535
	// DefaultSignatureWindow is how far an amojo request's Date may be from
	// the simulator's clock.
	DefaultSignatureWindow = 15 * time.Minute
	// MaxLimit is the largest page size lists accept.
	MaxLimit = 250
	// MaxComplex is how many leads one POST /api/v4/leads/complex may carry.
	MaxComplex = 50

	maxRequestBody = 8 << 20
)

// Options configure a Server. The zero value works for exploration; tests
// set ClientID, ClientSecret and RedirectURI so that the token endpoint
// checks them as amoCRM does.
type Options struct {
	// ClientID, ClientSecret and RedirectURI identify the integration. The
	// token endpoint refuses other values when ClientID is set.
	ClientID     string
	ClientSecret string
	RedirectURI  string
	// Referer is the host given as referer in install redirects; empty
	// gives each account's own domain (example.amocrm.ru). Tests set the
	// simulator's host so that the gateway's referer check lets it through
	// as the configured base.
	Referer string
	// Clock drives expiry, rate limits and timestamps; nil is time.Now.
	Clock func() time.Time
	// AccessTTL, RefreshTTL and CodeTTL default to 24 h, 90 days, 20 min.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	CodeTTL    time.Duration
	// Rate and Burst shape the per-account token bucket (requests per
	// second, bucket size); 0 takes 7 and 7, a negative Rate disables the
	// limit. amoCRM documents only "7 requests per second"; how much burst
	// its limiter allows is not documented (contract §2.4, unsure).
	Rate  float64
	Burst int
	// NoteTextLimit is the longest note text in characters; 0 takes
	// DefaultNoteTextLimit.
	NoteTextLimit int

	// ChannelID, ChannelSecret and ChannelCode are the Chats API channel
	// registered for the integration; amojo requests are refused without.
	ChannelID     string
	ChannelSecret string
	ChannelCode   string
	// BotID is the channel bot's amojo id, the sender of bot messages.
	BotID string
	// HookURL receives the outgoing-message hook; ":scope_id" in it is
	// replaced by the scope id, as amoCRM does with the registered URL.
	HookURL string
	// SignatureWindow bounds the Date header of amojo requests; 0 takes
	// 15 minutes.
	SignatureWindow time.Duration

	// DPWebhookURL is the widget manifest's dp.webhook_url, where digital
	// pipeline runs are posted (MoveLead); DPSettings, when set, are its
	// dp.settings (name: required): an action with other settings, or
	// with a required one empty, is not saved (SetDPAction).
	DPWebhookURL string
	DPSettings   map[string]bool

	// GatewayURL is where the widget's frames (FrameSettingsPath,
	// FrameCardPath) ask for tickets and find the gateway's pages: the
	// widget's gateway_url setting. Empty takes the scheme and host of
	// RedirectURI.
	GatewayURL string

	// HTTPClient posts the outgoing hook; nil is a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Logger gets one line per request; token values are never logged.
	Logger *slog.Logger
	// MaxRecorded caps Requests() and Hooks() (oldest dropped first); 0
	// keeps all, which suits tests; the standalone simulator sets it.
	MaxRecorded int
}

// Request is one HTTP request the simulator answered.
type Request struct {
	Method    string
	Path      string
	Query     string
	AccountID int // 0 when no account was identified
	Status    int
	Time      time.Time
}

// Counts are the requests an account's API received.
type Counts struct {
	// Requests counts /api/v4 requests that reached the account (after the
	// token check), including refused ones.
	Requests int
	// TooMany counts the ones refused with 429.
	TooMany int
	// Unauthorized counts 401s for this account's tokens (expired or
	// revoked).
	Unauthorized int
	// ByRoute counts answered requests by "METHOD /route".
	ByRoute map[string]int
}

// Server simulates amoCRM accounts and amojo.
type Server struct {
	opts  Options
	clock func() time.Time
	log   *slog.Logger
	hc    *http.Client
	mux   *http.ServeMux

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	accounts map[int]*account
	order    []int
	access   map[string]*accessToken
	refresh  map[string]*refreshToken
	codes    map[string]*authCode
	oauthN   map[string]int // token endpoint calls by outcome
	requests []Request
	hooks    []HookDelivery
	dpRuns   []DPDelivery
	nextID   int
	// failAfter counts, by route pattern, requests to apply and then
	// answer with 502 (FailAfterApply).
	failAfter map[string]int
	// amojoCalls counts the signed amojo requests by route pattern.
	amojoCalls map[string]int
	// failRoute, by route pattern, refuses requests without their work
	// (FailRoute).
	failRoute map[string]routeFailure
	// amojoFail are statuses the next amojo requests answer, in turn,
	// without doing their work (FailAmojo).
	amojoFail []int
}

// New returns a simulator without accounts; add them with AddAccount.
func New(opts Options) *Server {
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = DefaultAccessTTL
	}
	if opts.RefreshTTL <= 0 {
		opts.RefreshTTL = DefaultRefreshTTL
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = DefaultCodeTTL
	}
	if opts.Rate == 0 {
		opts.Rate = DefaultRate
	}
	if opts.Burst <= 0 {
		opts.Burst = int(DefaultRate)
	}
	if opts.NoteTextLimit <= 0 {
		opts.NoteTextLimit = DefaultNoteTextLimit
	}
	if opts.SignatureWindow <= 0 {
		opts.SignatureWindow = DefaultSignatureWindow
	}
	s := &Server{
		opts:     opts,
		clock:    opts.Clock,
		log:      opts.Logger,
		hc:       opts.HTTPClient,
		accounts: map[int]*account{},
		access:   map[string]*accessToken{},
		refresh:  map[string]*refreshToken{},
		codes:    map[string]*authCode{},
		oauthN:   map[string]int{},
		nextID:   1,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 10 * time.Second}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = s.routes()
	return s
}

// Close stops outgoing hooks in flight and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// Wait blocks until every outgoing hook started so far has been attempted.
func (s *Server) Wait() { s.wg.Wait() }

// Options returns the options the server runs with, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// ServeHTTP serves OAuth, API v4, amojo and the widget's frames.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeProblem(w, problem(http.StatusBadRequest, "Bad Request", "request body too large or unreadable"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Time: s.clock()}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), recKey{}, rec)))
	rec.Status = sw.status
	s.log.Info("amosim request", "method", r.Method, "path", r.URL.Path, "account", rec.AccountID, "status", sw.status)
	s.mu.Lock()
	s.requests = appendCapped(s.requests, *rec, s.opts.MaxRecorded)
	s.mu.Unlock()
}

type recKey struct{}

// noteAccount records which account a request belonged to.
func noteAccount(r *http.Request, id int) {
	if rec, ok := r.Context().Value(recKey{}).(*Request); ok {
		rec.AccountID = id
	}
}

// Requests returns every request answered, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Counts returns the API request counts of an account.
func (s *Server) Counts(accountID int) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		return Counts{}
	}
	c := a.counts
	c.ByRoute = make(map[string]int, len(a.counts.ByRoute))
	for k, v := range a.counts.ByRoute {
		c.ByRoute[k] = v
	}
	return c
}

// TokenRequests counts calls of the token endpoint by outcome:
// "authorization_code", "refresh_token" for successes and
// "refused:<hint>" for refusals.
func (s *Server) TokenRequests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.oauthN))
	for k, v := range s.oauthN {
		out[k] = v
	}
	return out
}

// ResetCounts forgets recorded requests and counts and refills every
// account's rate bucket; accounts, tokens and data are kept.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	clear(s.oauthN)
	for _, a := range s.accounts {
		a.counts = Counts{ByRoute: map[string]int{}}
		a.bucket = tokenBucket{}
	}
}

func appendCapped[T any](list []T, v T, limit int) []T {
	list = append(list, v)
	if limit > 0 && len(list) > limit {
		list = slices.Delete(list, 0, len(list)-limit)
	}
	return list
}

func (s *Server) newID() int {
	s.nextID++
	return s.nextID
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status for the request log.
func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Problem is an application/problem+json body.
type Problem struct {
	Status     int
	Title      string
	Type       string
	Detail     string
	Hint       string // OAuth errors only
	Validation []ValidationError
}

// ValidationError is one failing item of a batch.
type ValidationError struct {
	RequestID string       `json:"request_id"`
	Errors    []FieldError `json:"errors"`
}

// FieldError is one problem with one field of an item.
type FieldError struct {
	Code   string `json:"code"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

func problem(status int, title, detail string) *Problem {
	return &Problem{Status: status, Title: title, Type: "https://httpstatus.es/" + itoa(status), Detail: detail}
}

// writeProblem writes p in amoCRM's key order (validation-errors first, as
// in the fixture).
func writeProblem(w http.ResponseWriter, p *Problem) {
	var b bytes.Buffer
	b.WriteString("{")
	if p.Hint != "" {
		b.WriteString(`"hint":`)
		b.Write(mustJSON(p.Hint))
		b.WriteString(",")
	}
	if len(p.Validation) > 0 {
		b.WriteString(`"validation-errors":`)
		b.Write(mustJSON(p.Validation))
		b.WriteString(",")
	}
	b.WriteString(`"title":`)
	b.Write(mustJSON(p.Title))
	b.WriteString(`,"type":`)
	b.Write(mustJSON(p.Type))
	b.WriteString(`,"status":`)
	b.WriteString(itoa(p.Status))
	b.WriteString(`,"detail":`)
	b.Write(mustJSON(p.Detail))
	b.WriteString("}")
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	w.Write(b.Bytes())
}

// writeHAL writes a successful answer.
func writeHAL(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/hal+json")
	w.WriteHeader(status)
	w.Write(mustJSON(v))
}

// writeNoContent is amoCRM's answer to an empty list or unknown id.
func writeNoContent(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNoContent)
}

// writeTooMany is the raw 429 of the fixture: nginx's, with no body.
func writeTooMany(w http.ResponseWriter) {
	w.Header().Set("Server", "nginx")
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusTooManyRequests)
}

func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("amosim: marshal: " + err.Error())
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

func itoa(n int) string { return strconv.Itoa(n) }

// SetRate changes the per-account rate limit while running (requests per
// second and bucket size; a negative rate turns it off), for tests that
// install with no limit and then storm.
func (s *Server) SetRate(rate float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Rate, s.opts.Burst = rate, burst
	for _, a := range s.accounts {
		a.bucket = tokenBucket{}
	}
}

// FailAfterApply makes the next n requests of route (a pattern such as
// "POST /api/v4/leads/notes") do their work and then answer 502, as a
// gateway in front of amoCRM does when it times out on a request amoCRM
// completed: the client cannot know its data was written.
func (s *Server) FailAfterApply(route string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAfter == nil {
		s.failAfter = map[string]int{}
	}
	s.failAfter[route] = n
}
