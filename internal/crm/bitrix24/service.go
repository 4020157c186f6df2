// Package bitrix24 connects Switchboard to Bitrix24 portals: the
// marketplace install, OAuth, the Open Lines connector (customers'
// messages into Open Lines chats, operators' replies back to the
// customer), and CRM records. It implements routing.Connector.
package bitrix24

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Type is the integration type name.
const Type = "bitrix24"

// Job kinds.
const (
	JobSetup = "bitrix24.setup"
	JobEvent = "bitrix24.event"
)

// Uninstall policies: what happens to a portal's data on ONAPPUNINSTALL.
const (
	KeepData      = "keep"     // always keep (the portal may come back)
	DeleteOnClean = "on_clean" // delete when the admin ticked "clear application data"
	DeleteAlways  = "always"
)

// Config is the integration's settings.
type Config struct {
	ClientID     string
	ClientSecret string
	// OAuthURL is the OAuth server (https://oauth.bitrix.info).
	OAuthURL string
	// PublicURL is how Bitrix24 reaches this gateway (event handlers,
	// connector settings page).
	PublicURL string
	// ConnectorPrefix starts our connector ids (Bitrix24 allows [a-z0-9_]).
	ConnectorPrefix string
	// AllowPrivate lets portal endpoints resolve to private addresses.
	AllowPrivate bool
	// OnUninstall is KeepData, DeleteOnClean or DeleteAlways.
	OnUninstall string
	// SessionKey signs the sessions of pages shown inside Bitrix24.
	SessionKey []byte
	// Workspace places a portal installed from Bitrix24's side (the
	// marketplace or a local app): WorkspaceAuto, WorkspaceDefault or
	// WorkspaceNew.
	Workspace string
	// Rate and Burst space the calls to each portal; zero means
	// DefaultRate and DefaultBurst.
	Rate  float64
	Burst int
	// Chat is the card tab's conversation and send box, shared with the
	// other CRMs' pages; nil builds one without templates.
	Chat *chatview.Service
	// Limiter, when set, spaces them instead of crm's in-process limiter
	// at Rate and Burst: the gateway passes one shared by all its
	// instances (crm.NewLimiterFor), since the limit is per portal.
	Limiter Limiter
}

// Where a portal installed from Bitrix24's side lands.
const (
	// WorkspaceAuto: the default workspace while it is the only one and
	// holds no integration yet, else a new workspace named after the
	// portal (crm.WorkspaceAuto).
	WorkspaceAuto = crm.WorkspaceAuto
	// WorkspaceDefault: always the default workspace.
	WorkspaceDefault = crm.WorkspaceDefault
	// WorkspaceNew: always a new workspace named after the portal.
	WorkspaceNew = crm.WorkspaceNew
)

// Service is the Bitrix24 integration.
type Service struct {
	cfg    Config
	store  *store.Store
	client *Client
	oauth  OAuthConfig
	msg    *messaging.Service
	router *routing.Router
	signer *media.Signer
	http   *http.Client
	log    *slog.Logger
	// sessions sign the pages' sessions, with cfg.SessionKey.
	sessions *crm.Sessions
	// inbox checks and keeps what the portal posts to us.
	inbox *crm.Inbox
	// chat is the card tab's conversation and send box.
	chat *chatview.Service
}

// New builds the integration. hc must be the guarded client (netguard)
// unless private endpoints are allowed.
func New(cfg Config, st *store.Store, msg *messaging.Service, router *routing.Router, signer *media.Signer, hc *http.Client, log *slog.Logger) *Service {
	if cfg.ConnectorPrefix == "" {
		cfg.ConnectorPrefix = "switchboard"
	}
	if cfg.OnUninstall == "" {
		cfg.OnUninstall = DeleteOnClean
	}
	s := &Service{cfg: cfg, store: st, msg: msg, router: router, signer: signer, http: hc, log: log,
		sessions: crm.NewSessions(cfg.SessionKey), inbox: crm.NewInbox(st, msg.Notify), chat: cfg.Chat}
	if s.chat == nil {
		s.chat = chatview.New(chatview.Config{Store: st, FileURL: signer.URL, UploadMaxBytes: chatview.DefaultUploadMaxBytes, Log: log})
	}
	lim := cfg.Limiter
	if lim == nil {
		lim = crm.NewLimiter(crm.LimiterOptions{Rate: cmp.Or(cfg.Rate, DefaultRate), Burst: cmp.Or(cfg.Burst, DefaultBurst)})
	}
	s.oauth = OAuthConfig{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, AuthServerURL: cfg.OAuthURL,
		RedirectURL: strings.TrimRight(cfg.PublicURL, "/") + "/bitrix24/oauth/callback", AllowInsecure: cfg.AllowPrivate}
	s.client = NewClient(ClientOptions{OAuth: s.oauth, HTTP: hc, Tokens: storeTokens{crm.NewTokens(st)}, Logger: log, AllowInsecure: cfg.AllowPrivate,
		Limiter: lim,
		OnEndpointMoved: func(integrationID, endpoint string) {
			host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://"), "/rest/")
			if err := st.SetIntegrationEndpoint(context.Background(), integrationID, host, endpoint); err != nil {
				log.Error("bitrix24: record moved portal", "integration_id", integrationID, "err", err)
			}
		}})
	router.Register(Type, s)
	return s
}

// Client exposes the REST client (tests, benchmarks).
func (s *Service) Client() *Client { return s.client }

// Handle adds the integration's jobs to a queue.
func (s *Service) Handle(q crm.JobHandlers) {
	q = crm.OutageAware(q)
	q.Handle(JobSetup, s.handleSetup)
	q.Handle(JobEvent, s.handleEvent)
	q.Handle(JobActivate, s.handleActivate)
	q.Handle(JobOpenLineEcho, s.handleOpenLineEcho)
	q.Handle(JobAssign, s.handleAssign)
}

// ConnectorID is the Open Lines connector of a channel type.
func (s *Service) ConnectorID(t channel.Type) string { return s.cfg.ConnectorPrefix + "_" + string(t) }

// channelTypeOf maps our connector id back to the channel type.
func (s *Service) channelTypeOf(connector string) (channel.Type, bool) {
	for _, t := range []channel.Type{channel.WhatsApp, channel.Instagram} {
		if strings.EqualFold(connector, s.ConnectorID(t)) {
			return t, true
		}
	}
	return "", false
}

func (s *Service) url(path string) string { return strings.TrimRight(s.cfg.PublicURL, "/") + path }

// events bound on every portal at install (names are case-insensitive).
var boundEvents = []string{"OnImConnectorMessageAdd", "OnImConnectorMessageUpdate", "OnImConnectorMessageDelete",
	"OnImConnectorLineDelete", "OnImConnectorStatusDelete", "OnAppUninstall"}

type setupJob struct {
	IntegrationID string `json:"integration_id"`
	// VerifyFirst sets the portal up only when its bindings differ from
	// what this gateway needs (the check at every start): a portal whose
	// handlers already point here costs two reads, not a setup.
	VerifyFirst bool `json:"verify_first,omitempty"`
}

// handleSetup registers the connectors and binds the events, in one
// batch, and then reads the portal's bindings back. It is idempotent:
// Bitrix24 keeps an event's or a placement's earlier handler beside a new
// one and calls both, so what is ours and points elsewhere (an install
// with another public URL) is unbound, and only what is missing is bound.
func (s *Service) handleSetup(ctx context.Context, j *queue.Job) error {
	var p setupJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	in, err := s.store.GetIntegration(ctx, store.All, p.IntegrationID)
	if err != nil {
		return queue.Permanent(err)
	}
	if !routing.Live(in) {
		return nil
	}
	bound, err := s.readBindings(ctx, in.ID)
	if err != nil {
		return s.classify(fmt.Errorf("bitrix24: setup %s: read bindings: %w", in.Domain, err))
	}
	if p.VerifyFirst && in.State == store.IntegrationActive && s.mismatch(bound) == "" {
		return nil
	}
	var cmds []BatchCommand
	for _, t := range []channel.Type{channel.WhatsApp, channel.Instagram} {
		cmds = append(cmds, BatchCommand{Name: "register_" + string(t), Method: "imconnector.register", Params: map[string]any{
			"ID":                s.ConnectorID(t),
			"NAME":              connectorNames[t],
			"ICON":              map[string]any{"DATA_IMAGE": icons[t], "COLOR": iconColors[t], "SIZE": "90%", "POSITION": "center"},
			"PLACEMENT_HANDLER": s.url("/bitrix24/connector"),
			"CHAT_GROUP":        "N",
		}})
	}
	for t, code := range crmSources {
		cmds = append(cmds, BatchCommand{Name: "source_" + string(t), Method: "crm.status.add", Params: map[string]any{
			"fields": map[string]any{"ENTITY_ID": "SOURCE", "STATUS_ID": code, "NAME": connectorLabel(t), "SORT": 500}}})
	}
	for placement, entity := range tabPlacements {
		if bound.hasTab(placement, s.tabURL()) {
			continue
		}
		cmds = append(cmds, BatchCommand{Name: "tab_" + entity, Method: "placement.bind", Params: map[string]any{
			"PLACEMENT": placement, "HANDLER": s.tabURL(), "TITLE": "WhatsApp / Instagram",
			"LANG_ALL": map[string]any{"ru": map[string]string{"TITLE": "WhatsApp / Instagram"}, "en": map[string]string{"TITLE": "WhatsApp / Instagram"}}}})
	}
	robot := s.robotDefinition(in.InstalledBy)
	cmds = append(cmds, BatchCommand{Name: "robot", Method: "bizproc.robot.add", Params: robot})
	for _, ev := range boundEvents {
		if bound.hasEvent(ev, s.eventsURL()) {
			continue
		}
		cmds = append(cmds, BatchCommand{Name: "bind_" + strings.ToLower(ev), Method: "event.bind",
			Params: map[string]any{"event": ev, "handler": s.eventsURL()}})
	}
	// The stale bindings go after the new ones: Bitrix24 does not resend
	// an event, so a moment with no handler would lose replies, while a
	// moment with two only delivers one twice, and the events inbox stores
	// a message id once.
	cmds = append(cmds, s.staleCommands(bound)...)
	res, err := s.client.Batch(ctx, in.ID, cmds, false)
	if err != nil {
		return s.classify(fmt.Errorf("bitrix24: setup %s: %w", in.Domain, err))
	}
	for name, e := range res.Errors {
		switch {
		case strings.EqualFold(e.Code, "ERROR_HANDLER_ALREADY_EXIST"), strings.HasPrefix(name, "source_"),
			strings.HasPrefix(name, "tab_") && strings.EqualFold(e.Code, "ERROR_CORE"):
			continue // bound or added by an earlier install (or a setup running beside this one)
		case strings.HasPrefix(name, "tab_") && bound.noPlacements:
			// The card tabs are a convenience; without the placement
			// scope the Open Lines work as before.
			s.log.Warn("bitrix24: card tab not bound", "integration_id", in.ID, "command", name, "err", e)
			continue
		case name == "robot" && strings.EqualFold(e.Code, "ERROR_ACTIVITY_ALREADY_INSTALLED"):
			// Installed earlier, maybe with another public URL: bring its
			// handler and fields up to date.
			fields := maps.Clone(robot)
			delete(fields, "CODE")
			if err := s.client.Call(ctx, in.ID, "bizproc.robot.update", map[string]any{"CODE": RobotCode, "FIELDS": fields}, nil); err != nil {
				return s.classify(fmt.Errorf("bitrix24: setup %s: update robot: %w", in.Domain, err))
			}
			continue
		}
		return fmt.Errorf("bitrix24: setup %s: %s: %w", in.Domain, name, e)
	}
	s.log.Info("bitrix24 portal set up", "integration_id", in.ID, "domain", in.Domain)
	return s.verifyHandlers(ctx, in, j)
}

var connectorNames = map[channel.Type]string{channel.WhatsApp: "WhatsApp (Switchboard)", channel.Instagram: "Instagram (Switchboard)"}

var iconColors = map[channel.Type]string{channel.WhatsApp: "#25D366", channel.Instagram: "#E1306C"}

// Icons are SVG data URIs, as imconnector.register wants them.
var icons = map[channel.Type]string{
	channel.WhatsApp:  "data:image/svg+xml,%3Csvg xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22 viewBox%3D%220 0 24 24%22%3E%3Cpath fill%3D%22%23fff%22 d%3D%22M12 2a10 10 0 0 0-8.6 15.1L2 22l5-1.3A10 10 0 1 0 12 2z%22%2F%3E%3C%2Fsvg%3E",
	channel.Instagram: "data:image/svg+xml,%3Csvg xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22 viewBox%3D%220 0 24 24%22%3E%3Crect x%3D%223%22 y%3D%223%22 width%3D%2218%22 height%3D%2218%22 rx%3D%225%22 fill%3D%22none%22 stroke%3D%22%23fff%22 stroke-width%3D%222%22%2F%3E%3Ccircle cx%3D%2212%22 cy%3D%2212%22 r%3D%224%22 fill%3D%22none%22 stroke%3D%22%23fff%22 stroke-width%3D%222%22%2F%3E%3C%2Fsvg%3E",
}

// texts are what Switchboard writes into Bitrix24 and its pages, by the
// portal's language.
var texts = map[string]map[string]string{
	"ru": {
		"send_failed":      "Сообщение не доставлено клиенту: %s",
		"file_failed":      "Файл не отправлен клиенту: %s",
		"installed":        "Switchboard установлен. Подключите WhatsApp и Instagram к открытым линиям в Контакт-центре.",
		"connected":        "Портал подключён к Switchboard.",
		"edit_unsupported": "Мессенджер не позволяет изменять или удалять отправленные сообщения.",
	},
	"en": {
		"send_failed":      "The message was not delivered to the customer: %s",
		"file_failed":      "A file was not sent to the customer: %s",
		"installed":        "Switchboard is installed. Connect WhatsApp and Instagram to Open Lines in the Contact Center.",
		"connected":        "The portal is connected to Switchboard.",
		"edit_unsupported": "The messenger does not allow editing or deleting sent messages.",
	},
}

// T returns a text in lang (Russian when the language is not known, since
// Bitrix24's users are mostly Russian-speaking).
func T(lang, key string) string {
	if m, ok := texts[strings.ToLower(lang)]; ok {
		if v, ok := m[key]; ok {
			return v
		}
	}
	if strings.ToLower(lang) != "ru" && lang != "" {
		if v, ok := texts["en"][key]; ok {
			return v
		}
	}
	return texts["ru"][key]
}
