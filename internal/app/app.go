// Package app wires the gateway from its configuration: the one place that
// knows every room. cmd/switchboard and the end-to-end tests both use it.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
	"github.com/switchboard/switchboard/internal/channel/instagram"
	"github.com/switchboard/switchboard/internal/channel/whatsapp"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/crm/bitrix24"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/metrics"
	"github.com/switchboard/switchboard/internal/netguard"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web"
)

// App is a wired gateway.
type App struct {
	Config    *config.Config
	DB        *store.DB
	Store     *store.Store
	Queue     *queue.Queue
	Messaging *messaging.Service
	Metrics   *metrics.Metrics
	Signer    *media.Signer
	Router    *routing.Router
	Bitrix24  *bitrix24.Service
	Log       *slog.Logger
	// AdminToken is the operator's token (configured or generated).
	AdminToken string
	// NewAdminToken is true when this start generated the admin token.
	NewAdminToken    bool
	DefaultWorkspace *store.Workspace
	handler          http.Handler
}

// OpenDB connects to the configured database.
func OpenDB(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	if cfg.DatabaseURL == "" {
		if err := cfg.EnsureDataDir(); err != nil {
			return nil, err
		}
	}
	return store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
}

// New builds the gateway and applies pending migrations.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.EnsureDataDir(); err != nil {
		return nil, err
	}
	key, err := secretKey(cfg)
	if err != nil {
		return nil, err
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return nil, err
	}
	admin, generated, err := adminToken(cfg)
	if err != nil {
		return nil, err
	}
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db.Log = log
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	st := store.New(db, box)
	ws, err := st.EnsureDefaultWorkspace(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	files, err := media.NewLocalStore(filepath.Join(cfg.DataDir, "media"))
	if err != nil {
		db.Close()
		return nil, err
	}
	m := metrics.New()
	signer := media.NewSigner(key, cfg.PublicURL, cfg.MediaURLTTL)

	// One client for every Meta call: Graph hands out media links on other
	// hosts, and Instagram attachments are CDN links, so the same guard
	// against private addresses applies to all of them.
	hc := netguard.NewClient(cfg.HTTPClientTimeout, cfg.AllowPrivateEndpoints)
	reg := channel.NewRegistry()
	reg.Register(whatsapp.NewProvider(whatsapp.NewClient(graph.NewClient(cfg.MetaGraphURL, cfg.MetaAPIVersion, hc))))
	reg.Register(instagram.NewProvider(instagram.NewClient(graph.NewClient(cfg.InstagramGraphURL, cfg.MetaAPIVersion, hc))))

	q := queue.New(db, queue.Options{Workers: cfg.QueueWorkers, Logger: log, Registerer: m.Registry})
	svc := messaging.New(st, reg, files, signer, m, log, messaging.Config{
		MediaMaxBytes: cfg.MediaMaxBytes, UploadMaxBytes: cfg.UploadMaxBytes,
		SendRate: cfg.SendRate, SendBurst: cfg.SendBurst, Phone: phone.Default,
		SendTimeout: cfg.HTTPClientTimeout,
	}, q.Notify)
	svc.Register(q)

	router := routing.New(st, log)
	svc.AddHook(router)
	router.Handle(q)
	b24 := bitrix24.New(bitrix24.Config{ClientID: cfg.Bitrix24ClientID, ClientSecret: cfg.Bitrix24ClientSecret,
		OAuthURL: cfg.Bitrix24OAuthURL, PublicURL: cfg.PublicURL, AllowPrivate: cfg.AllowPrivateEndpoints,
		OnUninstall: cfg.Bitrix24OnUninstall, Workspace: cfg.Bitrix24Workspace, SessionKey: derive(key, "bitrix24 page sessions")}, st, svc, router, signer, hc, log)
	b24.Handle(q)

	srv := web.New(web.Deps{
		Store: st, Messaging: svc, Registry: reg, Metrics: m, Signer: signer, Queue: q, Log: log, Bitrix24: b24,
		AdminToken: admin, MetaVerifyToken: cfg.MetaVerifyToken, MetaAppSecret: cfg.MetaAppSecret,
		WebhookMaxBytes: cfg.WebhookMaxBytes, UploadMaxBytes: cfg.UploadMaxBytes,
		DefaultWorkspaceID: ws.ID,
	})
	if cfg.MetaAppSecret == "" {
		log.Warn("SWITCHBOARD_META_APP_SECRET is not set: every Meta webhook will be refused (401)")
	}
	return &App{Config: cfg, DB: db, Store: st, Queue: q, Messaging: svc, Metrics: m, Signer: signer, Log: log, Router: router, Bitrix24: b24,
		AdminToken: admin, NewAdminToken: generated, DefaultWorkspace: ws, handler: srv.Handler()}, nil
}

func (a *App) Handler() http.Handler { return a.handler }

// Start runs the queue workers.
func (a *App) Start(ctx context.Context) error {
	// Portals whose handlers missed this gateway are set up again: the
	// public URL may have been fixed since.
	if a.Bitrix24 != nil {
		if _, err := a.Bitrix24.RecheckMismatched(ctx); err != nil {
			return err
		}
	}
	return a.Queue.Start(ctx)
}

// Close drains the queue within ctx and closes the database.
func (a *App) Close(ctx context.Context) error {
	err := a.Queue.Stop(ctx)
	return errors.Join(err, a.DB.Close())
}

func secretKey(cfg *config.Config) ([]byte, error) {
	if cfg.SecretKey != "" {
		return secret.ParseKey(cfg.SecretKey)
	}
	if cfg.DatabaseURL != "" {
		// Several instances share one database; a key generated on one
		// machine would make the others unable to read its tokens.
		return nil, errors.New("SWITCHBOARD_SECRET_KEY is required with PostgreSQL (32 bytes, base64): generate one with `openssl rand -base64 32`")
	}
	return secret.LoadOrCreateKey(filepath.Join(cfg.DataDir, "secret.key"))
}

// adminToken returns the configured token, or the one kept in the data
// directory, generating it on the first start.
func adminToken(cfg *config.Config) (string, bool, error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, false, nil
	}
	path := filepath.Join(cfg.DataDir, "admin_token")
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("app: read admin token: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	tok := "sba_" + base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("app: write admin token: %w", err)
	}
	return tok, true, nil
}

// NewLogger builds the slog logger from the configuration.
func NewLogger(cfg *config.Config, w *os.File) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ShutdownTimeout bounds the drain on SIGTERM.
func (a *App) ShutdownTimeout() time.Duration { return a.Config.ShutdownTimeout }

// derive makes a key for one purpose from the gateway's secret, so no
// single use exposes another.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
