package amocrm

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Type is the store.Integration.Type of amoCRM and Kommo accounts.
const Type = "amocrm"

// Job kinds.
const (
	// JobInstall exchanges a widget install's code and records the
	// account: amoCRM waits only ~3 s for the install callback, so the
	// exchange cannot happen while it waits.
	JobInstall = "amocrm.install"
)

// CodeNotConfigured answers every amoCRM route of a gateway without the
// integration's client id and secret.
const CodeNotConfigured = "amocrm_not_configured"

// Config is the integration's settings (SWITCHBOARD_AMOCRM_*).
type Config struct {
	ClientID     string
	ClientSecret string
	// RedirectURI is the integration's Redirect URI; empty is
	// PublicURL + /amocrm/oauth/callback.
	RedirectURI string
	// ChannelID, ChannelSecret and ChannelCode are the Chats API channel;
	// kept for the connector, unused by authorisation.
	ChannelID     string
	ChannelSecret string
	ChannelCode   string
	// BaseURL is one more allowed account base (the simulator); see
	// HostPolicy.BaseURL.
	BaseURL string
	// AllowPrivate lets BaseURL be a loopback or private address.
	AllowPrivate bool
	// PublicURL is how amoCRM and admins' browsers reach the gateway.
	PublicURL string
	// Workspace places an account installed from the widget:
	// crm.WorkspaceAuto, WorkspaceDefault or WorkspaceNew.
	Workspace string
	// FileURL gives a stored media file's signed link for notes; nil
	// leaves files out of them.
	FileURL func(mediaID string) string
	// SessionKey signs the sessions of the widget's pages (at least 32
	// random bytes; derived from the gateway's secret key).
	SessionKey []byte
	// Now is the clock of widget tokens and tickets; nil is time.Now.
	Now func() time.Time
	// Chat is the card window's conversation and send box, shared with
	// the other CRMs' pages; nil builds one without templates.
	Chat *chatview.Service
	// Limiter spaces each account's calls; nil is NewLimiter(), this
	// process's alone. The gateway passes one shared by all its instances
	// (crm.NewLimiterFor): amoCRM's limit is per account.
	Limiter Limiter
	// ChatContactWait bounds how long a new customer's first message waits
	// for the contact our lead brings before it goes into amoCRM's chat
	// unlinked (chatlink.go); 0 is DefaultChatContactWait.
	ChatContactWait time.Duration
}

// Service is the amoCRM integration: authorisation (widget install,
// consent page, long-lived token), the disable hook, the account's users
// and pipelines, and channel bindings. The connector (messages into leads,
// notes and amojo) builds on it.
type Service struct {
	cfg    Config
	store  *store.Store
	client *Client
	tokens *storeTokens
	router *routing.Router
	hc     *http.Client
	notify func()
	// msg stores and sends what managers write from amoCRM (the card
	// window, amojo, the digital pipeline).
	msg *messaging.Service
	// sessions sign the widget pages' sessions (widget.go).
	sessions *crm.Sessions
	// chat is the card window's conversation and send box (card.go).
	chat *chatview.Service
	log  *slog.Logger
	// leadLocks (by integration id) keep two jobs of one account from
	// creating the same customer's lead side by side (connector.go).
	leadLocks sync.Map
	// amojoUsers maps integration id + "|" + a user's amojo id to the
	// account's user id (hook.go).
	amojoUsers sync.Map
}

// New builds the integration. hc must be the guarded client (netguard)
// unless private endpoints are allowed; msg stores and sends managers'
// messages, and its Notify wakes the queue after a job is enqueued.
func New(cfg Config, st *store.Store, msg *messaging.Service, router *routing.Router, hc *http.Client, log *slog.Logger) *Service {
	if cfg.RedirectURI == "" {
		cfg.RedirectURI = strings.TrimRight(cfg.PublicURL, "/") + "/amocrm/oauth/callback"
	}
	s := &Service{cfg: cfg, store: st, router: router, hc: hc, notify: msg.Notify, msg: msg, log: log, sessions: crm.NewSessions(cfg.SessionKey)}
	if s.chat = cfg.Chat; s.chat == nil {
		s.chat = chatview.New(chatview.Config{Store: st, FileURL: cfg.FileURL, UploadMaxBytes: chatview.DefaultUploadMaxBytes, Log: log})
	}
	s.tokens = &storeTokens{t: crm.NewTokens(st), log: log}
	s.client = NewClient(Options{OAuth: s.oauth(), HTTP: hc, Tokens: s.tokens, Hosts: s.hosts(), Logger: log, Limiter: cfg.Limiter,
		OnNeedsReauth: func(ctx context.Context, integrationID, reason string) {
			s.tokens.markNeedsReauth(ctx, integrationID, currentTokens, reason)
		}, OnPaymentRequired: s.markUnpaid})
	s.tokens.client = s.client
	router.Register(Type, s)
	return s
}

func (s *Service) oauth() OAuthConfig {
	return OAuthConfig{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, RedirectURI: s.cfg.RedirectURI}
}

func (s *Service) hosts() HostPolicy {
	return HostPolicy{BaseURL: s.cfg.BaseURL, AllowPrivate: s.cfg.AllowPrivate}
}

// Client is the API client over the stored tokens (the connector's entry
// point: Client().For(s.Account(in))).
func (s *Service) Client() *Client { return s.client }

// Config returns the integration's settings, the channel keys included.
func (s *Service) Config() Config { return s.cfg }

// Account names an integration's account for the client: its id keys the
// rate limiter and the tokens, its host is where calls go.
func (s *Service) Account(in *store.Integration) Account { return Account{ID: in.ID, Host: in.Domain} }

// API is the client bound to an integration's account.
func (s *Service) API(in *store.Integration) *API { return s.client.For(s.Account(in)) }

// configured refuses work on a gateway without the integration's keys.
func (s *Service) configured() error {
	if s.cfg.ClientID == "" || s.cfg.ClientSecret == "" {
		return fault.New(fault.Unavailable, CodeNotConfigured,
			"amoCRM is not configured on this gateway: set SWITCHBOARD_AMOCRM_CLIENT_ID and SWITCHBOARD_AMOCRM_CLIENT_SECRET")
	}
	return nil
}

// The Service is amoCRM's entry in the CRM registry.
var _ crm.Integration = (*Service)(nil)

// Type is the store.Integration.Type of accounts.
func (s *Service) Type() string { return Type }

// Mount adds the routes amoCRM and admins call. The callback and the
// disable hook authenticate their callers themselves (OAuth state or the
// account's own token endpoint; the hook's HMAC); starting a consent and
// giving a long-lived token need the workspace's API token.
func (s *Service) Mount(r crm.Routes) {
	r.Public(http.MethodGet, "/amocrm/oauth/callback", s.ServeOAuthCallback)
	r.Public(http.MethodGet, "/amocrm/disabled", s.ServeDisabled)
	r.Public(http.MethodOptions, "/amocrm/widget/ticket", s.ServeWidgetTicketPreflight)
	r.Public(http.MethodPost, "/amocrm/widget/ticket", s.ServeWidgetTicket)
	r.Public(http.MethodGet, "/amocrm/card", s.ServeCard)
	r.Public(http.MethodPost, "/amocrm/card/send", s.ServeCardSend)
	r.Public(http.MethodPost, "/amocrm/card/log", s.ServeCardLog)
	r.Public(http.MethodGet, "/amocrm/card/events", s.ServeCardEvents)
	r.Public(http.MethodPost, "/amocrm/amojo/:scope_id", s.ServeAmojoHook)
	r.Public(http.MethodOptions, "/amocrm/widget/dp-key", s.ServeWidgetTicketPreflight)
	r.Public(http.MethodPost, "/amocrm/widget/dp-key", s.ServeDPKey)
	r.Public(http.MethodPost, "/amocrm/dp", s.ServeDP)
	r.Workspace(http.MethodGet, "/amocrm/oauth/start", s.serveOAuthStart)
	r.Workspace(http.MethodPost, "/api/v1/integrations/amocrm", s.serveLongLived)
}

// Handle adds the integration's jobs to a queue.
func (s *Service) Handle(q crm.JobHandlers) {
	q = crm.OutageAware(q)
	q.Handle(JobInstall, s.handleInstall)
	q.Handle(JobAssign, s.handleAssign)
	q.Handle(JobAmojoConnect, s.handleAmojoConnect)
	q.Handle(JobAmojoHook, s.handleAmojoHook)
	q.Handle(JobDP, s.handleDP)
	q.Handle(JobPaymentProbe, s.handlePaymentProbe)
}

// texts are what Switchboard shows people, by the account's language.
var texts = map[string]map[string]string{
	"ru": {
		"connected":     "Switchboard подключён к amoCRM. Это окно можно закрыть.",
		"connecting":    "Switchboard подключается к amoCRM. Настройки появятся через несколько секунд.",
		"access_denied": "Доступ не предоставлен: Switchboard не подключён.",
	},
	"en": {
		"connected":     "Switchboard is connected to amoCRM. You may close this window.",
		"connecting":    "Switchboard is connecting to amoCRM. The settings appear in a few seconds.",
		"access_denied": "Access was not granted: Switchboard is not connected.",
	},
}

// T returns a text in lang: Russian for "ru" or no language, English
// otherwise.
func T(lang, key string) string {
	if lang == "" || strings.EqualFold(lang, "ru") {
		return texts["ru"][key]
	}
	return texts["en"][key]
}

// DisplayName is amoCRM's product name, for pages that name no provider.
func (s *Service) DisplayName() string { return "amoCRM" }

// RecordWords: amoCRM makes leads, which its Russian interface calls
// "сделки" (deals) and its English one "leads".
func (s *Service) RecordWords(lang, _ string) string {
	if lang == "en" {
		return "lead"
	}
	return "deal"
}
