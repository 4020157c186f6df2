// Command b24sim runs the Bitrix24 simulator (OAuth server + one portal's
// REST API + event delivery) as a standalone server, so a person can watch an
// Open Lines conversation flow through the gateway without a Bitrix24
// account.
//
// Point the gateway's Bitrix24 OAuth server URL at this server (e.g.
// http://127.0.0.1:9091; /oauth/token/ lives here) and give it the same
// -client-id/-client-secret. The portal's client_endpoint in tokens and
// events is http://127.0.0.1:9091/rest/. Install the app by letting the
// simulator post ONAPPINSTALL to the gateway (-install-url, or the button on
// the page), then open http://127.0.0.1:9091/sim/ to read each line's
// transcript and answer as an operator, and to open the app page or a CRM
// card tab in the browser as a portal user would.
//
// Control API:
//
//	POST /sim/operator-reply {"line","chat","text"}  operator answers in a dialog
//	POST /sim/install        {"url","lang"}          post ONAPPINSTALL to url
//	GET  /sim/lines                                  lines, dialogs and transcripts
//	GET  /sim/deliveries                             events posted to the gateway
//	POST /sim/open (form: placement, user, handler, id)
//	                                                 a page that opens the app's
//	                                                 iframe in this browser
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim/console"
	"github.com/switchboard/switchboard/internal/sandbox/simhttp"
)

type config struct {
	addr         string
	baseURL      string
	memberID     string
	domain       string
	clientID     string
	clientSecret string
	appToken     string
	redirectURL  string
	installURL   string
	appURL       string
	lines        []b24sim.OpenLine
	pipelines    []b24sim.DealCategory
	leakRate     float64
	leakBurst    int
	maxRecorded  int
}

func main() {
	simhttp.Main("b24sim", os.Args[1:], parseFlags, run)
}

func parseFlags(args []string) (config, error) {
	var c config
	var lines, pipelines string
	fs := flag.NewFlagSet("b24sim", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", ":9091", "listen address")
	fs.StringVar(&c.baseURL, "base-url", "", "URL the gateway reaches this simulator at, for client_endpoint and file links (default: http://127.0.0.1:<port of -addr>)")
	fs.StringVar(&c.memberID, "member-id", "3f9b2c7d1e4a5b6c8d9e0f1a2b3c4d5e", "portal member_id (32 hex)")
	fs.StringVar(&c.domain, "domain", "example.bitrix24.ru", "portal domain")
	fs.StringVar(&c.clientID, "client-id", simhttp.EnvOr("B24SIM_CLIENT_ID", "sandbox.client"), "app client_id (env B24SIM_CLIENT_ID)")
	fs.StringVar(&c.clientSecret, "client-secret", simhttp.EnvOr("B24SIM_CLIENT_SECRET", "sandbox-secret"), "app client_secret (env B24SIM_CLIENT_SECRET)")
	fs.StringVar(&c.appToken, "app-token", simhttp.EnvOr("B24SIM_APP_TOKEN", "8c41d2f07e9a3b5c6d1e2f3a4b5c6d7e"), "application_token sent with every event (env B24SIM_APP_TOKEN)")
	fs.StringVar(&c.redirectURL, "redirect-url", "", "app card redirect URI for /oauth/authorize/")
	fs.StringVar(&c.installURL, "install-url", "", "post ONAPPINSTALL to this URL once listening (the gateway's install handler)")
	fs.StringVar(&c.appURL, "app-url", "", "the app's page (its handler in the app card; default: /bitrix24/app next to -install-url, else http://127.0.0.1:8080/bitrix24/app)")
	fs.StringVar(&lines, "lines", "1:WhatsApp,2:Instagram,3:Сайт", "Open Lines as id:name, comma-separated")
	fs.StringVar(&pipelines, "pipelines", "1:Опт,2:Розница", "deal pipelines besides the default one, as id:name, comma-separated (each gets NEW, PREPARATION, WON and LOSE stages)")
	fs.Float64Var(&c.leakRate, "leak-rate", b24sim.DefaultLeakRate, "leaky bucket drain per second (negative disables)")
	fs.IntVar(&c.leakBurst, "leak-burst", b24sim.DefaultLeakBurst, "leaky bucket size (negative disables)")
	fs.IntVar(&c.maxRecorded, "max-recorded", 1000, "requests, calls and deliveries kept in memory")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	ls, err := parseLines(lines)
	if err != nil {
		return c, err
	}
	c.lines = ls
	ps, err := parseLines(pipelines)
	if err != nil && strings.TrimSpace(pipelines) != "" {
		return c, fmt.Errorf("-pipelines: %w", err)
	}
	for _, p := range ps {
		c.pipelines = append(c.pipelines, b24sim.DealCategory{ID: p.ID, Name: p.Name, Sort: 100 * (len(c.pipelines) + 4)})
	}
	if c.appURL == "" {
		c.appURL = appURLFor(c.installURL)
	}
	if c.baseURL == "" {
		// The install event goes out before the gateway's first request,
		// so the simulator cannot learn its address from a Host header.
		c.baseURL = defaultBaseURL(c.addr)
	}
	c.baseURL = strings.TrimSuffix(c.baseURL, "/")
	return c, nil
}

// defaultBaseURL turns a listen address into a local URL: ":9091" and
// "0.0.0.0:9091" become http://127.0.0.1:9091.
func defaultBaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// formInstallURL is what the page's install form starts with: -install-url,
// else the gateway's install handler next to -redirect-url, else the
// README's local gateway. An empty field showing the address as a grey
// placeholder made a new user's first press fail ("url must be an
// http(s) URL"). Only -install-url posts on its own at start.
func formInstallURL(c config) string {
	if c.installURL != "" {
		return c.installURL
	}
	if u, err := url.Parse(c.redirectURL); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		u.Path, u.RawQuery, u.Fragment = "/bitrix24/install", "", ""
		return u.String()
	}
	return "http://127.0.0.1:8080/bitrix24/install"
}

// appURLFor guesses the app page from the install handler: the gateway
// serves both, /bitrix24/install and /bitrix24/app.
func appURLFor(installURL string) string {
	u, err := url.Parse(installURL)
	if installURL == "" || err != nil || u.Host == "" {
		return "http://127.0.0.1:8080/bitrix24/app"
	}
	u.Path, u.RawQuery = "/bitrix24/app", ""
	return u.String()
}

func parseLines(s string) ([]b24sim.OpenLine, error) {
	var out []b24sim.OpenLine
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		idStr, name, _ := strings.Cut(item, ":")
		id, err := strconv.Atoi(strings.TrimSpace(idStr))
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("-lines: %q is not id:name", item)
		}
		out = append(out, b24sim.OpenLine{ID: id, Name: strings.TrimSpace(name)})
	}
	if len(out) == 0 {
		return nil, errors.New("-lines: at least one line is needed")
	}
	return out, nil
}

func newSim(cfg config, logger *slog.Logger) *b24sim.Server {
	sim := b24sim.New(b24sim.Options{
		ClientID:     cfg.clientID,
		ClientSecret: cfg.clientSecret,
		BaseURL:      cfg.baseURL,
		RedirectURL:  cfg.redirectURL,
		LeakRate:     cfg.leakRate,
		LeakBurst:    cfg.leakBurst,
		Logger:       logger,
		MaxRecorded:  cfg.maxRecorded,
	})
	sim.AddPortal(b24sim.PortalOptions{
		MemberID:         cfg.memberID,
		Domain:           cfg.domain,
		ApplicationToken: cfg.appToken,
		Lines:            cfg.lines,
		DealCategories:   cfg.pipelines,
	})
	// A customer with a deal, so that a card tab has someone to show: the
	// Meta simulator's default customer writes from this number.
	contact := sim.AddContact(cfg.memberID, map[string]any{"NAME": "Анна", "LAST_NAME": "Смирнова",
		"PHONE": []map[string]any{{"VALUE": "+7 916 123-45-67", "VALUE_TYPE": "MOBILE"}}})
	sim.AddDeal(cfg.memberID, map[string]any{"TITLE": "Заказ 4512", "CONTACT_ID": contact})
	return sim
}

func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	sim := newSim(cfg, logger)
	defer sim.Close()
	srv := &http.Server{
		Addr:              cfg.addr,
		Handler:           newHandler(sim, cfg, logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Info("b24sim listening", "addr", cfg.addr, "member_id", cfg.memberID, "domain", cfg.domain, "client_id", cfg.clientID, "lines", len(cfg.lines))

	if cfg.installURL != "" {
		// Give the listener a moment, then install once; Bitrix24 does not
		// retry either, and the page has a button to do it again.
		go func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			status, err := sim.PostInstallEvent(ctx, cfg.memberID, cfg.installURL, "")
			logger.Info("ONAPPINSTALL posted", "url", cfg.installURL, "status", status, "err", err)
		}()
	}

	return simhttp.Serve(ctx, srv)
}

func newHandler(sim *b24sim.Server, cfg config, logger *slog.Logger) http.Handler {
	return console.Handler(sim, console.Config{MemberID: cfg.memberID, Domain: cfg.domain, InstallURL: formInstallURL(cfg),
		AppURL: cfg.appURL, Lines: cfg.lines}, logger)
}
