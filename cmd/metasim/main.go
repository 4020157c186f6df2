// Command metasim runs the Meta (WhatsApp Cloud API + Instagram Messaging)
// simulator as a standalone server, so a person can watch a conversation flow
// through the gateway without a Meta account.
//
// Point the gateway's Graph base URL at this server (e.g.
// http://127.0.0.1:9090) and its webhook secret at -app-secret, then open
// http://127.0.0.1:9090/ to send customer messages and watch what the gateway
// sends back.
//
// Control API:
//
//	POST /sim/whatsapp/inbound  {"phone_number_id","from","name","text"}
//	POST /sim/instagram/inbound {"ig_user_id","from","text"}
//	GET  /sim/requests          Graph requests received (tokens redacted)
//	GET  /sim/webhooks          webhooks posted to the gateway
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/sandbox/simhttp"
)

type config struct {
	addr          string
	webhookURL    string
	appSecret     string
	baseURL       string
	phoneNumberID string
	wabaID        string
	displayPhone  string
	token         string
	igUserID      string
	igToken       string

	autoStatuses         bool
	statusDelay          time.Duration
	sync131047           bool
	throughput           int
	pairLimit            bool
	outOfOrder           bool
	duplicateStatuses    bool
	readWithoutDelivered bool
	batchStatuses        bool
	maxRecorded          int
}

func main() {
	simhttp.Main("metasim", os.Args[1:], parseFlags, run)
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("metasim", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", ":9090", "listen address")
	fs.StringVar(&c.webhookURL, "webhook-url", simhttp.EnvOr("METASIM_WEBHOOK_URL", "http://127.0.0.1:8080/webhooks/meta"), "gateway webhook URL (env METASIM_WEBHOOK_URL)")
	fs.StringVar(&c.appSecret, "app-secret", simhttp.EnvOr("METASIM_APP_SECRET", "sandbox-app-secret"), "app secret used to sign webhooks (env METASIM_APP_SECRET)")
	fs.StringVar(&c.baseURL, "base-url", "", "public URL of this simulator for media links (default: from the request Host)")
	fs.StringVar(&c.phoneNumberID, "phone-number-id", "109283746501928", "WhatsApp phone_number_id to register")
	fs.StringVar(&c.wabaID, "waba-id", "104857392017465", "WhatsApp Business Account id of that number")
	fs.StringVar(&c.displayPhone, "display-phone", "+77012345678", "display phone number of that number")
	fs.StringVar(&c.token, "token", simhttp.EnvOr("METASIM_TOKEN", "sandbox-token"), "access token accepted for the WhatsApp number (env METASIM_TOKEN)")
	fs.StringVar(&c.igUserID, "ig-user-id", "17841405822304914", "Instagram professional account id to register")
	fs.StringVar(&c.igToken, "ig-token", simhttp.EnvOr("METASIM_IG_TOKEN", ""), "access token for the Instagram account (env METASIM_IG_TOKEN; default: -token)")
	fs.BoolVar(&c.autoStatuses, "auto-statuses", true, "post sent/delivered/read statuses and Instagram echoes for every send")
	fs.DurationVar(&c.statusDelay, "status-delay", time.Second, "pause before each status webhook")
	fs.BoolVar(&c.sync131047, "sync-131047", false, "answer free-form sends outside the 24h window with HTTP 400 instead of a failed status")
	fs.IntVar(&c.throughput, "tps", metasim.DefaultThroughputPerSecond, "messages per second per number before 130429 (negative disables)")
	fs.BoolVar(&c.pairLimit, "pair-limit", true, "enforce the 1 message / 6 s per recipient limit (131056)")
	fs.BoolVar(&c.outOfOrder, "out-of-order", false, "post delivered before sent")
	fs.BoolVar(&c.duplicateStatuses, "duplicate-statuses", false, "post every status twice")
	fs.BoolVar(&c.readWithoutDelivered, "read-without-delivered", false, "skip delivered statuses")
	fs.BoolVar(&c.batchStatuses, "batch-statuses", false, "post all statuses of a message in one webhook")
	fs.IntVar(&c.maxRecorded, "max-recorded", 1000, "requests and webhooks kept for /sim/requests and /sim/webhooks")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.igToken == "" {
		c.igToken = c.token
	}
	return c, nil
}

func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	sim := metasim.New(metasim.Options{
		AppSecret:            cfg.appSecret,
		WebhookURL:           cfg.webhookURL,
		BaseURL:              cfg.baseURL,
		Logger:               logger,
		ThroughputPerSecond:  cfg.throughput,
		PairLimit:            metasim.PairLimit{Disabled: !cfg.pairLimit},
		AutoStatuses:         cfg.autoStatuses,
		StatusDelay:          cfg.statusDelay,
		OutOfOrderStatuses:   cfg.outOfOrder,
		DuplicateStatuses:    cfg.duplicateStatuses,
		ReadWithoutDelivered: cfg.readWithoutDelivered,
		BatchStatuses:        cfg.batchStatuses,
		MaxRecorded:          cfg.maxRecorded,
	})
	defer sim.Close()
	sim.AddWhatsAppNumber(cfg.phoneNumberID, cfg.wabaID, cfg.displayPhone, cfg.token)
	sim.AddInstagramAccount(cfg.igUserID, cfg.igToken)
	sim.SetSynchronous131047(cfg.sync131047)

	srv := &http.Server{
		Addr:              cfg.addr,
		Handler:           newHandler(sim, cfg, logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Info("metasim listening",
		"addr", cfg.addr, "webhook_url", cfg.webhookURL,
		"phone_number_id", cfg.phoneNumberID, "waba_id", cfg.wabaID, "ig_user_id", cfg.igUserID,
		"auto_statuses", cfg.autoStatuses, "status_delay", cfg.statusDelay)

	return simhttp.Serve(ctx, srv)
}

func newHandler(sim *metasim.Server, cfg config, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	c := &control{sim: sim, cfg: cfg, log: logger}
	mux.HandleFunc("GET /{$}", c.page)
	mux.HandleFunc("POST /sim/whatsapp/inbound", c.whatsAppInbound)
	mux.HandleFunc("POST /sim/instagram/inbound", c.instagramInbound)
	mux.HandleFunc("GET /sim/requests", c.requests)
	mux.HandleFunc("GET /sim/webhooks", c.webhooks)
	// Browsers ask for it on every visit to the page; answered here so it
	// is not recorded (and refused) as a Graph request.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	// Everything else is Graph API or the media download host.
	mux.Handle("/", sim)
	return mux
}

type control struct {
	sim *metasim.Server
	cfg config
	log *slog.Logger
}

// inboundResult reports the simulated customer message. A gateway that
// rejects the webhook still gets a 200 here with the error spelled out,
// since the customer did send the message; only bad input is a 4xx.
type inboundResult struct {
	ID        string `json:"id"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

func (c *control) whatsAppInbound(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PhoneNumberID string `json:"phone_number_id"`
		From          string `json:"from"`
		Name          string `json:"name"`
		Text          string `json:"text"`
	}
	if !simhttp.DecodeJSON(w, r, &in) {
		return
	}
	if in.PhoneNumberID == "" {
		in.PhoneNumberID = c.cfg.phoneNumberID
	}
	from := strings.TrimPrefix(strings.TrimSpace(in.From), "+")
	if from == "" || in.Text == "" {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "from and text are required"})
		return
	}
	if in.Name == "" {
		in.Name = "Customer " + from
	}
	wamid, err := c.sim.SendWhatsAppText(r.Context(), in.PhoneNumberID, from, in.Name, in.Text)
	c.respondInbound(w, wamid, err)
}

func (c *control) instagramInbound(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IGUserID string `json:"ig_user_id"`
		From     string `json:"from"`
		Text     string `json:"text"`
	}
	if !simhttp.DecodeJSON(w, r, &in) {
		return
	}
	if in.IGUserID == "" {
		in.IGUserID = c.cfg.igUserID
	}
	if in.From == "" || in.Text == "" {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "from and text are required"})
		return
	}
	mid, err := c.sim.SendInstagramText(r.Context(), in.IGUserID, strings.TrimSpace(in.From), in.Text)
	c.respondInbound(w, mid, err)
}

func (c *control) respondInbound(w http.ResponseWriter, id string, err error) {
	if err != nil && id == "" {
		// Nothing was sent: unknown account or a payload problem.
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	res := inboundResult{ID: id, Delivered: err == nil}
	if err != nil {
		res.Error = err.Error()
	}
	simhttp.WriteJSON(w, http.StatusOK, res)
}

// requestView is a Graph request as shown to people: tokens redacted and
// bodies as text.
type requestView struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"`
	Auth   string    `json:"auth,omitempty"`
	Body   string    `json:"body,omitempty"`
}

const maxShownBody = 8 << 10

func (c *control) requests(w http.ResponseWriter, r *http.Request) {
	reqs := c.sim.Requests()
	out := make([]requestView, 0, len(reqs))
	for _, rq := range reqs {
		q := rq.Query
		if q.Has("access_token") {
			// Shallow clone is enough: Set replaces the slice, never edits it.
			q = maps.Clone(q)
			q.Set("access_token", "REDACTED")
		}
		v := requestView{Time: rq.Time, Method: rq.Method, Path: rq.Path, Query: q.Encode(), Body: shownBody(rq.Header.Get("Content-Type"), rq.Body)}
		if a := rq.Header.Get("Authorization"); a != "" {
			scheme, _, _ := strings.Cut(a, " ")
			v.Auth = scheme + " ***"
		}
		out = append(out, v)
	}
	simhttp.WriteJSON(w, http.StatusOK, out)
}

type webhookView struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Status int       `json:"status"`
	Error  string    `json:"error,omitempty"`
	Body   string    `json:"body"`
}

func (c *control) webhooks(w http.ResponseWriter, r *http.Request) {
	ds := c.sim.Webhooks()
	out := make([]webhookView, 0, len(ds))
	for _, d := range ds {
		out = append(out, webhookView{Time: d.Time, Kind: d.Kind, Status: d.Status, Error: d.Err, Body: shownBody("application/json", d.Body)})
	}
	simhttp.WriteJSON(w, http.StatusOK, out)
}

func shownBody(contentType string, b []byte) string {
	if strings.HasPrefix(contentType, "multipart/") {
		return fmt.Sprintf("[multipart body, %d bytes]", len(b))
	}
	if len(b) > maxShownBody {
		return string(b[:maxShownBody]) + fmt.Sprintf("… [%d bytes total]", len(b))
	}
	return string(b)
}

func (c *control) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := pageTmpl.Execute(w, map[string]string{
		"PhoneNumberID": c.cfg.phoneNumberID,
		"IGUserID":      c.cfg.igUserID,
		"WebhookURL":    c.cfg.webhookURL,
	})
	if err != nil {
		c.log.Error("render page", "err", err)
	}
}
