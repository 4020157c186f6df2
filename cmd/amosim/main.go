// Command amosim runs the amoCRM simulator (one example account's OAuth
// endpoint and API v4, the disable hook, disposable widget tokens and the
// Chats API) as a standalone server, so a person can watch WhatsApp and
// Instagram conversations turn into amoCRM leads, notes and chats without an
// amoCRM account.
//
// Give the gateway the same client id, secret and redirect URI, and the
// simulator's URL as its amoCRM test base (the referer the simulator sends is
// its own host:port). Open http://127.0.0.1:9093/sim/ to install the widget
// (the simulator calls the redirect URI with a code, as amoCRM does), read
// leads, notes, tasks and chats, answer in a chat as a manager, mint a
// widget token, switch the account to unpaid, or disable the integration,
// and to open the widget's settings page or a card's window as a user sees
// them in amoCRM: a page of the simulator's origin (the account's, for the
// gateway) whose script trades a disposable token for the gateway's ticket
// (-gateway-url; the gateway must run with SWITCHBOARD_AMOCRM_BASE_URL set
// to this simulator's URL and SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true, or
// it answers no other origin) and frames the gateway's page.
//
// Control API:
//
//	GET  /sim/state                                  accounts and their data (JSON)
//	POST /sim/install        (form: account)         GET redirect URI with code & referer
//	POST /sim/disable        (form: account)         GET the disable hook, signed
//	POST /sim/manager-reply  (form: account, conversation, user, text)
//	                                                 a manager answers in a chat
//	POST /sim/unpaid         (form: account, unpaid) switch the subscription
//	POST /sim/widget-token   (form: account, user)   a disposable token (JSON)
//	POST /sim/dp-action      (form: account, pipeline, status or "pipeline:status", text, template,
//	                          template_params, template_language, channel)
//	                                                 save the widget's digital pipeline
//	                                                 action on a stage (the key is fetched
//	                                                 from -gateway-url as the widget does)
//	POST /sim/move-lead      (form: account, lead, status)
//	                                                 move a lead; a saved action posts its run
//	GET  /sim/widget/settings?account=&user=&lang=   the widget's settings page (advanced_settings)
//	                                                 as the user sees it, the gateway's page framed
//	GET  /sim/widget/card?account=&user=&entity=leads|contacts&id=&lang=
//	                                                 a lead's or contact's card with the widget's
//	                                                 card window framed
//	GET  /sim/widget/frame.js                        those pages' script (the widget script's part)
package main

import (
	"context"
	"encoding/json"
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

	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/sandbox/simhttp"
)

type config struct {
	addr          string
	baseURL       string
	clientID      string
	clientSecret  string
	redirectURI   string
	disableURL    string
	channelID     string
	channelSecret string
	hookURL       string
	dpURL         string
	gatewayURL    string
	rate          float64
}

func main() {
	simhttp.Main("amosim", os.Args[1:], parseFlags, run)
}

// run serves the simulator until ctx ends.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	sim := newSim(cfg, logger)
	defer sim.Close()
	srv := &http.Server{Addr: cfg.addr, Handler: newHandler(sim, cfg, logger), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("amosim listening", "addr", cfg.addr, "base", cfg.baseURL, "client_id", cfg.clientID)
	return simhttp.Serve(ctx, srv)
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("amosim", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", ":9093", "listen address")
	fs.StringVar(&c.baseURL, "base-url", "", "URL the gateway reaches this simulator at; its host:port is the referer (default: http://127.0.0.1:<port of -addr>)")
	fs.StringVar(&c.clientID, "client-id", simhttp.EnvOr("AMOSIM_CLIENT_ID", "6a2d4741-1b2c-4d3e-8f90-92277723dcea"), "integration id (env AMOSIM_CLIENT_ID)")
	fs.StringVar(&c.clientSecret, "client-secret", simhttp.EnvOr("AMOSIM_CLIENT_SECRET", "sandbox-client-secret"), "integration secret (env AMOSIM_CLIENT_SECRET)")
	fs.StringVar(&c.redirectURI, "redirect-uri", "http://127.0.0.1:8080/amocrm/oauth/callback", "the integration's redirect URI (install calls it)")
	fs.StringVar(&c.disableURL, "disable-url", "http://127.0.0.1:8080/amocrm/disabled", "the integration's disable hook")
	fs.StringVar(&c.channelID, "channel-id", simhttp.EnvOr("AMOSIM_CHANNEL_ID", "f90ba33d-c9d9-44da-b76c-c349b0ecbe41"), "Chats API channel id (env AMOSIM_CHANNEL_ID)")
	fs.StringVar(&c.channelSecret, "channel-secret", simhttp.EnvOr("AMOSIM_CHANNEL_SECRET", "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189"), "Chats API channel secret (env AMOSIM_CHANNEL_SECRET)")
	fs.StringVar(&c.hookURL, "hook-url", "http://127.0.0.1:8080/amocrm/amojo/:scope_id", "where manager replies are posted (:scope_id is replaced)")
	fs.StringVar(&c.dpURL, "dp-url", "http://127.0.0.1:8080/amocrm/dp", "the widget manifest's dp.webhook_url (digital pipeline runs)")
	fs.StringVar(&c.gatewayURL, "gateway-url", "http://127.0.0.1:8080", "the widget's gateway_url: where the widget's pages get tickets and frame the gateway's pages from")
	fs.Float64Var(&c.rate, "rate", amosim.DefaultRate, "API requests per second per account (negative disables)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.baseURL == "" {
		c.baseURL = defaultBaseURL(c.addr)
	}
	c.baseURL = strings.TrimSuffix(c.baseURL, "/")
	u, err := url.Parse(c.baseURL)
	if err != nil || u.Host == "" {
		return c, fmt.Errorf("-base-url %q is not a URL", c.baseURL)
	}
	c.gatewayURL = strings.TrimRight(c.gatewayURL, "/")
	if g, err := url.Parse(c.gatewayURL); err != nil || g.Host == "" || (g.Scheme != "http" && g.Scheme != "https") || g.RawQuery != "" || g.Fragment != "" {
		return c, fmt.Errorf("-gateway-url %q is not an http(s) URL", c.gatewayURL)
	}
	return c, nil
}

// defaultBaseURL turns ":9093" or "0.0.0.0:9093" into http://127.0.0.1:9093.
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

func newSim(cfg config, logger *slog.Logger) *amosim.Server {
	u, _ := url.Parse(cfg.baseURL)
	sim := amosim.New(amosim.Options{
		ClientID: cfg.clientID, ClientSecret: cfg.clientSecret, RedirectURI: cfg.redirectURI, Referer: u.Host,
		ChannelID: cfg.channelID, ChannelSecret: cfg.channelSecret, HookURL: cfg.hookURL, DPWebhookURL: cfg.dpURL, GatewayURL: cfg.gatewayURL, Rate: cfg.rate, Logger: logger, MaxRecorded: 1000,
	})
	if err := sim.AddAccount(amosim.ExampleAccount()); err != nil {
		panic(err) // the example account is valid
	}
	return sim
}

type control struct {
	sim *amosim.Server
	cfg config
	log *slog.Logger
	hc  *http.Client
}

func newHandler(sim *amosim.Server, cfg config, logger *slog.Logger) http.Handler {
	c := &control{sim: sim, cfg: cfg, log: logger, hc: &http.Client{Timeout: 10 * time.Second}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sim", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/sim/", http.StatusFound) })
	mux.HandleFunc("GET /sim/{$}", c.page)
	mux.HandleFunc("GET /sim/state", c.state)
	mux.HandleFunc("POST /sim/install", c.install)
	mux.HandleFunc("POST /sim/disable", c.disable)
	mux.HandleFunc("POST /sim/manager-reply", c.reply)
	mux.HandleFunc("POST /sim/unpaid", c.unpaid)
	mux.HandleFunc("POST /sim/widget-token", c.widgetToken)
	mux.HandleFunc("POST /sim/dp-action", c.dpAction)
	mux.HandleFunc("POST /sim/move-lead", c.moveLead)
	mux.Handle("/", sim) // OAuth, API v4 and amojo
	return mux
}

func formInt(r *http.Request, key string, def int) (int, error) {
	v := r.FormValue(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s must be a number", key)
	}
	return n, nil
}

// done answers a form from the page with a redirect back, an API call with
// JSON.
func done(w http.ResponseWriter, r *http.Request, status int, v any) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/sim/", http.StatusSeeOther)
		return
	}
	simhttp.WriteJSON(w, status, v)
}

func (c *control) account(r *http.Request) (int, error) {
	return formInt(r, "account", amosim.ExampleAccount().ID)
}

type accountState struct {
	Spec     amosim.AccountSpec
	Scope    string
	Leads    []amosim.Lead
	Contacts []amosim.Contact
	Notes    []amosim.Note
	Tasks    []amosim.Task
	Chats    []amosim.Chat
	Counts   amosim.Counts
}

func (c *control) snapshot() []accountState {
	var out []accountState
	for _, spec := range c.sim.Accounts() {
		scope, _ := c.sim.ScopeID(spec.ID)
		out = append(out, accountState{Spec: spec, Scope: scope, Leads: c.sim.Leads(spec.ID), Contacts: c.sim.Contacts(spec.ID),
			Notes: c.sim.Notes(spec.ID), Tasks: c.sim.Tasks(spec.ID), Chats: c.sim.Chats(spec.ID), Counts: c.sim.Counts(spec.ID)})
	}
	return out
}

func (c *control) state(w http.ResponseWriter, _ *http.Request) {
	simhttp.WriteJSON(w, http.StatusOK, c.snapshot())
}

// install calls the redirect URI server to server, as amoCRM does when an
// admin installs the widget (it waits ~3 s and ignores the answer).
func (c *control) install(w http.ResponseWriter, r *http.Request) {
	id, err := c.account(r)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	q, err := c.sim.InstallRedirect(id)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	status, err := c.get(r.Context(), c.cfg.redirectURI, q, 3*time.Second)
	c.log.Info("install redirect", "url", c.cfg.redirectURI, "status", status, "err", err)
	done(w, r, http.StatusOK, map[string]any{"status": status, "error": errString(err)})
}

func (c *control) disable(w http.ResponseWriter, r *http.Request) {
	id, err := c.account(r)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	c.sim.RevokeTokens(id)
	status, err := c.get(r.Context(), c.cfg.disableURL, c.sim.DisableHookQuery(id), 10*time.Second)
	c.log.Info("disable hook", "url", c.cfg.disableURL, "status", status, "err", err)
	done(w, r, http.StatusOK, map[string]any{"status": status, "error": errString(err)})
}

func (c *control) get(ctx context.Context, target string, q url.Values, timeout time.Duration) (int, error) {
	u, err := url.Parse(target)
	if err != nil {
		return 0, err
	}
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (c *control) reply(w http.ResponseWriter, r *http.Request) {
	id, err := c.account(r)
	user, uerr := formInt(r, "user", 9000002)
	if err == nil {
		err = uerr
	}
	conv, text := r.FormValue("conversation"), strings.TrimSpace(r.FormValue("text"))
	if err == nil && (conv == "" || text == "") {
		err = errors.New("conversation and text are required")
	}
	if err != nil {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	msgID, d, err := c.sim.ManagerReply(r.Context(), id, conv, user, text)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	done(w, r, http.StatusOK, map[string]any{"msgid": msgID, "hook_status": d.Status, "hook_error": d.Err})
}

func (c *control) unpaid(w http.ResponseWriter, r *http.Request) {
	id, err := c.account(r)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	unpaid := r.FormValue("unpaid") == "on" || r.FormValue("unpaid") == "true"
	c.sim.SetUnpaid(id, unpaid)
	done(w, r, http.StatusOK, map[string]bool{"unpaid": unpaid})
}

// widgetToken mints the X-Auth-Token the widget would send for a user; the
// audience is scheme://host of the redirect URI, as amoCRM sets it.
func (c *control) widgetToken(w http.ResponseWriter, r *http.Request) {
	id, err := c.account(r)
	user, uerr := formInt(r, "user", 9000001)
	if err == nil {
		err = uerr
	}
	if err != nil {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	ru, err := url.Parse(c.cfg.redirectURI)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": "bad -redirect-uri"})
		return
	}
	tok, claims, err := c.sim.DisposableToken(id, user, ru.Scheme+"://"+ru.Host)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	simhttp.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "claims": claims})
}

// dpAction saves the widget's digital pipeline action on a stage as an
// admin does: the widget's dpSettings fetches the account's key from the
// gateway with a disposable token and puts it into the hidden setting.
func (c *control) dpAction(w http.ResponseWriter, r *http.Request) {
	id, err := c.account(r)
	// The page's select names a stage as "pipeline:status".
	if p, st, ok := strings.Cut(r.FormValue("status"), ":"); ok {
		r.Form.Set("pipeline", p)
		r.Form.Set("status", st)
	}
	pipeline, perr := formInt(r, "pipeline", 0)
	status, serr := formInt(r, "status", 0)
	if err = errors.Join(err, perr, serr); err != nil {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	admin := 0
	for _, spec := range c.sim.Accounts() {
		for _, u := range spec.Users {
			if spec.ID == id && u.IsAdmin && u.IsActive && admin == 0 {
				admin = u.ID
			}
		}
	}
	ru, err := url.Parse(c.cfg.redirectURI)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": "bad -redirect-uri"})
		return
	}
	// The token's audience is the redirect URI's host, as amoCRM signs
	// it; the call goes to the widget's gateway_url.
	tok, _, err := c.sim.DisposableToken(id, admin, ru.Scheme+"://"+ru.Host)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	key, err := c.dpKey(r.Context(), c.cfg.gatewayURL+"/amocrm/widget/dp-key", tok)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusBadGateway, map[string]string{"error": "the gateway gave no key: " + err.Error()})
		return
	}
	settings := map[string]string{"key": key}
	for _, k := range []string{"text", "template", "template_params", "template_language", "channel"} {
		if v := strings.TrimSpace(r.FormValue(k)); v != "" {
			settings[k] = v
		}
	}
	if err := c.sim.SetDPAction(id, pipeline, status, settings); err != nil {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	done(w, r, http.StatusOK, map[string]any{"saved": true})
}

func (c *control) dpKey(ctx context.Context, target, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Key string `json:"key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Key == "" {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return out.Key, nil
}

// moveLead moves a lead as a user does; a saved action posts its run.
func (c *control) moveLead(w http.ResponseWriter, r *http.Request) {
	id, err := c.account(r)
	lead, lerr := formInt(r, "lead", 0)
	status, serr := formInt(r, "status", 0)
	if err = errors.Join(err, lerr, serr); err != nil {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	d, err := c.sim.MoveLead(r.Context(), id, lead, status)
	if err != nil {
		simhttp.WriteJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	out := map[string]any{"moved": true}
	if d != nil {
		out["dp_status"], out["dp_error"] = d.Status, d.Err
	}
	done(w, r, http.StatusOK, out)
}
