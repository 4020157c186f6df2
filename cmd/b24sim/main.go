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
	"cmp"
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
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
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
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		logger.Error("bad flags", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("b24sim stopped", "err", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string) (config, error) {
	var c config
	var lines, pipelines string
	fs := flag.NewFlagSet("b24sim", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", ":9091", "listen address")
	fs.StringVar(&c.baseURL, "base-url", "", "URL the gateway reaches this simulator at, for client_endpoint and file links (default: http://127.0.0.1:<port of -addr>)")
	fs.StringVar(&c.memberID, "member-id", "3f9b2c7d1e4a5b6c8d9e0f1a2b3c4d5e", "portal member_id (32 hex)")
	fs.StringVar(&c.domain, "domain", "example.bitrix24.ru", "portal domain")
	fs.StringVar(&c.clientID, "client-id", envOr("B24SIM_CLIENT_ID", "sandbox.client"), "app client_id (env B24SIM_CLIENT_ID)")
	fs.StringVar(&c.clientSecret, "client-secret", envOr("B24SIM_CLIENT_SECRET", "sandbox-secret"), "app client_secret (env B24SIM_CLIENT_SECRET)")
	fs.StringVar(&c.appToken, "app-token", envOr("B24SIM_APP_TOKEN", "8c41d2f07e9a3b5c6d1e2f3a4b5c6d7e"), "application_token sent with every event (env B24SIM_APP_TOKEN)")
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
	mux := http.NewServeMux()
	c := &control{sim: sim, cfg: cfg, log: logger}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sim/", http.StatusFound)
	})
	mux.HandleFunc("GET /sim", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sim/", http.StatusFound)
	})
	mux.HandleFunc("GET /sim/{$}", c.page)
	mux.HandleFunc("POST /sim/operator-reply", c.operatorReply)
	mux.HandleFunc("POST /sim/install", c.install)
	mux.HandleFunc("GET /sim/lines", c.lines)
	mux.HandleFunc("GET /sim/deliveries", c.deliveries)
	mux.HandleFunc("POST /sim/open", c.open)
	// Everything else is the OAuth server, portal REST or file links.
	mux.Handle("/", sim)
	return mux
}

type control struct {
	sim *b24sim.Server
	cfg config
	log *slog.Logger
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON body: " + err.Error()})
		return false
	}
	return true
}

// flexString accepts a JSON string or number, since a line id is a number
// to people and a string in Bitrix24 events.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want string or number, got %s", b)
	}
	*f = flexString(n.String())
	return nil
}

// replyResult reports the operator message. A gateway that rejects the
// event still gets 200 here with the error spelled out, because the
// operator did write; only bad input is a 4xx.
type replyResult struct {
	MessageID string `json:"message_id"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

func (c *control) operatorReply(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Line flexString `json:"line"`
		Chat flexString `json:"chat"`
		Text string     `json:"text"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	if in.Line == "" && len(c.cfg.lines) == 1 {
		in.Line = flexString(strconv.Itoa(c.cfg.lines[0].ID))
	}
	if in.Line == "" || in.Chat == "" || strings.TrimSpace(in.Text) == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "line, chat and text are required"})
		return
	}
	id, err := c.sim.OperatorReply(r.Context(), c.cfg.memberID, string(in.Line), string(in.Chat), in.Text)
	if id == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	res := replyResult{MessageID: id, Delivered: err == nil}
	if err != nil {
		res.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, res)
}

func (c *control) install(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL  string `json:"url"`
		Lang string `json:"lang"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	if in.URL == "" {
		in.URL = c.cfg.installURL
	}
	if !strings.HasPrefix(in.URL, "http://") && !strings.HasPrefix(in.URL, "https://") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "url must be an http(s) URL"})
		return
	}
	status, err := c.sim.PostInstallEvent(r.Context(), c.cfg.memberID, in.URL, in.Lang)
	res := map[string]any{"status": status}
	if err != nil {
		res["error"] = err.Error()
	}
	writeJSON(w, http.StatusOK, res)
}

// Views for /sim/lines: what an operator would see, without tokens.

type fileView struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

type messageView struct {
	Time        time.Time  `json:"time"`
	Direction   string     `json:"direction"`
	Connector   string     `json:"connector"`
	ChatID      string     `json:"chat"`
	Author      string     `json:"author"`
	Text        string     `json:"text"`
	Files       []fileView `json:"files,omitempty"`
	ExternalID  string     `json:"external_id,omitempty"`
	IMChatID    string     `json:"im_chat_id"`
	IMMessageID string     `json:"im_message_id"`
	SessionID   string     `json:"session_id"`
	Edited      bool       `json:"edited,omitempty"`
	Deleted     bool       `json:"deleted,omitempty"`
	Delivered   bool       `json:"delivered,omitempty"`
	Read        bool       `json:"read,omitempty"`
}

type dialogView struct {
	Connector string `json:"connector"`
	ChatID    string `json:"chat"`
	UserID    string `json:"user"`
	Name      string `json:"name"`
	IMChatID  string `json:"im_chat_id"`
	SessionID string `json:"session_id"`
	Closed    bool   `json:"closed"`
}

type lineView struct {
	ID       int           `json:"id"`
	Name     string        `json:"name"`
	Active   bool          `json:"active"`
	Dialogs  []dialogView  `json:"dialogs"`
	Messages []messageView `json:"messages"`
}

func (c *control) lineViews() []lineView {
	p := c.sim.Portal(c.cfg.memberID)
	var out []lineView
	for _, l := range p.Lines() {
		v := lineView{ID: l.ID(), Name: l.Name(), Active: l.Active(), Dialogs: []dialogView{}, Messages: []messageView{}}
		for _, d := range l.Dialogs() {
			v.Dialogs = append(v.Dialogs, dialogView{Connector: d.Connector, ChatID: d.ChatID, UserID: d.UserID, Name: d.ChatName, IMChatID: d.IMChatID, SessionID: d.SessionID, Closed: d.Closed})
		}
		for _, m := range l.Messages() {
			mv := messageView{
				Time: m.Time, Direction: string(m.Direction), Connector: m.Connector, ChatID: m.ChatID, Text: m.Text,
				ExternalID: m.ExternalID, IMChatID: m.IMChatID, IMMessageID: m.IMMessageID, SessionID: m.SessionID,
				Edited: m.Edits > 0, Deleted: m.Deleted, Delivered: m.Delivered, Read: m.Read,
			}
			if m.Direction == b24sim.Inbound {
				mv.Author = strings.TrimSpace(m.User.Name + " " + m.User.LastName)
				if mv.Author == "" {
					mv.Author = m.User.ID
				}
			} else {
				mv.Author = "operator #" + strconv.Itoa(m.OperatorID)
			}
			for _, f := range m.Files {
				u := f.URL // inbound: the connector's URL
				if u == "" {
					u = f.Link // outbound: served by the simulator
				}
				mv.Files = append(mv.Files, fileView{Name: f.Name, URL: u})
			}
			v.Messages = append(v.Messages, mv)
		}
		out = append(out, v)
	}
	return out
}

func (c *control) lines(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.lineViews())
}

type deliveryView struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	Handler string    `json:"handler"`
	Status  int       `json:"status"`
	Error   string    `json:"error,omitempty"`
}

func (c *control) deliveries(w http.ResponseWriter, r *http.Request) {
	ds := c.sim.Deliveries()
	out := make([]deliveryView, 0, len(ds))
	for _, d := range ds {
		// Bodies carry access tokens; show only what happened.
		out = append(out, deliveryView{Time: d.Time, Event: d.Event, Handler: d.Handler, Status: d.Status, Error: d.Err})
	}
	writeJSON(w, http.StatusOK, out)
}

// open answers with a page that posts to one of the app's iframes from
// this browser, as Bitrix24's page does when a user opens the app
// (placement DEFAULT) or a CRM card's tab (CRM_DEAL_DETAIL_TAB...). A card
// tab goes to the handler the app bound with placement.bind.
func (c *control) open(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form / неверная форма: "+err.Error(), http.StatusBadRequest)
		return
	}
	placement := r.PostForm.Get("placement")
	user, err := strconv.Atoi(cmp.Or(r.PostForm.Get("user"), "0"))
	if err != nil {
		http.Error(w, "user must be a number / номер пользователя — число", http.StatusBadRequest)
		return
	}
	var handler string
	var options map[string]any
	if placement == "DEFAULT" {
		handler = cmp.Or(strings.TrimSpace(r.PostForm.Get("handler")), c.cfg.appURL)
		if !strings.HasPrefix(handler, "http://") && !strings.HasPrefix(handler, "https://") {
			http.Error(w, "the app URL must be http(s) / адрес приложения должен быть http(s)", http.StatusBadRequest)
			return
		}
	} else {
		options = map[string]any{"ID": strings.TrimSpace(r.PostForm.Get("id"))}
	}
	req, err := c.sim.PlacementRequest(c.cfg.memberID, user, placement, handler, options, r.PostForm.Get("lang"))
	if errors.Is(err, b24sim.ErrPlacementNotBound) {
		http.Error(w, "The app has not bound this card tab yet: install it first. / Приложение ещё не добавило эту вкладку: сначала установите его.", http.StatusConflict)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	page, err := req.AutoSubmitHTML()
	if err != nil {
		c.log.Error("render open page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// It carries a live access token of the user.
	w.Header().Set("Cache-Control", "no-store")
	if _, err := w.Write(page); err != nil {
		c.log.Warn("write open page", "err", err)
	}
}

// pageUser is a portal user the page can open the app as.
type pageUser struct {
	ID    int
	Name  string
	Admin bool
}

func (c *control) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	p := c.sim.Portal(c.cfg.memberID)
	users := []pageUser{{ID: p.AdminUserID(), Name: "admin / администратор", Admin: true}}
	if op := p.OperatorUserID(); op != p.AdminUserID() {
		users = append(users, pageUser{ID: op, Name: "manager / менеджер"})
	}
	deal := ""
	if ds := p.Deals(); len(ds) > 0 {
		deal = ds[len(ds)-1].Field("ID")
	}
	err := pageTmpl.Execute(w, map[string]any{
		"MemberID":   c.cfg.memberID,
		"Domain":     c.cfg.domain,
		"InstallURL": c.cfg.installURL,
		"AppURL":     c.cfg.appURL,
		"Users":      users,
		"DealID":     deal,
	})
	if err != nil {
		c.log.Error("render page", "err", err)
	}
}
