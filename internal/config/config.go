// Package config reads the gateway's settings: defaults, then an optional
// YAML file, then SWITCHBOARD_* environment variables, each overriding the
// one before.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
	// PublicURL is how CRMs and Meta reach this gateway: Bitrix24's event
	// handlers, OAuth redirects and signed media links are built on it.
	// Unset, it is derived from HTTPAddr (PublicURLDerived tells so), which
	// is right only for trying the gateway on one machine.
	PublicURL        string `koanf:"public_url"`
	PublicURLDerived bool   `koanf:"-"`
	AdminToken       string `koanf:"admin_token"`
	SecretKey        string `koanf:"secret_key"`
	LogLevel         string `koanf:"log_level"`
	LogFormat        string `koanf:"log_format"`

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
	// QueueLease is how long a claimed job belongs to its instance: the
	// jobs of an instance that died are run elsewhere once it passes. It
	// must outlast the slowest handler (an outbound HTTP call is bounded by
	// HTTPClientTimeout); fault tests shorten it so a takeover is quick.
	QueueLease time.Duration `koanf:"queue_lease"`
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
	// Bitrix24Rate and Bitrix24Burst space the REST calls to each portal
	// (calls per second and bucket size): Bitrix24's own limit, 2 and 50
	// on standard plans, 5 and 250 on Enterprise. On PostgreSQL they hold
	// for all instances together (crm.SharedLimiter).
	Bitrix24Rate  float64 `koanf:"bitrix24_rate"`
	Bitrix24Burst int     `koanf:"bitrix24_burst"`

	// AmoCRMClientID, AmoCRMClientSecret and AmoCRMRedirectURI are the
	// amoCRM/Kommo integration's keys; without the first two the amoCRM
	// routes answer 503 amocrm_not_configured. The Redirect URI must equal
	// the integration's (amoCRM compares it on every token request);
	// empty, it is PublicURL + /amocrm/oauth/callback.
	AmoCRMClientID     string `koanf:"amocrm_client_id"`
	AmoCRMClientSecret string `koanf:"amocrm_client_secret"`
	AmoCRMRedirectURI  string `koanf:"amocrm_redirect_uri"`
	// AmoCRMChannelID, AmoCRMChannelSecret and AmoCRMChannelCode are the
	// Chats API (amojo) channel amoCRM registered for the integration;
	// optional (without them the widget's own chat window serves).
	AmoCRMChannelID     string `koanf:"amocrm_channel_id"`
	AmoCRMChannelSecret string `koanf:"amocrm_channel_secret"`
	AmoCRMChannelCode   string `koanf:"amocrm_channel_code"`
	// AmoCRMBaseURL is one more account base the gateway may call besides
	// *.amocrm.ru, *.kommo.com and *.amocrm.com, for the simulator and
	// tests (e.g. http://127.0.0.1:9093; a loopback base also needs
	// AllowPrivateEndpoints). A referer equal to its host is called there.
	AmoCRMBaseURL string `koanf:"amocrm_base_url"`
	// AmoCRMWorkspace places an account installed from amoCRM's side (the
	// widget), as Bitrix24Workspace does for portals: auto, default or new.
	AmoCRMWorkspace string `koanf:"amocrm_workspace"`
	// AmoCRMChatContactWait is how long a new customer's first message
	// waits for the contact the gateway creates before it goes into
	// amoCRM's chat without one (then amoCRM adds an incoming lead of its
	// own rather than the message waiting longer).
	AmoCRMChatContactWait time.Duration `koanf:"amocrm_chat_contact_wait"`

	// MetricsAddr, when set, serves /metrics on a listener of its own (for
	// example 127.0.0.1:9100) and nowhere else. Unset, /metrics is on the
	// main listener and wants MetricsToken, or the admin token when that is
	// unset, since the series tell outsiders about traffic and versions.
	MetricsAddr  string `koanf:"metrics_addr"`
	MetricsToken string `koanf:"metrics_token"`

	// SessionIdleTimeout ends a cabinet session unused for this long;
	// SessionMaxAge ends every session this long after sign-in.
	SessionIdleTimeout time.Duration `koanf:"session_idle_timeout"`
	SessionMaxAge      time.Duration `koanf:"session_max_age"`
	// LoginFailuresPerAccount failed sign-ins to one e-mail, or
	// LoginFailuresPerIP from one address, within LoginFailureWindow lock
	// the cabinet's sign-in for them until the oldest leaves the window.
	LoginFailuresPerAccount int           `koanf:"login_failures_per_account"`
	LoginFailuresPerIP      int           `koanf:"login_failures_per_ip"`
	LoginFailureWindow      time.Duration `koanf:"login_failure_window"`
	// TrustedProxies lists the reverse proxies (comma-separated IPs or
	// CIDRs) whose X-Forwarded-For names the client; empty trusts none.
	TrustedProxies string `koanf:"trusted_proxies"`

	AllowPrivateEndpoints bool          `koanf:"allow_private_endpoints"`
	ShutdownTimeout       time.Duration `koanf:"shutdown_timeout"`
	// BodyReadTimeout bounds the sending of a request body on every route
	// but uploads, which get UploadReadTimeout.
	BodyReadTimeout   time.Duration `koanf:"body_read_timeout"`
	UploadReadTimeout time.Duration `koanf:"upload_read_timeout"`
	HTTPClientTimeout time.Duration `koanf:"http_client_timeout"`
}

// Defaults let `switchboard` start with nothing configured.
func Defaults() map[string]any {
	return map[string]any{
		"http_addr":                  ":8080",
		"data_dir":                   "./data",
		"log_level":                  "info",
		"log_format":                 "text",
		"meta_graph_url":             "https://graph.facebook.com",
		"meta_api_version":           "v25.0",
		"webhook_max_bytes":          int64(4 << 20),
		"media_max_bytes":            int64(100 << 20),
		"media_url_ttl":              "24h",
		"upload_max_bytes":           int64(100 << 20),
		"queue_workers":              4,
		"queue_lease":                "2m",
		"send_rate":                  60.0,
		"send_burst":                 20,
		"allow_private_endpoints":    false,
		"bitrix24_oauth_url":         "https://oauth.bitrix.info",
		"bitrix24_on_uninstall":      "on_clean",
		"bitrix24_workspace":         "auto",
		"bitrix24_rate":              2.0,
		"bitrix24_burst":             40,
		"amocrm_workspace":           "auto",
		"amocrm_chat_contact_wait":   "2m",
		"shutdown_timeout":           "30s",
		"session_idle_timeout":       "12h",
		"session_max_age":            "168h",
		"login_failures_per_account": 5,
		"login_failures_per_ip":      20,
		"login_failure_window":       "15m",
		"body_read_timeout":          "15s",
		"upload_read_timeout":        "2m",
		"http_client_timeout":        "30s",
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
	// A misspelt key would otherwise leave its setting at the default
	// without a word (publc_url: the handlers then point nowhere).
	known := knownKeys()
	var unknown []string
	for _, key := range k.Keys() {
		if !known[key] {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("config: unknown settings %s (file keys in lower case, or SWITCHBOARD_ + the key in capitals; config/switchboard.example.yaml lists them)", strings.Join(unknown, ", "))
	}
	var c Config
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf", FlatPaths: true}); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.InstagramGraphURL == "" {
		c.InstagramGraphURL = c.MetaGraphURL
	}
	if c.PublicURL == "" {
		c.PublicURL, c.PublicURLDerived = LocalURL(c.HTTPAddr), true
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// knownKeys are the keys Config reads.
func knownKeys() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("koanf"); tag != "" && tag != "-" {
			out[tag] = true
		}
	}
	return out
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
	if c.QueueLease < time.Second {
		errs = append(errs, errors.New("SWITCHBOARD_QUEUE_LEASE must be at least 1s"))
	}
	if c.SendRate <= 0 || c.SendBurst < 1 {
		errs = append(errs, errors.New("SWITCHBOARD_SEND_RATE must be positive and SWITCHBOARD_SEND_BURST at least 1"))
	}
	if c.Bitrix24Rate <= 0 || c.Bitrix24Burst < 1 {
		errs = append(errs, errors.New("SWITCHBOARD_BITRIX24_RATE must be positive and SWITCHBOARD_BITRIX24_BURST at least 1"))
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
	switch c.AmoCRMWorkspace {
	case "", "auto", "default", "new":
	default:
		errs = append(errs, errors.New(`SWITCHBOARD_AMOCRM_WORKSPACE must be "auto", "default" or "new"`))
	}
	if c.AmoCRMBaseURL != "" {
		if p, err := url.Parse(c.AmoCRMBaseURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || (p.Path != "" && p.Path != "/") {
			errs = append(errs, fmt.Errorf("SWITCHBOARD_AMOCRM_BASE_URL must be an http(s) URL with no path, got %q", c.AmoCRMBaseURL))
		}
	}
	if c.AmoCRMChatContactWait <= 0 || c.AmoCRMChatContactWait > time.Hour {
		errs = append(errs, fmt.Errorf("SWITCHBOARD_AMOCRM_CHAT_CONTACT_WAIT must be a duration above 0 and at most 1h (e.g. 2m), got %s", c.AmoCRMChatContactWait))
	}
	if c.AmoCRMRedirectURI != "" {
		if p, err := url.Parse(c.AmoCRMRedirectURI); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("SWITCHBOARD_AMOCRM_REDIRECT_URI must be an http(s) URL, got %q", c.AmoCRMRedirectURI))
		}
	}
	if p, err := url.Parse(c.Bitrix24OAuthURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		errs = append(errs, fmt.Errorf("SWITCHBOARD_BITRIX24_OAUTH_URL must be an http(s) URL, got %q", c.Bitrix24OAuthURL))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf(`SWITCHBOARD_LOG_FORMAT must be "text" or "json", got %q`, c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf(`SWITCHBOARD_LOG_LEVEL must be "debug", "info", "warn" or "error", got %q`, c.LogLevel))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("SWITCHBOARD_METRICS_ADDR must be host:port (e.g. 127.0.0.1:9100), got %q", c.MetricsAddr))
		}
	}
	if c.BodyReadTimeout <= 0 || c.UploadReadTimeout < c.BodyReadTimeout {
		errs = append(errs, errors.New("SWITCHBOARD_BODY_READ_TIMEOUT must be positive and SWITCHBOARD_UPLOAD_READ_TIMEOUT at least as long"))
	}
	if c.SessionIdleTimeout <= 0 || c.SessionMaxAge < c.SessionIdleTimeout {
		errs = append(errs, errors.New("SWITCHBOARD_SESSION_IDLE_TIMEOUT must be positive and SWITCHBOARD_SESSION_MAX_AGE at least as long"))
	}
	if c.LoginFailuresPerAccount < 1 || c.LoginFailuresPerIP < 1 || c.LoginFailureWindow <= 0 {
		errs = append(errs, errors.New("SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT and _PER_IP must be at least 1 and SWITCHBOARD_LOGIN_FAILURE_WINDOW positive"))
	}
	for _, p := range c.TrustedProxyList() {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				errs = append(errs, fmt.Errorf("SWITCHBOARD_TRUSTED_PROXIES lists IPs or CIDRs separated by commas; %q is neither", p))
			}
		}
	}
	if c.MediaURLTTL <= 0 {
		errs = append(errs, errors.New("SWITCHBOARD_MEDIA_URL_TTL must be positive"))
	}
	return errors.Join(errs...)
}

// LocalURL is the URL of a listen address as seen from the same machine:
// ":9000" and "0.0.0.0:9000" are http://localhost:9000.
func LocalURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// PublicURLProblem says why Meta and CRMs could not reach the gateway at
// its public URL, or "" when the URL looks reachable from outside.
func (c *Config) PublicURLProblem() string {
	p, err := url.Parse(c.PublicURL)
	if err != nil {
		return "it is not a URL"
	}
	host := p.Hostname()
	if c.PublicURLDerived {
		return "SWITCHBOARD_PUBLIC_URL is not set, so it was taken from the listen address"
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "it names this machine (localhost)"
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast()) {
		return "it is a loopback or private address"
	}
	if p.Scheme != "https" {
		return "it is not https"
	}
	return ""
}

// TrustedProxyList is TrustedProxies as a list.
func (c *Config) TrustedProxyList() []string {
	var out []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
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
