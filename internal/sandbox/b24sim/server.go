package b24sim

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults mirror Bitrix24 cloud (contract §1.5, §2.4).
const (
	DefaultAccessTTL   = time.Hour
	DefaultRefreshTTL  = 180 * 24 * time.Hour
	DefaultAuthCodeTTL = 30 * time.Second
	DefaultLeakRate    = 2.0 // requests drained per second (standard plans)
	DefaultLeakBurst   = 50  // bucket size (standard plans)
	// PageSize is the fixed page size of every list method.
	PageSize = 50
	// MaxBatch is the number of commands one batch call may run.
	MaxBatch = 50

	// OAuthDomain is what token responses carry in "domain": the OAuth
	// server, not the portal.
	OAuthDomain = "oauth.bitrix.info"

	maxRequestBody = 32 << 20
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret are the app's OAuth credentials checked by
	// /oauth/token/. Empty ClientID accepts any client id (and then any
	// secret): handy for exploratory runs, never for contract tests.
	ClientID     string
	ClientSecret string
	// BaseURL is how clients reach this simulator, e.g.
	// http://127.0.0.1:9091. It builds client_endpoint ({BaseURL}/rest/),
	// server_endpoint and file links. Empty means derive it from the
	// request's Host (token responses) or the latest request's (events);
	// see also SetBaseURL.
	BaseURL string
	// RedirectURL is the app card's redirect URI that /oauth/authorize/
	// sends the browser back to. Bitrix24 ignores redirect_uri in the
	// request, and so does the simulator.
	RedirectURL string
	// Clock drives token and code expiry, the leaky bucket and timestamps.
	// Nil means time.Now.
	Clock func() time.Time
	// AccessTTL is the access token lifetime; 0 means one hour.
	AccessTTL time.Duration
	// RefreshTTL is the refresh token lifetime; 0 means 180 days (the
	// contract is unsure between 28 and 180 days).
	RefreshTTL time.Duration
	// AuthCodeTTL is the authorization code lifetime; 0 means 30 s.
	AuthCodeTTL time.Duration
	// LeakRate (requests per second) and LeakBurst (bucket size) configure
	// the per-portal leaky bucket. 0 means the default (2/s, 50); a negative
	// value of either disables the limit.
	LeakRate  float64
	LeakBurst int
	// PaymentRequiredStatus is the HTTP status of PAYMENT_REQUIRED, from
	// both the OAuth server and REST. The contract is unsure (402 or 400);
	// 0 means 402.
	PaymentRequiredStatus int
	// Location renders date_start/date_finish and CRM dates; nil means
	// UTC+03:00 like the fixtures (portals in Moscow time).
	Location *time.Location
	// Logger receives one line per REST call and per event delivery. Token
	// values are never logged. Nil discards.
	Logger *slog.Logger
	// HTTPClient posts events to the app's handlers; nil means a client
	// with a 10 s timeout.
	HTTPClient *http.Client
	// MaxRecorded caps Requests(), Calls() and Deliveries() (oldest dropped
	// first). 0 means unlimited, which suits tests; long-running sims should
	// set it.
	MaxRecorded int
}

// Request is one HTTP request the simulator received.
type Request struct {
	Method string
	Path   string
	// RESTMethod is the lower-cased REST method without ".json"; empty for
	// OAuth and file requests.
	RESTMethod string
	// Params are the decoded parameters (query and body merged, bracket
	// keys nested). For REST calls the "auth" parameter is removed; AuthIn
	// tells where it was. OAuth requests keep theirs verbatim, secrets
	// included: this is test inspection, never logged. Leaves are strings (query/form) or, from a JSON
	// body, json.Number, bool, string or nil.
	Params map[string]any
	// AuthIn is where the REST access token came from: "query", "form",
	// "json", or "" when absent.
	AuthIn string
	Status int
	Time   time.Time
}

// Call is one REST method execution, including each command of a batch.
type Call struct {
	Method   string // lower case, e.g. "imconnector.send.messages"
	MemberID string
	UserID   int
	Params   map[string]any
	InBatch  bool
	// Status is the HTTP status the call got (or would have got, inside a
	// batch); ErrorCode and ErrorDescription are set when it failed.
	Status           int
	ErrorCode        string
	ErrorDescription string
	Time             time.Time
}

// OK reports whether the call succeeded.
func (c Call) OK() bool { return c.Status == http.StatusOK }

// Server simulates oauth.bitrix.info and Bitrix24 portals.
type Server struct {
	opts    Options
	clock   func() time.Time
	log     *slog.Logger
	hc      *http.Client
	loc     *time.Location
	methods map[string]methodSpec

	ctx    context.Context // cancelled by Close; parents background deliveries
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	baseURL    string // Options.BaseURL or SetBaseURL
	seenBase   string // from the latest request when baseURL is empty
	portals    map[string]*Portal
	order      []string // member ids in AddPortal order
	access     map[string]*accessToken
	refresh    map[string]*refreshToken
	codes      map[string]*authCode
	tokenCalls map[string]int
	requests   []Request
	calls      []Call
	deliveries []EventDelivery
	closed     bool
}

// New returns a simulator without portals; add them with AddPortal.
func New(opts Options) *Server {
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = DefaultAccessTTL
	}
	if opts.RefreshTTL <= 0 {
		opts.RefreshTTL = DefaultRefreshTTL
	}
	if opts.AuthCodeTTL <= 0 {
		opts.AuthCodeTTL = DefaultAuthCodeTTL
	}
	if opts.LeakRate == 0 {
		opts.LeakRate = DefaultLeakRate
	}
	if opts.LeakBurst == 0 {
		opts.LeakBurst = DefaultLeakBurst
	}
	if opts.PaymentRequiredStatus == 0 {
		opts.PaymentRequiredStatus = http.StatusPaymentRequired
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
	loc := opts.Location
	if loc == nil {
		loc = time.FixedZone("MSK", 3*60*60)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:       opts,
		clock:      clock,
		log:        logger,
		hc:         hc,
		loc:        loc,
		ctx:        ctx,
		cancel:     cancel,
		baseURL:    strings.TrimSuffix(opts.BaseURL, "/"),
		portals:    make(map[string]*Portal),
		access:     make(map[string]*accessToken),
		refresh:    make(map[string]*refreshToken),
		codes:      make(map[string]*authCode),
		tokenCalls: make(map[string]int),
	}
	s.methods = s.methodTable()
	return s
}

// Close stops background event deliveries and waits for in-flight ones.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Wait blocks until every background event delivery scheduled so far (CRM
// and dialog events triggered by REST calls) has been attempted. Work is
// scheduled before the triggering REST call answers, so calling Wait after a
// response is enough. OperatorReply and PostEvent deliver synchronously.
func (s *Server) Wait() { s.wg.Wait() }

// SetBaseURL sets how clients reach the simulator (see Options.BaseURL).
// Tests call it with httptest.Server.URL once the server is started.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimSuffix(u, "/")
}

// ClientEndpoint is the REST base handed out as client_endpoint:
// {BaseURL}/rest/. Without Options.BaseURL or SetBaseURL it is derived from
// the latest request's Host, and before any request it falls back to
// http://localhost.
func (s *Server) ClientEndpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientEndpointLocked()
}

func (s *Server) clientEndpointLocked() string {
	base := s.baseURL
	if base == "" {
		base = s.seenBase
	}
	if base == "" {
		base = "http://localhost"
	}
	return base + "/rest/"
}

// Requests returns a copy of every HTTP request received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Calls returns the REST calls of method (case-insensitive, ".json"
// optional), oldest first; "" returns all. Failed calls are included; see
// Call.OK.
func (s *Server) Calls(method string) []Call {
	method = normalizeMethod(method)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Deliveries returns every event POST attempted, oldest first.
func (s *Server) Deliveries() []EventDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// Reset forgets recorded requests, calls and deliveries and drains every
// leaky bucket. Portals, tokens and their data are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.calls = nil
	s.deliveries = nil
	clear(s.tokenCalls)
	for _, p := range s.portals {
		p.bucket = leakyBucket{}
		p.restCalls = 0
	}
}

func appendCapped[T any](list []T, v T, limit int) []T {
	list = append(list, v)
	if limit > 0 && len(list) > limit {
		list = slices.Delete(list, 0, len(list)-limit)
	}
	return list
}

func normalizeMethod(m string) string {
	m = strings.ToLower(strings.TrimSpace(m))
	return strings.TrimSuffix(m, ".json")
}

// ServeHTTP serves the OAuth server, portal REST and portal file links.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeAPIError(w, errInvalidRequest("request body too large or unreadable"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	now := s.clock()
	base := s.requestBase(r)

	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	rec := Request{Method: r.Method, Path: r.URL.Path, Time: now}
	path := r.URL.Path
	switch {
	case path == "/oauth/token/" || path == "/oauth/token":
		rec.Params = s.handleToken(sw, r, base)
	case path == "/oauth/authorize/" || path == "/oauth/authorize":
		rec.Params = s.handleAuthorize(sw, r)
	case path == "/rest/download.json" || path == "/rest/download" || strings.HasPrefix(path, "/disk/showFile/"):
		s.handleFile(sw, r)
	case strings.HasPrefix(path, "/rest/"):
		s.handleREST(sw, r, body, base, &rec)
	default:
		writeJSON(sw, http.StatusNotFound, map[string]string{"error": "NOT_FOUND", "error_description": "Unknown path " + path})
	}
	rec.Status = sw.status
	if rec.RESTMethod == "" {
		// REST calls log themselves with member and method; here only the
		// kind of request, never parameter values (they carry secrets).
		attrs := []any{"method", r.Method, "path", path, "status", sw.status}
		if g, ok := rec.Params["grant_type"]; ok {
			attrs = append(attrs, "grant_type", g)
		}
		s.log.Info("http request", attrs...)
	}
	s.mu.Lock()
	s.requests = appendCapped(s.requests, rec, s.opts.MaxRecorded)
	s.mu.Unlock()
}

// requestBase returns the simulator's base URL as this client sees it and
// remembers it, so that helpers called outside a request (InstallEventForm,
// OperatorReply) build the client_endpoint the app last used.
func (s *Server) requestBase(r *http.Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	s.seenBase = scheme + "://" + r.Host
	return s.seenBase
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// readParams merges query string and body into one parameter set, the way
// PHP fills $_REQUEST (body wins), and reports where "auth" came from.
func readParams(r *http.Request, body []byte) (*phpArray, string, *apiError) {
	params := newPHPArray()
	parsePHPQuery(r.URL.RawQuery, params)
	authIn := ""
	if _, ok := params.Get("auth"); ok {
		authIn = "query"
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return params, authIn, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var fromBody *phpArray
	kind := "form"
	switch {
	case ct == "application/json" || ct == "text/json" || (ct == "" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))):
		b, err := decodeJSONParams(body)
		if err != nil {
			return nil, "", errArgument("Invalid JSON body: " + err.Error())
		}
		fromBody, kind = b, "json"
	case ct == "multipart/form-data":
		if err := r.ParseMultipartForm(maxRequestBody); err != nil {
			return nil, "", errArgument("Invalid multipart body: " + err.Error())
		}
		fromBody = newPHPArray()
		formFromValues(r.MultipartForm.Value, fromBody)
	default:
		fromBody = newPHPArray()
		parsePHPQuery(string(body), fromBody)
	}
	if _, ok := fromBody.Get("auth"); ok {
		authIn = kind
	}
	mergeInto(params, fromBody)
	return params, authIn, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// plainParams converts for the inspection API.
func plainParams(p *phpArray) map[string]any {
	m, ok := plain(p).(map[string]any)
	if !ok {
		// A list-shaped top level ({"0": ...}) is unusual but possible.
		m = map[string]any{}
		for _, k := range p.Keys() {
			v, _ := p.Get(k)
			m[k] = plain(v)
		}
	}
	return m
}

// cloneMap is a shallow copy for values handed out by inspection methods.
func cloneMap[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}
