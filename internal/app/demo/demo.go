package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	b24console "github.com/switchboard/switchboard/internal/sandbox/b24sim/console"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web"
)

// The demo's business, customer and CRMs. They are the simulators' own
// defaults (cmd/metasim, cmd/b24sim, amosim.ExampleAccount), so the pages
// and the docs name the same numbers.
const (
	PhoneNumberID = "109283746501928"
	WabaID        = "104857392017465"
	DisplayPhone  = "+7 701 234 56 78"
	IGUserID      = "17841405822304914"
	IGPageID      = "1122334455"
	// CustomerWaID and CustomerName are who the phone page writes as.
	CustomerWaID = "79161234567"
	CustomerName = "Анна Смирнова"
	// The Bitrix24 portal and its Open Line the WhatsApp channel is on.
	B24MemberID = "3f9b2c7d1e4a5b6c8d9e0f1a2b3c4d5e"
	B24Domain   = "demo.bitrix24.ru"
	B24AppToken = "8c41d2f07e9a3b5c6d1e2f3a4b5c6d7e"
	B24Line     = 1
	// AmoManager is the amoCRM user new leads go to and who answers in
	// amoCRM's chat.
	AmoManager = 9000002
	// OwnerEmail signs in to the cabinet.
	OwnerEmail = "owner@demo.test"
	// DemoTimezone is the workspace's clock: the demo shows times as
	// people in Russia read them.
	DemoTimezone = "Europe/Moscow"
)

// The sandbox's keys. They guard nothing real: every party is a simulator
// on loopback, and each start of the simulators forgets them.
var demoKeys = Keys{
	AppSecret: "demo-app-secret", VerifyToken: "demo-verify-token",
	B24ClientID: "app.demo.1", B24Secret: "demo-b24-client-secret",
	AmoClientID: "0b7c3c1e-5d2a-4f7e-9a61-3c2d1e0f9a8b", AmoSecret: "demo-amo-client-secret-0123456789abcdef0123456789abcdef0123",
	AmoChannelID: "f90ba33d-c9d9-44da-b76c-c349b0ecbe41", AmoChannelSecret: "demo-amojo-channel-secret-5a44c5dff55f3c15a4cc",
	AmoChannelCode: "amo.ext.switchboard",
}

const (
	waToken = "EAAG-demo-wa-token"
	igToken = "IGAA-demo-ig-token"
)

// Options tune a demo.
type Options struct {
	// Host is a loopback address (127.0.0.1, ::1 or localhost); the demo
	// refuses any other, since its keys are public and its endpoints
	// private.
	Host string
	// Port is the gateway's; the Meta, Bitrix24 and amoCRM simulators take
	// the next three. 0 picks four free ports.
	Port int
	// DataDir holds the gateway's SQLite database, admin token and key.
	DataDir string
	// StatusDelay is the Meta simulator's pause before each delivery
	// status (default 700 ms, so a person sees the ticks change).
	StatusDelay time.Duration
	// Log receives the gateway's and the simulators' logs.
	Log *slog.Logger
}

// Demo is a running gateway with its simulators and seeded workspace.
type Demo struct {
	App    *app.App
	Meta   *metasim.Server
	B24    *b24sim.Server
	Portal *b24sim.Portal
	Amo    *amosim.Server
	// URLs are where each part listens.
	URLs URLs
	// AdminToken is the operator's API token.
	AdminToken string
	// The seeded workspace, channels and integrations.
	WorkspaceID      string
	WhatsAppID       string
	InstagramID      string
	B24IntegrationID string
	AmoIntegrationID string
	AmoAccountID     int
	// OwnerPassword is set when this start created the owner.
	OwnerPassword string

	servers  []*http.Server
	stopWork context.CancelFunc
	log      *slog.Logger
	hc       *http.Client
}

// CheckLoopback refuses a host that is not a loopback address.
func CheckLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("demo: refusing to listen on %q: the demo's keys are public, so it binds loopback addresses only (127.0.0.1, ::1, localhost)", host)
	}
	return nil
}

// Start listens, starts the simulators and the gateway, and seeds the
// workspace (again on a kept data directory: the simulators remember
// nothing between starts, so the portal and the account are installed
// anew and the gateway updates what it holds). Close stops it all.
func Start(ctx context.Context, o Options) (_ *Demo, err error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if err := CheckLoopback(o.Host); err != nil {
		return nil, err
	}
	if o.DataDir == "" {
		return nil, errors.New("demo: a data directory is required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.StatusDelay == 0 {
		o.StatusDelay = 700 * time.Millisecond
	}
	// Every port first: a taken one fails before anything starts.
	lns := make([]net.Listener, 4)
	defer func() {
		if err != nil {
			for _, ln := range lns {
				if ln != nil {
					ln.Close()
				}
			}
		}
	}()
	for i := range lns {
		port := 0
		if o.Port != 0 {
			port = o.Port + i
		}
		if lns[i], err = net.Listen("tcp", net.JoinHostPort(strings.Trim(o.Host, "[]"), strconv.Itoa(port))); err != nil {
			return nil, fmt.Errorf("demo: listen: %w", err)
		}
	}
	url := func(ln net.Listener) string { return "http://" + ln.Addr().String() }
	d := &Demo{URLs: URLs{Gateway: url(lns[0]), Graph: url(lns[1]), B24: url(lns[2]), Amo: url(lns[3])}, log: o.Log,
		hc: &http.Client{Timeout: 30 * time.Second}}
	defer func() {
		if err != nil {
			d.Close(context.Background())
		}
	}()

	d.Meta = metasim.New(metasim.Options{AppSecret: demoKeys.AppSecret, WebhookURL: d.URLs.Gateway + "/webhooks/meta", BaseURL: d.URLs.Graph,
		Logger: o.Log.With("sim", "meta"), AutoStatuses: true, StatusDelay: o.StatusDelay,
		// A person answering from three places within seconds would trip
		// Meta's one-message-per-6-seconds pair limit; the demo is about
		// the flow, not the limit.
		PairLimit: metasim.PairLimit{Disabled: true}, MaxRecorded: 2000})
	d.Meta.AddWhatsAppNumber(PhoneNumberID, WabaID, DisplayPhone, waToken)
	d.Meta.AddInstagramAccount(IGUserID, igToken)

	d.B24 = b24sim.New(b24sim.Options{ClientID: demoKeys.B24ClientID, ClientSecret: demoKeys.B24Secret, BaseURL: d.URLs.B24,
		RedirectURL: d.URLs.Gateway + "/bitrix24/oauth/callback", Logger: o.Log.With("sim", "bitrix24"), MaxRecorded: 2000})
	lines := []b24sim.OpenLine{{ID: B24Line, Name: "WhatsApp"}, {ID: 2, Name: "Instagram"}}
	d.Portal = d.B24.AddPortal(b24sim.PortalOptions{MemberID: B24MemberID, Domain: B24Domain, ApplicationToken: B24AppToken, Lines: lines})
	b24Console := b24console.Handler(d.B24, b24console.Config{MemberID: B24MemberID, Domain: B24Domain, Lines: lines,
		InstallURL: d.URLs.Gateway + "/bitrix24/install", AppURL: d.URLs.Gateway + "/bitrix24/app", TimeZone: DemoTimezone}, o.Log.With("sim", "bitrix24"))

	dp, err := WidgetDPSettings()
	if err != nil {
		return nil, err
	}
	d.Amo = amosim.New(amosim.Options{ClientID: demoKeys.AmoClientID, ClientSecret: demoKeys.AmoSecret,
		RedirectURI: d.URLs.Gateway + "/amocrm/oauth/callback", Referer: strings.TrimPrefix(d.URLs.Amo, "http://"),
		ChannelID: demoKeys.AmoChannelID, ChannelSecret: demoKeys.AmoChannelSecret, ChannelCode: demoKeys.AmoChannelCode,
		HookURL: d.URLs.Gateway + "/amocrm/amojo/:scope_id", DPWebhookURL: d.URLs.Gateway + "/amocrm/dp", DPSettings: dp,
		Logger: o.Log.With("sim", "amocrm"), MaxRecorded: 2000})
	acct := amosim.ExampleAccount()
	if err := d.Amo.AddAccount(acct); err != nil {
		return nil, err
	}
	d.AmoAccountID = acct.ID

	cfg, err := config.Load("", GatewayEnv(demoKeys, d.URLs))
	if err != nil {
		return nil, err
	}
	cfg.DataDir = o.DataDir
	cfg.HTTPAddr = lns[0].Addr().String()
	// One workspace holds the channels, the portal and the account.
	cfg.Bitrix24Workspace, cfg.AmoCRMWorkspace = "default", "default"
	a, err := app.New(ctx, cfg, o.Log)
	if err != nil {
		return nil, err
	}
	d.App, d.AdminToken = a, a.AdminToken
	workCtx, stopWork := context.WithCancel(context.Background())
	d.stopWork = stopWork
	if err := a.Start(workCtx); err != nil {
		return nil, err
	}
	handlers := []http.Handler{a.Handler(), d.metaHandler(), b24Console, d.amoHandler()}
	for i, h := range handlers {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute}
		if i == 0 {
			// The shared chat's event streams never go idle on their own;
			// without this a demo stopped with a chat tab open waits out
			// its whole shutdown limit.
			srv.RegisterOnShutdown(a.CloseStreams)
		}
		d.servers = append(d.servers, srv)
		go func(ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				o.Log.Error("demo: serve", "addr", ln.Addr().String(), "err", err)
			}
		}(lns[i])
	}
	if err := d.seed(ctx); err != nil {
		return nil, fmt.Errorf("demo: seed: %w", err)
	}
	return d, nil
}

// Close stops the listeners, then the gateway's work, then the simulators.
func (d *Demo) Close(ctx context.Context) error {
	var errs []error
	for _, s := range d.servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if d.App != nil {
		if err := d.App.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if d.stopWork != nil {
		d.stopWork()
	}
	if d.Meta != nil {
		d.Meta.Close()
	}
	if d.B24 != nil {
		d.B24.Close()
	}
	if d.Amo != nil {
		d.Amo.Close()
	}
	return errors.Join(errs...)
}

// PhoneURL is the simulated customer's phone page.
func (d *Demo) PhoneURL() string { return d.URLs.Graph + "/" }

// seed makes what a person needs to try the product, reusing what a kept
// data directory already holds.
func (d *Demo) seed(ctx context.Context) error {
	ws, err := d.App.Store.EnsureDefaultWorkspace(ctx)
	if err != nil {
		return err
	}
	d.WorkspaceID = ws.ID
	if ws.Name != "Demo" {
		// A new data directory: the default workspace becomes the demo's,
		// on Moscow's clock (it starts on UTC's).
		if err := d.api(ctx, http.MethodPatch, "/api/v1/workspaces/"+ws.ID, map[string]any{"name": "Demo", "timezone": DemoTimezone}, http.StatusOK, nil); err != nil {
			return fmt.Errorf("name the workspace: %w", err)
		}
	}
	users, err := d.App.Store.CabinetUsersByEmail(ctx, OwnerEmail)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		_, pw, err := web.CreateUser(ctx, d.App.Store, store.All, ws.ID, web.NewUser{Email: OwnerEmail, Name: "Demo Owner", Role: "owner"})
		if err != nil {
			return fmt.Errorf("owner: %w", err)
		}
		d.OwnerPassword = pw
	}
	if err := d.seedChannels(ctx); err != nil {
		return err
	}
	if err := d.seedBitrix24(ctx); err != nil {
		return fmt.Errorf("bitrix24: %w", err)
	}
	if err := d.seedAmoCRM(ctx); err != nil {
		return fmt.Errorf("amocrm: %w", err)
	}
	return nil
}

func (d *Demo) seedChannels(ctx context.Context) error {
	var list struct {
		Data []struct {
			ID            string `json:"id"`
			Type          string `json:"type"`
			PhoneNumberID string `json:"phone_number_id"`
			IGUserID      string `json:"ig_user_id"`
		} `json:"data"`
	}
	if err := d.api(ctx, http.MethodGet, "/api/v1/channels", nil, http.StatusOK, &list); err != nil {
		return err
	}
	for _, c := range list.Data {
		switch {
		case c.Type == "whatsapp" && c.PhoneNumberID == PhoneNumberID:
			d.WhatsAppID = c.ID
		case c.Type == "instagram" && c.IGUserID == IGUserID:
			d.InstagramID = c.ID
		}
	}
	var made struct {
		ID string `json:"id"`
	}
	if d.WhatsAppID == "" {
		if err := d.api(ctx, http.MethodPost, "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "WhatsApp · Продажи",
			"workspace_id": d.WorkspaceID, "phone_number_id": PhoneNumberID, "waba_id": WabaID, "display_phone": DisplayPhone,
			"access_token": waToken}, http.StatusCreated, &made); err != nil {
			return fmt.Errorf("whatsapp channel: %w", err)
		}
		d.WhatsAppID = made.ID
	}
	if d.InstagramID == "" {
		if err := d.api(ctx, http.MethodPost, "/api/v1/channels", map[string]any{"type": "instagram", "name": "Instagram",
			"workspace_id": d.WorkspaceID, "ig_user_id": IGUserID, "page_id": IGPageID, "access_token": igToken}, http.StatusCreated, &made); err != nil {
			return fmt.Errorf("instagram channel: %w", err)
		}
		d.InstagramID = made.ID
	}
	// The WABA's templates now, not at the daily refresh: a person who
	// closes the 24-hour window on the phone page finds them in the
	// picker at once.
	if err := d.api(ctx, http.MethodPost, "/api/v1/channels/"+d.WhatsAppID+"/templates/refresh", nil, http.StatusOK, nil); err != nil {
		return fmt.Errorf("whatsapp templates: %w", err)
	}
	return nil
}

// seedBitrix24 installs the app on the portal (as the portal's admin
// does: ONAPPINSTALL) and puts the WhatsApp channel on the Open Line.
func (d *Demo) seedBitrix24(ctx context.Context) error {
	st, err := d.B24.PostInstallEvent(ctx, B24MemberID, d.URLs.Gateway+"/bitrix24/install", "ru")
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return fmt.Errorf("the gateway answered the install event with %d", st)
	}
	in, err := d.App.Store.IntegrationByExternal(ctx, "bitrix24", strings.ToLower(B24MemberID))
	if err != nil {
		return err
	}
	d.B24IntegrationID = in.ID
	if err := d.api(ctx, http.MethodPut, "/api/v1/integrations/"+in.ID+"/channels/"+d.WhatsAppID,
		map[string]any{"mode": "openlines", "line_id": strconv.Itoa(B24Line)}, http.StatusOK, nil); err != nil {
		return err
	}
	return d.until(ctx, "the connector on the Open Line", func() bool {
		for _, c := range d.Portal.Connectors() {
			if d.Portal.ConnectorStatus(c.ID, B24Line).Active {
				return true
			}
		}
		return false
	})
}

// seedAmoCRM installs the integration on the account (amoCRM's
// server-to-server redirect with the code), binds the WhatsApp channel in
// CRM mode (a lead per new customer, on the manager) and waits for
// amoCRM's chat channel to be connected.
func (d *Demo) seedAmoCRM(ctx context.Context) error {
	q, err := d.Amo.InstallRedirect(d.AmoAccountID)
	if err != nil {
		return err
	}
	before := d.Amo.TokenRequests()["authorization_code"]
	if err := d.api(ctx, http.MethodGet, "/amocrm/oauth/callback?"+q.Encode(), nil, http.StatusOK, nil); err != nil {
		return err
	}
	if err := d.until(ctx, "the account's tokens", func() bool {
		if d.Amo.TokenRequests()["authorization_code"] <= before {
			return false
		}
		in, err := d.App.Store.IntegrationByExternal(ctx, "amocrm", strconv.Itoa(d.AmoAccountID))
		if err != nil || in.State != "active" {
			return false
		}
		d.AmoIntegrationID = in.ID
		return true
	}); err != nil {
		return err
	}
	if err := d.idle(ctx); err != nil {
		return err
	}
	bind := map[string]any{"mode": "crm", "category_id": "7000001", "stage_id": "61000002",
		"owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": strconv.Itoa(AmoManager), "weight": 1}}}}
	if err := d.api(ctx, http.MethodPut, "/api/v1/integrations/"+d.AmoIntegrationID+"/channels/"+d.WhatsAppID, bind, http.StatusOK, nil); err != nil {
		return err
	}
	return d.until(ctx, "amoCRM's chat channel", func() bool {
		_, ok := d.Amo.ScopeID(d.AmoAccountID)
		return ok
	})
}

// idle waits until the gateway's queue holds no work running or due: an
// install's follow-up work (tokens stored, setup calls) is done.
func (d *Demo) idle(ctx context.Context) error {
	return d.until(ctx, "the queue idle", func() bool {
		n, err := d.App.Queue.Busy(ctx)
		return err == nil && n == 0
	})
}

// api calls the gateway with the admin token and wants the status.
func (d *Demo) api(ctx context.Context, method, path string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.URLs.Gateway+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, strings.SplitN(path, "?", 2)[0], resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// until polls cond for up to a minute: the gateway finishes installs
// through its queue.
func (d *Demo) until(ctx context.Context, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// PrintWelcome writes the URLs and the login for a person.
func (d *Demo) PrintWelcome(w io.Writer) {
	pw := d.OwnerPassword
	if pw == "" {
		pw = "(printed at the first start of this data directory / напечатан при первом запуске)"
	}
	fmt.Fprintf(w, `
Switchboard demo is running (Ctrl-C stops it) / Демо Switchboard запущено (Ctrl-C — остановить)

  Cabinet / Кабинет:                     %s/
  Shared chat / Общий чат:               %s/chat
  Customer's phone / Телефон клиента:    %s
  Bitrix24 (Open Lines) / Битрикс24:     %s/sim/
  amoCRM (leads, chat) / amoCRM:         %s/sim/

  Sign in / Вход:  %s
  Password / Пароль:  %s

  Admin API token / Токен API:  %s

Write as the customer on the phone page; the message reaches the shared
chat, the Open Line and the amoCRM lead. Answer from any of them and watch
the ticks turn to read.
`, d.URLs.Gateway, d.URLs.Gateway, d.PhoneURL(), d.URLs.B24, d.URLs.Amo, OwnerEmail, pw, d.AdminToken)
}
