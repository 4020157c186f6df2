// Package config reads the gateway's settings: defaults, then an optional
// YAML file, then SWITCHBOARD_* environment variables, each overriding the
// one before.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts every environment variable the gateway reads. The rest
// of the name, lower-cased, is the key in the YAML file
// (SWITCHBOARD_HTTP_ADDR ↔ http_addr).
const EnvPrefix = "SWITCHBOARD_"

// Config is every setting. Keys are flat so that an environment variable
// and a file key always correspond one to one.
type Config struct {
	HTTPAddr    string `koanf:"http_addr"`
	DataDir     string `koanf:"data_dir"`
	DatabaseURL string `koanf:"database_url"`
	// PublicURL is how CRMs and Meta reach this gateway; signed media
	// links are built on it.
	PublicURL  string `koanf:"public_url"`
	AdminToken string `koanf:"admin_token"`
	SecretKey  string `koanf:"secret_key"`
	LogLevel   string `koanf:"log_level"`
	LogFormat  string `koanf:"log_format"`

	MetaVerifyToken   string `koanf:"meta_verify_token"`
	MetaAppSecret     string `koanf:"meta_app_secret"`
	MetaGraphURL      string `koanf:"meta_graph_url"`
	MetaAPIVersion    string `koanf:"meta_api_version"`
	InstagramGraphURL string `koanf:"instagram_graph_url"`
	WebhookMaxBytes   int64  `koanf:"webhook_max_bytes"`

	MediaMaxBytes  int64         `koanf:"media_max_bytes"`
	MediaURLTTL    time.Duration `koanf:"media_url_ttl"`
	UploadMaxBytes int64         `koanf:"upload_max_bytes"`

	QueueWorkers int `koanf:"queue_workers"`
	// SendRate is the default per-channel send rate (messages per second)
	// and SendBurst its bucket size; a channel may set its own rate.
	SendRate  float64 `koanf:"send_rate"`
	SendBurst int     `koanf:"send_burst"`

	Bitrix24ClientID     string `koanf:"bitrix24_client_id"`
	Bitrix24ClientSecret string `koanf:"bitrix24_client_secret"`
	Bitrix24OAuthURL     string `koanf:"bitrix24_oauth_url"`
	// Bitrix24OnUninstall: keep, on_clean (delete when the admin asks
	// Bitrix24 to clear the app's data) or always.
	Bitrix24OnUninstall string `koanf:"bitrix24_on_uninstall"`
	// Bitrix24Workspace places a portal installed from Bitrix24's side:
	// auto (the default workspace while it is the only one and holds no
	// portal, else a new workspace per portal), default, or new.
	Bitrix24Workspace string `koanf:"bitrix24_workspace"`

	AllowPrivateEndpoints bool          `koanf:"allow_private_endpoints"`
	ShutdownTimeout       time.Duration `koanf:"shutdown_timeout"`
	HTTPClientTimeout     time.Duration `koanf:"http_client_timeout"`
}

// Defaults let `switchboard` start with nothing configured.
func Defaults() map[string]any {
	return map[string]any{
		"http_addr":               ":8080",
		"data_dir":                "./data",
		"public_url":              "http://localhost:8080",
		"log_level":               "info",
		"log_format":              "text",
		"meta_graph_url":          "https://graph.facebook.com",
		"meta_api_version":        "v25.0",
		"webhook_max_bytes":       int64(4 << 20),
		"media_max_bytes":         int64(100 << 20),
		"media_url_ttl":           "24h",
		"upload_max_bytes":        int64(100 << 20),
		"queue_workers":           4,
		"send_rate":               60.0,
		"send_burst":              20,
		"allow_private_endpoints": false,
		"bitrix24_oauth_url":      "https://oauth.bitrix.info",
		"bitrix24_on_uninstall":   "on_clean",
		"bitrix24_workspace":      "auto",
		"shutdown_timeout":        "30s",
		"http_client_timeout":     "30s",
	}
}

// Load reads defaults, then the YAML file at path (if not empty), then the
// environment.
func Load(path string, environ []string) (*Config, error) {
	k := koanf.New("::")
	if err := k.Load(confmap.Provider(Defaults(), "::"), nil); err != nil {
		return nil, fmt.Errorf("config: defaults: %w", err)
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", path, err)
		}
	}
	envMap := map[string]any{}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		envMap[strings.ToLower(strings.TrimPrefix(name, EnvPrefix))] = val
	}
	if err := k.Load(confmap.Provider(envMap, "::"), nil); err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	var c Config
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf", FlatPaths: true}); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.InstagramGraphURL == "" {
		c.InstagramGraphURL = c.MetaGraphURL
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate names the first setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	for name, u := range map[string]string{"SWITCHBOARD_PUBLIC_URL": c.PublicURL, "SWITCHBOARD_META_GRAPH_URL": c.MetaGraphURL, "SWITCHBOARD_INSTAGRAM_GRAPH_URL": c.InstagramGraphURL} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s must be an http(s) URL, got %q", name, u))
		}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("SWITCHBOARD_DATABASE_URL must start with postgres:// (leave it empty for the embedded SQLite)"))
	}
	if c.WebhookMaxBytes <= 0 || c.MediaMaxBytes <= 0 || c.UploadMaxBytes <= 0 {
		errs = append(errs, errors.New("size limits must be positive"))
	}
	if c.QueueWorkers < 1 {
		errs = append(errs, errors.New("SWITCHBOARD_QUEUE_WORKERS must be at least 1"))
	}
	if c.SendRate <= 0 || c.SendBurst < 1 {
		errs = append(errs, errors.New("SWITCHBOARD_SEND_RATE must be positive and SWITCHBOARD_SEND_BURST at least 1"))
	}
	switch c.Bitrix24OnUninstall {
	case "keep", "on_clean", "always":
	default:
		errs = append(errs, errors.New(`SWITCHBOARD_BITRIX24_ON_UNINSTALL must be "keep", "on_clean" or "always"`))
	}
	switch c.Bitrix24Workspace {
	case "", "auto", "default", "new":
	default:
		errs = append(errs, errors.New(`SWITCHBOARD_BITRIX24_WORKSPACE must be "auto", "default" or "new"`))
	}
	if p, err := url.Parse(c.Bitrix24OAuthURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		errs = append(errs, fmt.Errorf("SWITCHBOARD_BITRIX24_OAUTH_URL must be an http(s) URL, got %q", c.Bitrix24OAuthURL))
	}
	if c.MediaURLTTL <= 0 {
		errs = append(errs, errors.New("SWITCHBOARD_MEDIA_URL_TTL must be positive"))
	}
	return errors.Join(errs...)
}

// SQLitePath is where the embedded database lives.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "switchboard.db") }

// EnsureDataDir creates the data directory with private permissions.
func (c *Config) EnsureDataDir() error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("config: create data dir: %w", err)
	}
	return nil
}
