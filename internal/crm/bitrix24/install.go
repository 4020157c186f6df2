package bitrix24

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/netguard"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// maxFormBody caps install and event bodies (Bitrix24's are a few KB).
const maxFormBody = 1 << 20

// fail answers err like writeError and logs what the answer leaves out:
// anything that is not a *fault.Error is answered "internal error" only.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault.As(err) == nil {
		s.log.Error("bitrix24: request failed", "path", r.URL.Path, "err", err)
	}
	writeError(w, err)
}

// writeError answers a JSON error. These handlers run on plain net/http
// (the portal posts to them, not to the API), so they write their answers
// themselves, with the status web's own mapping gives the error's kind.
func writeError(w http.ResponseWriter, err error) { httperr.WriteJSON(w, err) }

// readForm reads a form body and its query. Every handler that reads a
// form runs before authentication, so the body's shape is checked on its
// raw bytes before anything unescapes or decodes it, and the parsed form
// (query included) once more after.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	tooBig := func(err error) bool {
		var mb *http.MaxBytesError
		return errors.As(err, &mb)
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" &&
		(r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch) {
		// One buffer of the announced size: growing one step by step
		// cost more than the checks themselves for a 1 MiB body.
		size := r.ContentLength
		if size < 0 || size > maxFormBody {
			size = 0
		}
		buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
		_, err := buf.ReadFrom(r.Body)
		body := buf.Bytes()
		switch {
		case tooBig(err):
			return nil, fault.New(fault.TooLarge, "body_too_large", "the form body is too large")
		case err != nil:
			return nil, fault.New(fault.Malformed, "form_invalid", "the body could not be read")
		}
		if err := checkRawForm(body); err != nil {
			return nil, fault.New(fault.Malformed, "form_too_complex", err.Error())
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if err := r.ParseForm(); err != nil {
		if tooBig(err) {
			return nil, fault.New(fault.TooLarge, "body_too_large", "the form body is too large")
		}
		return nil, fault.New(fault.Malformed, "form_invalid", "the body is not a valid form")
	}
	if err := checkFormShape(r.Form); err != nil {
		return nil, fault.New(fault.Malformed, "form_too_complex", err.Error())
	}
	return r.Form, nil
}

// installRequest is what either install style told us.
type installRequest struct {
	event            bool // ONAPPINSTALL, else the install page
	memberID         string
	domain           string
	refreshToken     string
	applicationToken string
	userID           string
	lang             string
}

var memberIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{16,64}$`)

func parseInstall(form url.Values) (*installRequest, error) {
	data := DecodeForm(form)
	get := func(path ...string) string {
		var v any = data
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = m[p]
		}
		s, _ := v.(string)
		return s
	}
	var in installRequest
	if strings.EqualFold(form.Get("event"), "ONAPPINSTALL") {
		in = installRequest{event: true, memberID: get("auth", "member_id"), domain: get("auth", "domain"),
			refreshToken: get("auth", "refresh_token"), applicationToken: get("auth", "application_token"),
			userID: get("auth", "user_id"), lang: get("data", "LANGUAGE_ID")}
	} else {
		in = installRequest{memberID: form.Get("member_id"), domain: form.Get("DOMAIN"), refreshToken: form.Get("REFRESH_ID"),
			applicationToken: form.Get("APPLICATION_TOKEN"), lang: form.Get("LANG")}
	}
	switch {
	case !memberIDPattern.MatchString(in.memberID):
		return nil, fault.New(fault.Malformed, "member_id_invalid", "member_id is missing or malformed")
	case in.refreshToken == "":
		return nil, fault.New(fault.Malformed, "refresh_token_missing", "the install carries no refresh token (auth[refresh_token] or REFRESH_ID)")
	case in.applicationToken == "":
		return nil, fault.New(fault.Malformed, "application_token_missing", "the install carries no application token")
	}
	return &in, nil
}

// ServeInstall handles POST /bitrix24/install.
func (s *Service) ServeInstall(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The page variant passes DOMAIN and LANG in the query string.
	for _, k := range []string{"DOMAIN", "LANG", "PROTOCOL", "APP_SID"} {
		if form.Get(k) == "" && r.URL.Query().Get(k) != "" {
			form.Set(k, r.URL.Query().Get(k))
		}
	}
	req, err := parseInstall(form)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in, err := s.install(r.Context(), req.refreshToken, req.memberID, req.applicationToken, req.userID, req.lang, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.event {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"status": "installed", "integration_id": in.ID})
		return
	}
	renderPage(w, installFinishPage, pageData{Lang: req.lang, Text: T(req.lang, "installed"), integration: in})
}

// install trusts nothing from the form but the refresh token: the OAuth
// server's answer to it names the portal (member_id) and its REST
// endpoint, so a forged install cannot point the gateway at another host.
func (s *Service) install(ctx context.Context, refreshToken, memberID, appToken, userID, lang, workspaceID string) (*store.Integration, error) {
	tok, err := s.oauth.Refresh(ctx, s.http, refreshToken)
	if err != nil {
		return nil, s.oauthFailure(err, "install_not_verified", "the OAuth server did not accept the install's token")
	}
	return s.accept(ctx, tok, memberID, appToken, userID, lang, workspaceID)
}

func (s *Service) accept(ctx context.Context, tok *Token, memberID, appToken, userID, lang, workspaceID string) (*store.Integration, error) {
	if memberID != "" && !strings.EqualFold(tok.MemberID, memberID) {
		return nil, fault.New(fault.Unauthorized, "member_id_mismatch", "the token belongs to another portal")
	}
	if err := s.checkEndpoint(ctx, tok.ClientEndpoint); err != nil {
		return nil, err
	}
	existing, err := s.store.IntegrationByExternal(ctx, Type, tok.MemberID)
	if err == nil && workspaceID != "" && existing.WorkspaceID != workspaceID {
		return nil, fault.New(fault.Conflict, "portal_in_other_workspace", "this portal is connected to another workspace")
	}
	if errors.Is(err, store.ErrNotFound) && workspaceID == "" {
		if workspaceID, err = s.installWorkspace(ctx); err != nil {
			return nil, err
		}
	} else if err == nil && appToken == "" {
		// An OAuth connection from our side carries no application token;
		// keep the one the marketplace install gave us.
		if sec, serr := s.store.Secrets(existing); serr == nil {
			appToken = sec.ApplicationToken
		}
	}
	u, _ := url.Parse(tok.ClientEndpoint)
	in, _, err := s.store.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: strings.ToLower(tok.MemberID),
		Domain: u.Host, ClientEndpoint: tok.ClientEndpoint, ServerEndpoint: tok.ServerEndpoint, Scope: tok.Scope,
		InstalledBy: cmp.Or(userID, tok.UserID), Language: lang, Expiry: tok.Expiry, WorkspaceID: workspaceID,
		Secrets: store.IntegrationSecrets{ApplicationToken: appToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}})
	if err != nil {
		return nil, err
	}
	if err := s.enqueueSetup(ctx, in, false); err != nil {
		return nil, err
	}
	// Work parked while the portal needed re-authorisation goes on now.
	if err := s.router.Resume(ctx, in.WorkspaceID); err != nil {
		return nil, err
	}
	s.log.Info("bitrix24 portal installed", "integration_id", in.ID, "domain", in.Domain, "workspace_id", in.WorkspaceID)
	return in, nil
}

// installWorkspace picks the workspace of a new portal installed from
// Bitrix24's side by the Workspace setting (crm.InstallWorkspace).
func (s *Service) installWorkspace(ctx context.Context) (string, error) {
	return crm.InstallWorkspace(ctx, s.store, s.cfg.Workspace)
}

// enqueueSetup queues the portal's setup; one runs at a time per portal.
func (s *Service) enqueueSetup(ctx context.Context, in *store.Integration, verifyFirst bool) error {
	return s.store.Tx(ctx, func(tx *gorm.DB) error {
		_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobSetup, WorkspaceID: in.WorkspaceID, Key: "b24setup:" + in.ID,
			Payload: setupJob{IntegrationID: in.ID, VerifyFirst: verifyFirst}})
		return err
	})
}

// checkEndpoint refuses REST endpoints that are not https (unless private
// endpoints are allowed, as in tests) or that resolve to private
// addresses.
func (s *Service) checkEndpoint(ctx context.Context, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || !strings.HasSuffix(u.Path, "/rest/") {
		return fault.New(fault.Upstream, "endpoint_invalid", "the OAuth server returned no usable REST endpoint")
	}
	if s.cfg.AllowPrivate {
		return nil
	}
	if u.Scheme != "https" {
		return fault.New(fault.Upstream, "endpoint_invalid", "the portal's REST endpoint must be https")
	}
	if err := netguard.CheckHost(ctx, u.Hostname()); err != nil {
		// The guard's words name the address it resolved to: the log
		// keeps them, the caller only learns that it was refused.
		s.log.Warn("bitrix24: portal endpoint refused", "endpoint", endpoint, "err", err)
		return fault.New(fault.Forbidden, "endpoint_not_allowed", "the portal's address is not allowed")
	}
	return nil
}

var domainPattern = regexp.MustCompile(`^(https?://)?[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$`)

// OAuthStart answers GET /bitrix24/oauth/start?domain=… for a workspace:
// it redirects to the portal's consent page with a single-use state.
func (s *Service) OAuthStart(ctx context.Context, workspaceID, domain string) (string, error) {
	domain = strings.TrimSpace(domain)
	if !domainPattern.MatchString(domain) {
		return "", fault.New(fault.Invalid, "domain_invalid", "domain must be the portal's host, e.g. example.bitrix24.ru")
	}
	if strings.HasPrefix(domain, "http://") && !s.cfg.AllowPrivate {
		return "", fault.New(fault.Invalid, "domain_invalid", "portals are reached over https")
	}
	state, err := s.store.NewOAuthState(ctx, workspaceID, Type, domain, 10*time.Minute)
	if err != nil {
		return "", err
	}
	return s.oauth.AuthCodeURL(domain, state), nil
}

// ServeOAuthCallback handles GET /bitrix24/oauth/callback.
func (s *Service) ServeOAuthCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	st, err := s.store.ConsumeOAuthState(r.Context(), q.Get("state"), Type)
	if err != nil {
		writeError(w, fault.New(fault.Malformed, "state_invalid", "the authorisation state is unknown, used or expired; start again"))
		return
	}
	if q.Get("code") == "" {
		writeError(w, fault.New(fault.Malformed, "code_missing", "the callback carries no code"))
		return
	}
	tok, err := s.oauth.Exchange(r.Context(), s.http, q.Get("code"))
	if err != nil {
		writeError(w, s.oauthFailure(err, "exchange_failed", "the OAuth server refused the code"))
		return
	}
	in, err := s.accept(r.Context(), tok, q.Get("member_id"), "", "", "", st.WorkspaceID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	renderPage(w, messagePage, pageData{Lang: "ru", Text: T("ru", "connected") + " / " + T("en", "connected"), IntegrationID: in.ID})
}

// uninstall stops all work for a portal; its data is kept or deleted by
// the OnUninstall setting.
func (s *Service) uninstall(ctx context.Context, in *store.Integration, clean bool) error {
	del := s.cfg.OnUninstall == DeleteAlways || (s.cfg.OnUninstall == DeleteOnClean && clean)
	// The channels stop feeding the portal either way; a kept portal
	// forgets its tokens (the API is revoked already) and keeps the rest.
	return s.store.UninstallIntegration(ctx, in.ID, del, "the application was uninstalled from the portal")
}

// oauthCodePattern is what an OAuth error code looks like (invalid_grant,
// PAYMENT_REQUIRED); anything else is not repeated to the caller.
var oauthCodePattern = regexp.MustCompile(`^[A-Za-z_]{1,64}$`)

// oauthFailure turns a failed call to the OAuth server into an answer for
// whoever posted the install or callback, who may be anyone: the OAuth
// server's own error code is passed on (it is what a portal admin can act
// on), while transport errors — which name our addresses, ports and Go
// types — go to the log only, and the caller gets a stable code.
func (s *Service) oauthFailure(err error, code, message string) *fault.Error {
	var ae *APIError
	if errors.As(err, &ae) && oauthCodePattern.MatchString(ae.Code) {
		s.log.Info("bitrix24: OAuth server refused", "code", code, "oauth_error", ae.Code)
		kind := fault.Unauthorized
		if code == "exchange_failed" {
			kind = fault.Upstream
		}
		return &fault.Error{Kind: kind, Code: code, Message: message + ": " + ae.Code, Err: err}
	}
	s.log.Warn("bitrix24: OAuth server not reached", "code", code, "err", err)
	return fault.New(fault.Upstream, "oauth_unavailable", "the OAuth server could not be reached; try again later")
}

type pageData struct {
	Lang          string
	Text          string
	IntegrationID string
	// integration, when known, is the portal allowed to frame the page.
	integration *store.Integration
}

func renderPage(w http.ResponseWriter, t *template.Template, d pageData) {
	if d.Lang == "" {
		d.Lang = "ru"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Bitrix24 shows these pages in its iframe.
	w.Header().Set("Content-Security-Policy", frameAncestors(d.integration))
	t.Execute(w, d)
}

var installFinishPage = template.Must(template.New("install").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>Switchboard</title>
<script src="//api.bitrix24.com/api/v1/"></script></head>
<body style="font-family:sans-serif;padding:24px">
<p>{{.Text}}</p>
<script>if (window.BX24) { BX24.init(function(){ BX24.installFinish(); }); }</script>
</body></html>`))

var messagePage = template.Must(template.New("msg").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>Switchboard</title></head>
<body style="font-family:sans-serif;padding:24px"><p>{{.Text}}</p></body></html>`))
