package web

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/password"
	"github.com/switchboard/switchboard/internal/store"
)

// CabinetOptions configure the web cabinet's sign-in.
type CabinetOptions struct {
	// Key signs the CSRF tokens (derived from the gateway's secret).
	Key []byte
	// SecureCookies marks the cookies Secure: the public URL is https.
	SecureCookies bool
	// IdleTimeout ends a session unused for this long; MaxAge ends every
	// session this long after sign-in, used or not.
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// AccountFailures failed sign-ins per e-mail, and IPFailures per
	// client address, within FailureWindow lock further attempts out
	// until the oldest of them leaves the window.
	AccountFailures int64
	IPFailures      int64
	FailureWindow   time.Duration
}

// Cookie names. The session cookie carries a random id; sb_login carries
// the value the sign-in form's CSRF token is made from.
const (
	sessionCookie = "sb_session"
	loginCookie   = "sb_login"
	langCookie    = "sb_lang"
	cabinetKey    = "cabinet"
	// touchEvery spares a write per request: the idle clock moves at most
	// once a minute.
	touchEvery = time.Minute
)

// cabinetCtx is a signed-in request: who, where, and the session.
type cabinetCtx struct {
	User      *store.CabinetUser
	Workspace *store.Workspace
	sessionID string // the cookie's value, never logged
	csrf      string
}

func cabinetOf(c *gin.Context) *cabinetCtx {
	v, _ := c.Get(cabinetKey)
	cc, _ := v.(*cabinetCtx)
	return cc
}

// mountCabinet adds the cabinet's pages: sign-in, the home page and the
// pages built on it.
func (s *Server) mountCabinet() {
	e := s.engine
	e.GET("/login", s.loginPage)
	e.POST("/login", s.login)
	in := e.Group("", s.signedIn, s.csrfCheck)
	in.GET("/", s.homePage)
	in.POST("/logout", s.logout)
	in.POST("/logout/everywhere", s.logoutEverywhere)
	in.POST("/language", s.setLanguage)
	admin := in.Group("", s.adminOnly)
	admin.GET("/employees", s.employeesPage)
	admin.POST("/employees", s.addEmployee)
	admin.POST("/employees/:user_id/delete", s.deleteEmployee)
	s.mountCabinetAdmin(admin)
	s.mountCabinetTemplates(in, admin)
	s.mountCabinetChat(in)
	s.mountCabinetQuick(in, admin)
	s.mountCabinetEmployees(in, admin)
	s.mountCabinetWorkspace(admin)
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSession(id string) string { return store.HashToken("session:" + id) }

// mac is the HMAC of a purpose and a value under the cabinet key.
func (s *Server) mac(purpose, value string) string {
	m := hmac.New(sha256.New, s.d.Cabinet.Key)
	m.Write([]byte(purpose + "\x00" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) setCookie(c *gin.Context, name, value string, expires time.Time) {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: s.d.Cabinet.SecureCookies, SameSite: http.SameSiteLaxMode}
	if value == "" {
		ck.MaxAge = -1
	} else if !expires.IsZero() {
		ck.Expires = expires.UTC()
	}
	http.SetCookie(c.Writer, ck)
}

// signedIn loads the session; without a live one, the browser goes to
// the sign-in page.
func (s *Server) signedIn(c *gin.Context) {
	if s.loadSession(c) {
		c.Next()
	}
}

// loadSession is signedIn without going on: false when it answered.
func (s *Server) loadSession(c *gin.Context) bool {
	ctx := c.Request.Context()
	raw, err := c.Cookie(sessionCookie)
	if err != nil || raw == "" || len(raw) > 100 {
		c.Redirect(http.StatusSeeOther, loginFor(c))
		c.Abort()
		return false
	}
	hash := hashSession(raw)
	ses, u, err := s.d.Store.CabinetSessionUser(ctx, hash, store.Now().Add(-s.d.Cabinet.IdleTimeout))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.pageErr(c, err)
			return false
		}
		s.setCookie(c, sessionCookie, "", time.Time{})
		c.Redirect(http.StatusSeeOther, loginFor(c))
		c.Abort()
		return false
	}
	ws, err := s.d.Store.GetWorkspace(ctx, store.All, u.WorkspaceID)
	if err != nil {
		s.pageErr(c, err)
		return false
	}
	if time.Since(ses.LastSeenAt) > touchEvery {
		if err := s.d.Store.TouchCabinetSession(ctx, hash); err != nil {
			s.pageErr(c, err)
			return false
		}
	}
	c.Set(cabinetKey, &cabinetCtx{User: u, Workspace: ws, sessionID: raw, csrf: s.mac("csrf", raw)})
	return true
}

// csrfCheck refuses every signed-in request that changes something unless
// it carries the session's token (the form's "csrf" field or the
// X-CSRF-Token header). The token is an HMAC of the session id, which
// another site can neither read nor make.
func (s *Server) csrfCheck(c *gin.Context) {
	if s.csrfOK(c) {
		c.Next()
	}
}

// csrfOK is csrfCheck without going on: false when it refused.
func (s *Server) csrfOK(c *gin.Context) bool {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	got := c.GetHeader("X-CSRF-Token")
	if got == "" {
		got = c.PostForm("csrf")
	}
	want := cabinetOf(c).csrf
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		s.refusePage(c, http.StatusForbidden, "csrf")
		return false
	}
	return true
}

// apiOrCabinet lets an integration's workspace routes (the OAuth start
// the integrations page links to) be opened from the cabinet: a request
// without an API token but with a session of the workspace's owner or
// admin acts for that workspace, CSRF-checked like every cabinet form.
// With a token, or neither, it is the API's auth as before.
func (s *Server) apiOrCabinet(c *gin.Context) {
	if _, err := c.Cookie(sessionCookie); err != nil || c.GetHeader("Authorization") != "" {
		s.auth(c)
		return
	}
	if !s.loadSession(c) || !s.csrfOK(c) {
		return
	}
	cc := cabinetOf(c)
	if r := cc.User.Role; r != store.RoleOwner && r != store.RoleAdmin {
		s.refusePage(c, http.StatusForbidden, "forbidden")
		return
	}
	c.Set(scopeKey, store.Scope{WorkspaceID: cc.Workspace.ID})
	c.Next()
}

// adminOnly keeps managers out of the workspace's administration.
func (s *Server) adminOnly(c *gin.Context) {
	if r := cabinetOf(c).User.Role; r != store.RoleOwner && r != store.RoleAdmin {
		s.refusePage(c, http.StatusForbidden, "forbidden")
		return
	}
	c.Next()
}

// loginPage shows the sign-in form, or goes home when signed in already.
func (s *Server) loginPage(c *gin.Context) {
	if l := c.Query("lang"); l == "ru" || l == "en" {
		s.setCookie(c, langCookie, l, time.Now().Add(365*24*time.Hour))
		to := "/login"
		if next := safeNext(c.Query("next")); next != "" {
			to += "?" + url.Values{"next": {next}}.Encode()
		}
		c.Redirect(http.StatusSeeOther, to)
		return
	}
	if raw, err := c.Cookie(sessionCookie); err == nil && raw != "" && len(raw) <= 100 {
		if _, _, err := s.d.Store.CabinetSessionUser(c.Request.Context(), hashSession(raw), store.Now().Add(-s.d.Cabinet.IdleTimeout)); err == nil {
			c.Redirect(http.StatusSeeOther, cmp.Or(safeNext(c.Query("next")), "/"))
			return
		}
	}
	s.renderLogin(c, http.StatusOK, "", "")
}

// renderLogin shows the form with a fresh double-submit token: a random
// cookie and, in the form, its HMAC.
func (s *Server) renderLogin(c *gin.Context, status int, email, problem string) {
	// The seed the browser has is kept, so that a sign-in form open in
	// another tab still works.
	seed, err := c.Cookie(loginCookie)
	if err != nil || len(seed) != 22 {
		seed = randomToken(16)
		s.setCookie(c, loginCookie, seed, time.Time{})
	}
	p := s.newPage(c, "login")
	p.CSRF = s.mac("login", seed)
	p.Email = email
	p.Problem = problem
	p.Next = safeNext(cmp.Or(c.PostForm("next"), c.Query("next")))
	s.render(c, status, "login", p)
}

// login checks the e-mail and password. Unknown e-mail and wrong password
// get the same answer after the same work; repeated failures per e-mail
// and per client address lock sign-in for a while.
func (s *Server) login(c *gin.Context) {
	ctx := c.Request.Context()
	seed, err := c.Cookie(loginCookie)
	if err != nil || seed == "" || subtle.ConstantTimeCompare([]byte(c.PostForm("csrf")), []byte(s.mac("login", seed))) != 1 {
		s.refusePage(c, http.StatusForbidden, "csrf")
		return
	}
	email := strings.ToLower(strings.TrimSpace(c.PostForm("email")))
	plain := c.PostForm("password")
	if len(email) > maxEmailBytes || len(plain) > maxPasswordBytes {
		s.renderLogin(c, http.StatusUnauthorized, "", "bad_credentials")
		return
	}
	ip := c.ClientIP()
	o := s.d.Cabinet
	since := store.Now().Add(-o.FailureWindow)
	for _, lim := range []struct {
		kind, key string
		max       int64
	}{{store.LoginByAccount, email, o.AccountFailures}, {store.LoginByIP, ip, o.IPFailures}} {
		n, _, err := s.d.Store.LoginFailures(ctx, lim.kind, lim.key, since)
		if err != nil {
			s.pageErr(c, err)
			return
		}
		if n >= lim.max {
			s.d.Log.Warn("cabinet sign-in locked: too many failures", "by", lim.kind, "remote", ip)
			c.Header("Retry-After", "900")
			s.renderLogin(c, http.StatusTooManyRequests, email, "locked")
			return
		}
	}
	users, err := s.d.Store.CabinetUsersByEmail(ctx, email)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	// Each check takes argon2's 19 MiB: a burst of sign-ins waits for a
	// slot rather than taking the memory all at once.
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		c.Abort()
		return
	}
	defer func() { <-s.hashSlots }()
	var who *store.CabinetUser
	for i := range users {
		ok, err := password.Verify(plain, users[i].PasswordHash)
		if err != nil {
			s.d.Log.Error("a cabinet user's password hash is unreadable", "user_id", users[i].ID, "err", err)
			continue
		}
		if ok {
			who = &users[i]
			break
		}
	}
	if len(users) == 0 {
		password.Waste(plain)
	}
	if who == nil {
		if err := s.d.Store.RecordLoginFailure(ctx, map[string]string{store.LoginByAccount: email, store.LoginByIP: ip}, since); err != nil {
			s.pageErr(c, err)
			return
		}
		s.d.Log.Info("cabinet sign-in refused", "remote", ip)
		s.renderLogin(c, http.StatusUnauthorized, email, "bad_credentials")
		return
	}
	if err := s.d.Store.ClearLoginFailures(ctx, store.LoginByAccount, email); err != nil {
		s.pageErr(c, err)
		return
	}
	// A new id at every sign-in: a session id planted before it (session
	// fixation) is dropped, never promoted.
	if old, err := c.Cookie(sessionCookie); err == nil && old != "" {
		if err := s.d.Store.DeleteCabinetSession(ctx, hashSession(old)); err != nil {
			s.pageErr(c, err)
			return
		}
	}
	if err := s.d.Store.DeleteExpiredCabinetSessions(ctx, store.Now().Add(-o.IdleTimeout)); err != nil {
		s.d.Log.Warn("could not drop expired cabinet sessions", "err", err)
	}
	raw := randomToken(32)
	expires := store.Now().Add(o.MaxAge)
	if err := s.d.Store.CreateCabinetSession(ctx, hashSession(raw), who.ID, expires); err != nil {
		s.pageErr(c, err)
		return
	}
	s.setCookie(c, loginCookie, "", time.Time{})
	s.setCookie(c, sessionCookie, raw, expires)
	s.d.Log.Info("cabinet sign-in", "user_id", who.ID, "workspace_id", who.WorkspaceID)
	c.Redirect(http.StatusSeeOther, cmp.Or(safeNext(c.PostForm("next")), "/"))
}

// logout ends this browser's session.
func (s *Server) logout(c *gin.Context) {
	if err := s.d.Store.DeleteCabinetSession(c.Request.Context(), hashSession(cabinetOf(c).sessionID)); err != nil {
		s.pageErr(c, err)
		return
	}
	s.setCookie(c, sessionCookie, "", time.Time{})
	c.Redirect(http.StatusSeeOther, "/login")
}

// logoutEverywhere ends every session of the user, on every device.
func (s *Server) logoutEverywhere(c *gin.Context) {
	cc := cabinetOf(c)
	n, err := s.d.Store.DeleteCabinetSessions(c.Request.Context(), cc.User.ID)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	s.d.Log.Info("cabinet user signed out everywhere", "user_id", cc.User.ID, "sessions", n)
	s.setCookie(c, sessionCookie, "", time.Time{})
	c.Redirect(http.StatusSeeOther, "/login")
}

// setLanguage keeps the user's choice of language.
func (s *Server) setLanguage(c *gin.Context) {
	lang := c.PostForm("lang")
	if lang != "ru" && lang != "en" {
		s.refusePage(c, http.StatusUnprocessableEntity, "language")
		return
	}
	cc := cabinetOf(c)
	if err := s.d.Store.SetCabinetUserLanguage(c.Request.Context(), cc.User.ID, lang); err != nil {
		s.pageErr(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, cmp.Or(safeNext(c.PostForm("back")), "/"))
}

// loginFor is the sign-in page for a signed-out request: a page asked for
// with GET is kept in next, so that signing in lands where the user was
// going rather than on Home.
func loginFor(c *gin.Context) string {
	if c.Request.Method != http.MethodGet {
		return "/login"
	}
	next := safeNext(c.Request.URL.RequestURI())
	if next == "" || next == "/" {
		return "/login"
	}
	return "/login?" + url.Values{"next": {next}}.Encode()
}

// safeNext is next if it is a path of this site (no scheme, no host, not
// "//host" or "/\\host" which browsers take for another host), else "":
// sign-in must not send anyone to another site (an open redirect).
func safeNext(next string) string {
	if len(next) > 2000 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\x00\r\n\t") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return ""
	}
	return next
}
