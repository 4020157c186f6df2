// Package web is the gateway's HTTP face: Meta webhooks, the admin API,
// signed media links, health and metrics.
package web

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/metrics"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/templates"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// QueueStats is what the API uses of the job queue: it shows its counts,
// and wakes jobs whose wait a change has ended.
type QueueStats interface {
	Stats(ctx context.Context) (map[string]int64, error)
	Wake(ctx context.Context, kind string, keys []string) (int64, error)
}

// Deps are what the server needs; main builds them.
type Deps struct {
	Store     *store.Store
	Messaging *messaging.Service
	Registry  *channel.Registry
	Metrics   *metrics.Metrics
	Signer    *media.Signer
	Queue     QueueStats
	// Integrations are the CRM providers: each mounts its routes and binds
	// channels of its integrations. Nil means none.
	Integrations *crm.Registry
	// Templates lists and refreshes channels' message templates.
	Templates *templates.Service
	// Chat is the chat view the CRM card pages show; the cabinet's shared
	// chat shows it too.
	Chat *chatview.Service
	// Mirror closes hourly and daily mirror batches on demand.
	Mirror MirrorFlusher
	// Dialogs stops dialogs waiting ("no reply needed"); nil leaves the
	// CRMs' reminders open.
	Dialogs DialogStopper
	Log     *slog.Logger

	AdminToken      string
	MetaVerifyToken string
	// PublicURL is how Meta reaches the gateway; the cabinet shows the
	// webhook URL built from it.
	PublicURL       string
	MetaAppSecret   string
	WebhookMaxBytes int64
	UploadMaxBytes  int64
	// MetricsToken guards /metrics on this listener; empty means the admin
	// token. With MetricsElsewhere the route is not here at all (it has a
	// listener of its own).
	MetricsToken     string
	MetricsElsewhere bool
	// BodyReadTimeout bounds how long a client may take to send a request
	// body; uploads get UploadReadTimeout instead. A slow body holds a
	// connection and a goroutine, and the webhook and CRM routes take
	// anyone's bodies before authenticating them.
	BodyReadTimeout   time.Duration
	UploadReadTimeout time.Duration
	// DefaultWorkspaceID receives what the operator creates without naming
	// a workspace.
	DefaultWorkspaceID string
	// Cabinet configures the web cabinet's sessions and sign-in limits.
	Cabinet CabinetOptions
	// TrustedProxies are the addresses (CIDRs) whose X-Forwarded-For is
	// believed; from anyone else the connection's address is the client's
	// (the sign-in limit per address must not be dodged by a header).
	TrustedProxies []string
}

// Server is the gateway's HTTP handler.
type Server struct {
	d        Deps
	engine   *gin.Engine
	refusals refusalLogs
	// hashSlots bounds the password checks running at once.
	hashSlots chan struct{}
}

func New(d Deps) *Server {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{d: d, engine: gin.New(), refusals: newRefusalLogs(), hashSlots: make(chan struct{}, 2*runtime.NumCPU())}
	if err := s.engine.SetTrustedProxies(d.TrustedProxies); err != nil {
		d.Log.Error("SWITCHBOARD_TRUSTED_PROXIES is not a list of addresses; trusting none", "err", err)
		_ = s.engine.SetTrustedProxies(nil) // nil cannot fail
	}
	s.engine.Use(s.recover, s.accessLog, s.bodyDeadline)
	s.engine.NoRoute(s.noRoute)
	s.engine.NoMethod(func(c *gin.Context) {
		fail(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed here")
	})
	s.engine.HandleMethodNotAllowed = true

	s.engine.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	s.engine.GET("/readyz", s.ready)
	if !d.MetricsElsewhere {
		s.engine.GET("/metrics", s.metricsAuth, gin.WrapH(MetricsHandler(d.Metrics)))
	}

	s.engine.GET("/webhooks/meta", s.verifyWebhook)
	s.engine.POST("/webhooks/meta", s.receiveWebhook)
	s.engine.GET("/media/:id", s.serveMedia)
	s.engine.HEAD("/media/:id", s.serveMedia)

	api := s.engine.Group("/api/v1", s.auth)
	api.GET("/workspaces", s.listWorkspaces)
	api.POST("/workspaces", s.operatorOnly, s.createWorkspace)
	api.GET("/workspaces/:id", s.getWorkspace)
	api.PATCH("/workspaces/:id", s.updateWorkspace)
	api.POST("/workspaces/:id/tokens", s.createToken)
	api.GET("/workspaces/:id/tokens", s.listTokens)
	api.DELETE("/workspaces/:id/tokens/:token_id", s.revokeToken)
	api.POST("/workspaces/:id/users", s.createUser)
	api.GET("/workspaces/:id/users", s.listUsers)
	api.PATCH("/workspaces/:id/users/:user_id", s.patchUser)
	api.DELETE("/workspaces/:id/users/:user_id", s.deleteUser)
	api.PUT("/workspaces/:id/users/:user_id/crm_links", s.putUserCRMLinks)
	api.GET("/channels", s.listChannels)
	api.POST("/channels", s.createChannel)
	api.GET("/channels/:id", s.getChannel)
	api.PATCH("/channels/:id", s.updateChannel)
	api.DELETE("/channels/:id", s.disableChannel)
	api.POST("/channels/:id/move", s.operatorOnly, s.moveChannel)
	api.GET("/channels/:id/messages", s.listMessages)
	api.POST("/channels/:id/messages", s.sendMessage)
	api.GET("/channels/:id/routing", s.getRouting)
	api.GET("/channels/:id/templates", s.listTemplates)
	api.POST("/channels/:id/templates/refresh", s.refreshTemplates)
	api.PUT("/channels/:id/routing", s.putRouting)
	api.GET("/channels/:id/customers/:customer_id/branch", s.getCustomerBranch)
	api.PUT("/channels/:id/customers/:customer_id/branch", s.moveCustomerBranch)
	api.GET("/quick-replies", s.listQuickReplies)
	api.POST("/quick-replies", s.createQuickReply)
	api.PUT("/quick-replies/:id", s.updateQuickReply)
	api.DELETE("/quick-replies/:id", s.deleteQuickReplyAPI)
	api.GET("/messages/:id", s.getMessage)
	api.GET("/dialogs", s.listDialogs)
	api.GET("/dialogs/:id", s.getDialog)
	api.POST("/dialogs/:id/no-reply-needed", s.dialogNoReplyNeeded)
	api.GET("/queue", s.operatorOnly, s.queueStats)
	api.GET("/integrations", s.listIntegrations)
	api.GET("/integrations/:id", s.getIntegration)
	api.PUT("/integrations/:id/channels/:channel_id", s.bindChannel)
	api.DELETE("/integrations/:id/channels/:channel_id", s.unbindChannel)
	api.GET("/integrations/:id/settings", s.getSettings)
	api.PUT("/integrations/:id/settings", s.putSettings)
	api.POST("/integrations/:id/access/bulk", s.bulkAccess)
	api.POST("/integrations/:id/refresh", s.refreshIntegration)
	api.POST("/integrations/:id/mirror/flush", s.flushMirror)

	s.mountCabinet()
	s.mountEmbeddedSettings()

	for _, in := range d.Integrations.All() {
		in.Mount(routes{s})
	}
	return s
}

func (s *Server) Handler() http.Handler { return s.engine }

// MetricsHandler serves the gateway's Prometheus series.
func MetricsHandler(m *metrics.Metrics) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// metricsAuth asks for the metrics token (or the admin token) on the main
// listener.
func (s *Server) metricsAuth(c *gin.Context) {
	want := cmp.Or(s.d.MetricsToken, s.d.AdminToken)
	tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || want == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(want)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="switchboard metrics"`)
		fail(c, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <metrics token>")
		return
	}
	c.Next()
}

// uploadRoutes may take a long body; every other route gets the short
// deadline.
var uploadRoutes = map[string]bool{"POST /api/v1/channels/:id/messages": true, "POST /chat/dialogs/:dialog_id/send": true,
	"POST /api/v1/quick-replies": true, "PUT /api/v1/quick-replies/:id": true, "POST /templates/quick-replies": true, "POST /templates/quick-replies/:id": true}

// bodyDeadline sets how long the rest of the request body may take to
// arrive. The server's own ReadTimeout is the long one, for uploads.
func (s *Server) bodyDeadline(c *gin.Context) {
	d := s.d.BodyReadTimeout
	if uploadRoutes[c.Request.Method+" "+c.FullPath()] {
		d = s.d.UploadReadTimeout
	}
	if d > 0 {
		// Not every writer supports deadlines (tests' recorders); the
		// server's ReadTimeout still bounds those.
		if err := http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(d)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			s.d.Log.Debug("could not set a read deadline", "err", err)
		}
	}
	c.Next()
}

// ---- errors ----

// fail answers {"error":{"code":…,"message":…}}, with <, > and & as they
// are (not \u003c): people read these on terminals.
// noRoute answers an unknown address: a person's browser asking for a
// page (a mistyped or outdated cabinet link) gets the cabinet's "not
// found" page in their language with a way home; a program gets the API's
// JSON error.
func (s *Server) noRoute(c *gin.Context) {
	if wantsPage(c.Request) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return
	}
	fail(c, http.StatusNotFound, "not_found", "no such endpoint")
}

// wantsPage reports whether r is a browser's page load: a GET or HEAD
// outside the API, webhook and media paths whose Accept names HTML.
func wantsPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, prefix := range []string{"/api/", "/webhooks/", "/media/", "/assets/"} {
		if strings.HasPrefix(r.URL.Path, prefix) {
			return false
		}
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func fail(c *gin.Context, status int, code, msg string) {
	c.AbortWithStatusPureJSON(status, gin.H{"error": gin.H{"code": code, "message": msg}})
}

// failErr maps the errors the core returns to HTTP answers.
func (s *Server) failErr(c *gin.Context, err error) {
	var tooBig *http.MaxBytesError
	switch fe := fault.As(err); {
	case fe != nil && fe.Field != "":
		// The value to fix, for a client that marks it in a form.
		c.AbortWithStatusPureJSON(httperr.Status(fe.Kind), gin.H{"error": gin.H{"code": fe.Code, "message": fe.Message, "field": fe.Field}})
	case fe != nil:
		fail(c, httperr.Status(fe.Kind), fe.Code, fe.Message)
	case errors.Is(err, store.ErrNotFound):
		fail(c, http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, store.ErrConflict):
		fail(c, http.StatusConflict, "conflict", "already exists")
	case errors.As(err, &tooBig):
		fail(c, http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")
	case errors.Is(err, context.Canceled):
		c.Abort()
	default:
		s.d.Log.Error("request failed", "path", c.FullPath(), "err", err)
		fail(c, http.StatusInternalServerError, "internal", "internal error")
	}
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.d.Log.Error("panic in handler", "path", c.FullPath(), "panic", r, "stack", string(debug.Stack()))
			fail(c, http.StatusInternalServerError, "internal", "internal error")
		}
	}()
	c.Next()
}

func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	// The path, never the query: media links carry signatures.
	s.d.Log.Debug("http", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(), "took", time.Since(start))
}

func (s *Server) ready(c *gin.Context) {
	if err := s.d.Store.DB.Ping(c.Request.Context()); err != nil {
		fail(c, http.StatusServiceUnavailable, "database_unavailable", "the database does not answer")
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// ---- auth ----

const scopeKey = "scope"

// auth accepts the operator's admin token (every workspace) or a
// workspace token (that workspace only).
func (s *Server) auth(c *gin.Context) {
	h := c.GetHeader("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		c.Header("WWW-Authenticate", `Bearer realm="switchboard"`)
		fail(c, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>")
		return
	}
	if s.d.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.d.AdminToken)) == 1 {
		c.Set(scopeKey, store.All)
		c.Next()
		return
	}
	ws, err := s.d.Store.WorkspaceForToken(c.Request.Context(), tok)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.failErr(c, err)
			return
		}
		fail(c, http.StatusUnauthorized, "unauthorized", "unknown or revoked token")
		return
	}
	c.Set(scopeKey, store.Scope{WorkspaceID: ws})
	c.Next()
}

func scopeOf(c *gin.Context) store.Scope {
	v, _ := c.Get(scopeKey)
	sc, _ := v.(store.Scope)
	return sc
}

func isOperator(c *gin.Context) bool { return scopeOf(c).WorkspaceID == "" }

func (s *Server) operatorOnly(c *gin.Context) {
	if !isOperator(c) {
		fail(c, http.StatusForbidden, "forbidden", "this needs the operator's admin token")
		return
	}
	c.Next()
}
