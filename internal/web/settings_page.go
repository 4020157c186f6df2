package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web/httperr"
	assets "github.com/switchboard/switchboard/web"
)

// The integration's settings page inside its CRM: the same form as the
// cabinet's (settings_form.go), at /{type}/settings of every provider
// with crm.EmbeddedSettings. The provider proves who opens it (its
// ticket, then the signed session "sess", which is also the forms' CSRF
// proof); the page acts only on the session's integration, so there is
// no id in the address to change. Only the CRM's admins change anything.

// embeddedPage is the data of the "embedded_settings" template: the form,
// or a message (a refusal, the deleted integration).
type embeddedPage struct {
	Lang    string
	T       map[string]string
	Form    *settingsForm
	Text    string
	LangURL map[string]string
}

// mountEmbeddedSettings mounts the settings page of each provider that
// shows it inside its CRM, and the form's script.
func (s *Server) mountEmbeddedSettings() {
	s.engine.GET("/assets/settings.js", serveSettingsScript)
	for _, p := range s.d.Integrations.All() {
		es, ok := p.(crm.EmbeddedSettings)
		if !ok {
			continue
		}
		base := "/" + p.Type() + "/settings"
		s.engine.GET(base, func(c *gin.Context) { s.embeddedSettings(c, es, base) })
		s.engine.POST(base+"/:action", func(c *gin.Context) { s.embeddedSettingsAction(c, es, base) })
	}
}

func serveSettingsScript(c *gin.Context) {
	js, err := assets.Static.ReadFile("static/settings.js")
	if err != nil {
		c.AbortWithStatus(http.StatusNotFound)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "text/javascript; charset=utf-8", js)
}

// pageLanguage is "ru" or "en" when v names one, else "".
func pageLanguage(v string) string {
	if v == "ru" || v == "en" {
		return v
	}
	return ""
}

// embeddedOpen proves the request's page session. The language is the
// address's (a POST's body), then the session's. On a refusal it has
// answered, reading nothing.
func (s *Server) embeddedOpen(c *gin.Context, es crm.EmbeddedSettings) (*store.Integration, *crm.Session, bool) {
	want := pageLanguage(c.Query("lang"))
	if c.Request.Method == http.MethodPost {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20)
		if err := c.Request.ParseForm(); err != nil {
			s.embeddedRefuse(c, nil, want, fault.New(fault.Malformed, "form_invalid", "the form is not a form"))
			return nil, nil, false
		}
		want = pageLanguage(c.Request.PostForm.Get("lang"))
	}
	in, ss, err := es.OpenSettings(c.Request, want)
	if err != nil {
		l := want
		if l == "" && ss != nil {
			l = ss.Lang
		}
		s.embeddedRefuse(c, nil, l, err)
		return nil, nil, false
	}
	if want != "" {
		ss.Lang = want
	}
	if pageLanguage(ss.Lang) == "" {
		ss.Lang = "ru"
	}
	return in, ss, true
}

// embeddedRefuse answers a refusal as a page in lang (Russian when
// unknown). frame is the integration's frame-ancestors when the
// integration is known; else any https page may frame the refusal,
// which shows nothing of an account.
func (s *Server) embeddedRefuse(c *gin.Context, frame *string, lang string, err error) {
	if lang == "" {
		lang = "ru"
	}
	if errors.Is(err, store.ErrNotFound) {
		err = fault.New(fault.NotFound, "not_found", "not found")
	}
	fe, status, ok := httperr.Of(err)
	if !ok {
		s.d.Log.Error("settings page failed", "path", c.FullPath(), "err", err)
	}
	t := cabinetTexts[lang]
	text, known := t["e_"+fe.Code]
	if !known {
		text = t["e_internal"]
	}
	ancestors := "https:"
	if frame != nil {
		ancestors = *frame
	}
	s.renderEmbedded(c, status, ancestors, &embeddedPage{Lang: lang, T: t, Text: text})
}

// renderEmbedded writes the page: framed only by the CRM account, no
// inline script, nothing cached, no Referer (the address carries sess).
func (s *Server) renderEmbedded(c *gin.Context, status int, ancestors string, p *embeddedPage) {
	var buf bytes.Buffer
	if err := cabinetPages.ExecuteTemplate(&buf, "embedded_settings", p); err != nil {
		s.d.Log.Error("settings page failed to render", "err", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors "+ancestors+"; form-action 'self'")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	c.Abort()
}

// embeddedURL is the page's address for the session, in lang.
func embeddedURL(base, sess, lang string, more url.Values) string {
	q := url.Values{"sess": {sess}, "lang": {lang}}
	for k, v := range more {
		q[k] = v
	}
	return base + "?" + q.Encode()
}

// embeddedSettings is GET /{type}/settings: the form for the session's
// integration, read-only for a user who is not the CRM's admin.
func (s *Server) embeddedSettings(c *gin.Context, es crm.EmbeddedSettings, base string) {
	in, ss, ok := s.embeddedOpen(c, es)
	if !ok {
		return
	}
	st, err := s.loadSettings(c.Request.Context(), store.Scope{WorkspaceID: in.WorkspaceID}, in.ID)
	if err != nil {
		anc := es.FrameAncestors(in)
		s.embeddedRefuse(c, &anc, ss.Lang, err)
		return
	}
	s.showEmbedded(c, es, http.StatusOK, ss, st, base, cabinetTexts[ss.Lang]["saved_"+c.Query("saved")], nil, nil)
}

// showEmbedded renders the form; refused and typed are a refused save's.
func (s *Server) showEmbedded(c *gin.Context, es crm.EmbeddedSettings, status int, ss *crm.Session, st *settingsState, base, notice string, refused *problem, typed url.Values) {
	ctx := c.Request.Context()
	in := st.in
	anc := es.FrameAncestors(in)
	t := cabinetTexts[ss.Lang]
	ws, err := s.d.Store.GetWorkspace(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, in.WorkspaceID)
	if err != nil {
		s.embeddedRefuse(c, &anc, ss.Lang, err)
		return
	}
	entry, stagesProblem := s.entryForPage(ctx, in, t)
	f, err := s.settingsFormOf(ctx, st, ws, t, ss.Lang, "", base, entry)
	if err != nil {
		s.embeddedRefuse(c, &anc, ss.Lang, err)
		return
	}
	sess := es.SignSession(ss)
	f.Sess, f.StagesProblem, f.Notice, f.Refused = sess, stagesProblem, notice, refused
	if !ss.Admin {
		f.ReadOnly, f.ReadOnlyReason = true, t["readonly_not_admin"]
	}
	if typed != nil {
		f.showTyped(typed)
	}
	if refused != nil {
		f.SelfURL = embeddedURL(base, sess, ss.Lang, nil)
	}
	s.renderEmbedded(c, status, anc, &embeddedPage{Lang: ss.Lang, T: t, Form: f,
		LangURL: map[string]string{"ru": embeddedURL(base, sess, "ru", nil), "en": embeddedURL(base, sess, "en", nil)}})
}

// embeddedSettingsAction is POST /{type}/settings/{save|refresh|delete}
// with the session in the body. A user who is not the CRM's admin is
// refused (403) before anything is read or changed.
func (s *Server) embeddedSettingsAction(c *gin.Context, es crm.EmbeddedSettings, base string) {
	in, ss, ok := s.embeddedOpen(c, es)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	anc := es.FrameAncestors(in)
	action := c.Param("action")
	if action != "save" && action != "refresh" && action != "delete" {
		s.embeddedRefuse(c, &anc, ss.Lang, store.ErrNotFound)
		return
	}
	if !ss.Admin {
		s.embeddedRefuse(c, &anc, ss.Lang, fault.New(fault.Forbidden, "admin_only", "only the CRM account's admins change the settings"))
		return
	}
	sc := store.Scope{WorkspaceID: in.WorkspaceID}
	st, err := s.loadSettings(ctx, sc, in.ID)
	if err == nil {
		err = s.settingsAction(ctx, sc, st, action, c.Request.PostForm)
	}
	// A refusal names records as this CRM does (amoCRM's leads).
	t := recordTexts(cabinetTexts[ss.Lang], s.d.Integrations.RecordWords(in.Type, ss.Lang, ""))
	if pr := problemOf(t, err); pr != nil && st != nil {
		if _, known := t["e_"+pr.Code]; !known {
			s.d.Log.Warn("settings page: a refusal without a text", "code", pr.Code)
		}
		pr.ChannelID = channelOf(err)
		fresh, lerr := s.loadSettings(ctx, sc, in.ID)
		if lerr != nil {
			s.embeddedRefuse(c, &anc, ss.Lang, lerr)
			return
		}
		var typed url.Values
		if action == "save" {
			typed = c.Request.PostForm
		}
		s.showEmbedded(c, es, httperr.Status(fault.As(err).Kind), ss, fresh, base, "", pr, typed)
		return
	}
	if err != nil {
		s.embeddedRefuse(c, &anc, ss.Lang, err)
		return
	}
	if action == "delete" {
		s.d.Log.Info("integration deleted from its settings page", "integration_id", in.ID, "crm_user", ss.UserID)
		s.renderEmbedded(c, http.StatusOK, anc, &embeddedPage{Lang: ss.Lang, T: t, Text: t["deleted_text"]})
		return
	}
	// Post, redirect, get: a reload shows the page, not the form again.
	c.Redirect(http.StatusSeeOther, embeddedURL(base, es.SignSession(ss), ss.Lang, url.Values{"saved": {action}}))
	c.Abort()
}
