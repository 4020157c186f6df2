package amocrm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/strictjson"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// StateTTL is how long a consent started with /amocrm/oauth/start may
// take; the state works once.
const StateTTL = 10 * time.Minute

// installJob is a widget install waiting for its exchange. The code is
// stored in the clear for the minutes it lives: it is single use, dies
// after 20 minutes, and is worth nothing without the client secret, which
// is not in the database.
type installJob struct {
	Host string `json:"host"`
	Code string `json:"code"`
}

// fail answers err as the admin API answers its own errors, and logs what
// the answer leaves out.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault.As(err) == nil {
		s.log.Error("amocrm: request failed", "path", r.URL.Path, "err", err)
	}
	httperr.WriteJSON(w, err)
}

// accountBase checks a referer before anything is sent to it; a refused
// host is never called.
func (s *Service) accountBase(host string) (string, error) {
	base, err := s.hosts().AccountBase(host)
	if err != nil {
		s.log.Warn("amocrm: account host refused", "host", host, "err", err)
		return "", fault.New(fault.Forbidden, "referer_not_allowed",
			"referer must be an amoCRM or Kommo account host (*.amocrm.ru, *.kommo.com, *.amocrm.com)")
	}
	return base, nil
}

// serveOAuthStart sends an admin to amoCRM's consent page (Kommo's with
// ?kommo=true); the account they pick lands in workspaceID.
func (s *Service) serveOAuthStart(w http.ResponseWriter, r *http.Request, workspaceID string) error {
	if err := s.configured(); err != nil {
		return err
	}
	state, err := s.store.NewOAuthState(r.Context(), workspaceID, Type, "", StateTTL)
	if err != nil {
		return err
	}
	kommo, _ := strconv.ParseBool(r.URL.Query().Get("kommo"))
	http.Redirect(w, r, s.oauth().ConsentURL(state, "", kommo), http.StatusFound)
	return nil
}

// ServeOAuthCallback handles GET /amocrm/oauth/callback: amoCRM's redirect
// after a consent (code, referer, state) or its server-to-server call on a
// widget install (code, referer, from_widget). The referer is checked
// before anything else, so a forged callback never makes the gateway call
// a foreign host; the account is then whatever that host's token
// endpoint, given our client secret, says the code belongs to.
func (s *Service) ServeOAuthCallback(w http.ResponseWriter, r *http.Request) {
	if err := s.configured(); err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if q.Get("error") != "" {
		// The admin denied access; the state, if any, is spent.
		if q.Get("state") != "" {
			if _, err := s.store.ConsumeOAuthState(r.Context(), q.Get("state"), Type); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Error("amocrm: consume denied state", "err", err)
			}
		}
		renderPage(w, http.StatusForbidden, "ru", T("ru", "access_denied")+" / "+T("en", "access_denied"))
		return
	}
	host := strings.ToLower(strings.TrimSpace(q.Get("referer")))
	if _, err := s.accountBase(host); err != nil {
		s.fail(w, r, err)
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		s.fail(w, r, fault.New(fault.Malformed, "code_missing", "the callback carries no usable code"))
		return
	}
	if q.Has("from_widget") && q.Get("state") == "" {
		// amoCRM waits about three seconds and never retries: answer now,
		// exchange in the queue.
		err := s.store.Tx(r.Context(), func(tx *gorm.DB) error {
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobInstall, Key: "amoinstall:" + host,
				Payload: installJob{Host: host, Code: code}})
			return err
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.notify()
		renderPage(w, http.StatusOK, "ru", T("ru", "connecting")+" / "+T("en", "connecting"))
		return
	}
	st, err := s.store.ConsumeOAuthState(r.Context(), q.Get("state"), Type)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, err)
			return
		}
		s.fail(w, r, fault.New(fault.Malformed, "state_invalid", "the authorisation state is unknown, used or expired; start again"))
		return
	}
	in, err := s.connect(r.Context(), host, code, st.WorkspaceID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	renderPage(w, http.StatusOK, in.Language, T("ru", "connected")+" / "+T("en", "connected"))
}

// handleInstall exchanges a widget install's code. A refused code (used,
// expired, forged) is dropped: only a new install brings a new one.
func (s *Service) handleInstall(ctx context.Context, j *queue.Job) error {
	var p installJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	if err := s.configured(); err != nil {
		return queue.Permanent(err)
	}
	in, err := s.connectOnce(ctx, j, p.Host, p.Code)
	if err != nil {
		if fe := fault.As(err); fe != nil && fe.Kind != fault.Upstream {
			s.log.Warn("amocrm: widget install refused", "host", p.Host, "code", fe.Code, "err", err)
			return queue.Permanent(err)
		}
		return err
	}
	s.log.Info("amocrm widget install done", "integration_id", in.ID, "host", in.Domain)
	return nil
}

// installStash keeps the tokens a queued install got for its code, for
// as long as the access token lives (24 h): attempts after that would
// need its refresh, which the stored integration does.
const (
	installStash    = "amocrm.install"
	installStashTTL = 24 * time.Hour
)

// connectOnce is connect for the queued install: the code is single use,
// so the tokens it bought are stashed (sealed) before the account is read,
// and an attempt after a failed read (amoCRM answering 429 or 5xx) takes
// them instead of exchanging the spent code again. The stash is dropped
// once the account is recorded, in the commit that ends the install job j
// (a run that lost its lease drops nothing: the holder's run takes the
// stash and records the account again, as a retry does).
func (s *Service) connectOnce(ctx context.Context, j *queue.Job, host, code string) (*store.Integration, error) {
	if _, err := s.accountBase(host); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(host + "|" + code))
	key := hex.EncodeToString(sum[:])
	var tok Token
	raw, err := s.store.StashedSecret(ctx, installStash, key)
	switch {
	case err == nil:
		if err := json.Unmarshal([]byte(raw), &tok); err != nil {
			return nil, err
		}
	case errors.Is(err, store.ErrNotFound):
		got, err := s.client.Exchange(ctx, host, code)
		if err != nil {
			return nil, s.grantFailure(err, "code_refused", "amoCRM refused the authorisation code; install again")
		}
		if got.RefreshToken == "" {
			return nil, fault.New(fault.Upstream, "grant_invalid", "amoCRM answered without a refresh token")
		}
		b, err := json.Marshal(got)
		if err != nil {
			return nil, err
		}
		// The code is spent: keep what it bought even if the job's
		// context ends now.
		if err := s.store.StashSecret(context.WithoutCancel(ctx), installStash, key, string(b), installStashTTL); err != nil {
			return nil, queue.Permanent(err)
		}
		tok = *got
	default:
		return nil, err
	}
	data, err := s.readAccount(ctx, host, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	in, err := s.accept(ctx, host, &tok, data, "")
	if err != nil {
		return nil, err
	}
	err = queue.Finish(ctx, s.store, j, func(st *store.Store) error { return st.DropStashed(ctx, installStash, key) })
	if err != nil {
		return nil, fmt.Errorf("amocrm: drop the install's stash: %w", err)
	}
	return in, nil
}

// connect trades a code for tokens at host and records the account in
// workspaceID ("" is the Workspace rule of a widget install).
func (s *Service) connect(ctx context.Context, host, code, workspaceID string) (*store.Integration, error) {
	if _, err := s.accountBase(host); err != nil {
		return nil, err
	}
	tok, err := s.client.Exchange(ctx, host, code)
	if err != nil {
		return nil, s.grantFailure(err, "code_refused", "amoCRM refused the authorisation code; install again")
	}
	if tok.RefreshToken == "" {
		return nil, fault.New(fault.Upstream, "grant_invalid", "amoCRM answered without a refresh token")
	}
	data, err := s.readAccount(ctx, host, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	return s.accept(ctx, host, tok, data, workspaceID)
}

// accountData is what an install reads of the account with its new
// token.
type accountData struct {
	info  *AccountInfo
	users []User
}

// readAccount reads the account and its users with a token not yet
// stored. The code is spent by now, so transient failures are retried
// here a few times rather than by the queue (which would exchange the
// spent code again).
func (s *Service) readAccount(ctx context.Context, host, accessToken string) (*accountData, error) {
	c := NewClient(Options{OAuth: s.oauth(), HTTP: s.hc, Tokens: fixedToken(accessToken), Hosts: s.hosts(), Logger: s.log})
	api := c.For(Account{ID: "install:" + host, Host: host})
	var out accountData
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		if out.info, err = api.Account(ctx); err == nil {
			if out.users, err = api.Users(ctx); err == nil {
				return &out, nil
			}
		}
		if !Retryable(err) {
			break
		}
	}
	return nil, s.grantFailure(err, "account_unreadable", "the account could not be read with the new token")
}

// accept records an account whose tokens were just issued: a known
// account (by id) keeps its integration and workspace and gets the new
// tokens; a new one lands in workspaceID or by the Workspace rule.
func (s *Service) accept(ctx context.Context, host string, tok *Token, data *accountData, workspaceID string) (*store.Integration, error) {
	info := data.info
	if info.ID <= 0 {
		return nil, fault.New(fault.Upstream, "account_unreadable", "amoCRM answered the account without an id")
	}
	external := strconv.Itoa(info.ID)
	existing, err := s.store.IntegrationByExternal(ctx, Type, external)
	switch {
	case err == nil && workspaceID != "" && existing.WorkspaceID != workspaceID:
		return nil, fault.New(fault.Conflict, "account_in_other_workspace", "this amoCRM account is connected to another workspace")
	case errors.Is(err, store.ErrNotFound) && workspaceID == "":
		if workspaceID, err = crm.InstallWorkspace(ctx, s.store, s.cfg.Workspace); err != nil {
			return nil, err
		}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	base, _ := s.hosts().AccountBase(host)
	in, _, err := s.store.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: external, Domain: host,
		ClientEndpoint: base, InstalledBy: strconv.Itoa(info.CurrentUserID), Language: languageOf(info, data.users),
		Expiry: tok.Expiry, ChatAccountID: info.AmojoID, Timezone: validZone(info.Timezone), WorkspaceID: workspaceID,
		ReplaceSecrets: true, Secrets: store.IntegrationSecrets{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}})
	if err != nil {
		return nil, err
	}
	if err := s.store.ReplaceCRMUsers(ctx, in.ID, crmUsers(data.users)); err != nil {
		return nil, err
	}
	// Work parked while the account needed re-authorisation goes on now.
	if err := s.router.Resume(ctx, in.WorkspaceID); err != nil {
		return nil, err
	}
	if err := s.enqueueAmojoConnect(ctx, in); err != nil {
		return nil, err
	}
	s.log.Info("amocrm account connected", "integration_id", in.ID, "account_id", external, "host", host, "workspace_id", in.WorkspaceID)
	return in, nil
}

// languageOf is the installing user's language, else the account's
// country's: Russian for Russia, English for the rest.
func languageOf(info *AccountInfo, users []User) string {
	for _, u := range users {
		if u.ID == info.CurrentUserID && u.Lang != "" {
			if strings.HasPrefix(strings.ToLower(u.Lang), "ru") {
				return "ru"
			}
			return "en"
		}
	}
	if strings.EqualFold(info.Country, "RU") || info.Country == "" {
		return "ru"
	}
	return "en"
}

// validZone is name when it is a time zone this machine knows, else "".
func validZone(name string) string {
	if name == "" {
		return ""
	}
	if _, err := time.LoadLocation(name); err != nil {
		return ""
	}
	return name
}

// grantFailure words a failed exchange or read for whoever called, who may
// be anyone: amoCRM's refusal is passed on as a code, transport errors
// (which name our addresses) go to the log only.
func (s *Service) grantFailure(err error, code, message string) error {
	if fe := fault.As(err); fe != nil {
		return err
	}
	var e *Error
	switch {
	case errors.Is(err, ErrInvalidHost):
		return fault.New(fault.Forbidden, "referer_not_allowed", "the account host is not allowed")
	case NeedsReauth(err) || errors.Is(err, ErrUnauthorized):
		s.log.Info("amocrm refused", "code", code, "err", err)
		return &fault.Error{Kind: fault.Unauthorized, Code: code, Message: message, Err: err}
	case errors.As(err, &e):
		s.log.Warn("amocrm answered an error", "code", code, "err", err)
		return &fault.Error{Kind: fault.Upstream, Code: code, Message: fmt.Sprintf("%s (amoCRM answered HTTP %d)", message, e.Status), Err: err}
	}
	s.log.Warn("amocrm not reached", "code", code, "err", err)
	return &fault.Error{Kind: fault.Upstream, Code: "amocrm_unavailable", Message: "amoCRM could not be reached; try again later", Err: err}
}

// LongLivedRequest is POST /api/v1/integrations/amocrm: an account
// connected with a long-lived token (made by an admin on the
// integration's keys tab) instead of the code flow.
type LongLivedRequest struct {
	Referer        string `json:"referer"`
	LongLivedToken string `json:"long_lived_token"`
}

// serveLongLived connects an account with a long-lived token, checked by
// reading the account with it. It cannot be refreshed: when amoCRM refuses
// it the account needs a new one (needs_reauth).
func (s *Service) serveLongLived(w http.ResponseWriter, r *http.Request, workspaceID string) error {
	if err := s.configured(); err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return fault.New(fault.TooLarge, "body_too_large", "the body is too large")
	}
	var req LongLivedRequest
	if err := strictjson.Decode(raw, &req); err != nil {
		return err
	}
	host := strings.ToLower(strings.TrimSpace(req.Referer))
	switch {
	case host == "":
		return &fault.Error{Kind: fault.Invalid, Code: "referer_missing", Field: "referer", Message: "referer: the account host, e.g. example.amocrm.ru"}
	case req.LongLivedToken == "" || len(req.LongLivedToken) > 8192 || strings.ContainsAny(req.LongLivedToken, " \r\n"):
		return &fault.Error{Kind: fault.Invalid, Code: "long_lived_token_invalid", Field: "long_lived_token", Message: "long_lived_token: the token from the integration's keys tab"}
	}
	if _, err := s.accountBase(host); err != nil {
		fe := fault.As(err)
		fe.Field = "referer"
		return fe
	}
	existed := false
	tok := &Token{TokenType: "Bearer", AccessToken: req.LongLivedToken}
	data, err := s.readAccount(r.Context(), host, tok.AccessToken)
	if err != nil {
		if fe := fault.As(err); fe != nil && fe.Kind == fault.Unauthorized {
			return &fault.Error{Kind: fault.Invalid, Code: "long_lived_token_refused", Field: "long_lived_token", Message: "long_lived_token: amoCRM refused the token", Err: err}
		}
		return err
	}
	if _, err := s.store.IntegrationByExternal(r.Context(), Type, strconv.Itoa(data.info.ID)); err == nil {
		existed = true
	}
	in, err := s.accept(r.Context(), host, tok, data, workspaceID)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(map[string]any{"id": in.ID, "workspace_id": in.WorkspaceID, "type": in.Type,
		"state": in.State, "domain": in.Domain, "language": in.Language, "external_id": in.ExternalID})
}

// ServeDisabled handles amoCRM's disable hook (GET with account_id,
// client_uuid and signature = HMAC-SHA256 of "client_id|account_id" keyed
// with the client secret): the account's integration is uninstalled — its
// bindings removed and its tokens (revoked by amoCRM already) forgotten —
// and keeps its users and settings for a reinstall. A wrong signature is
// a 401 and changes nothing.
func (s *Service) ServeDisabled(w http.ResponseWriter, r *http.Request) {
	if err := s.configured(); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.oauth().VerifyDisableHook(r.URL.Query())
	if err != nil {
		s.log.Warn("amocrm: disable hook refused", "err", err)
		s.fail(w, r, fault.New(fault.Unauthorized, "signature_invalid", "the disable hook's signature does not verify"))
		return
	}
	in, err := s.store.IntegrationByExternal(r.Context(), Type, strconv.Itoa(id))
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, fault.New(fault.NotFound, "account_unknown", "this account is not connected"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.uninstall(r.Context(), in, "the integration was disabled in amoCRM"); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("amocrm integration disabled", "integration_id", in.ID, "account_id", id)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]string{"status": "disabled", "integration_id": in.ID})
}

// The settings page's Delete uninstalls as the disable hook does.
var _ crm.Uninstaller = (*Service)(nil)

// Uninstall is the gateway-side delete of an account's integration (the
// settings page's Delete): what the disable hook does, so the account's
// chat channel is disconnected too and amoCRM stops offering managers a
// chat whose answers would go nowhere.
func (s *Service) Uninstall(ctx context.Context, integrationID, reason string) error {
	in, err := s.store.GetIntegration(ctx, store.All, integrationID)
	if err != nil {
		return err
	}
	if in.Type != Type {
		return fault.New(fault.NotFound, "integration_not_found", "no amoCRM integration has this id")
	}
	return s.uninstall(ctx, in, reason)
}

// uninstall removes the account's bindings, forgets its tokens (users and
// settings stay for a reinstall) and queues the chat channel's
// disconnection. Should the queueing fail after the uninstall, a
// manager's answer still arriving is reported failed (hook.go), not lost.
func (s *Service) uninstall(ctx context.Context, in *store.Integration, reason string) error {
	if err := s.store.UninstallIntegration(ctx, in.ID, false, reason); err != nil {
		return err
	}
	if err := s.enqueueAmojoConnect(ctx, in, true); err != nil {
		return fmt.Errorf("amocrm: integration %s uninstalled, its chat channel not disconnected: %w", in.ID, err)
	}
	return nil
}

var messagePage = template.Must(template.New("msg").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>Switchboard</title></head>
<body style="font-family:sans-serif;padding:24px"><p>{{.Text}}</p>
<script>if (window.opener) { try { window.opener.postMessage({switchboard: "amocrm_connected"}, "*"); } catch (e) {} }</script>
</body></html>`))

// renderPage answers a small page for a person: the admin's browser after
// a consent, or amoCRM's install call.
func renderPage(w http.ResponseWriter, status int, lang, text string) {
	if lang == "" {
		lang = "ru"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = messagePage.Execute(w, struct{ Lang, Text string }{lang, text})
}
