package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/password"
	"github.com/switchboard/switchboard/internal/store"
)

// Limits of a cabinet user's fields.
const (
	// MinPasswordRunes follows NIST SP 800-63B's advice of length over
	// composition rules; the cabinet guards a whole workspace's customers.
	MinPasswordRunes = 10
	// maxPasswordBytes bounds the work argon2 is given by a stranger.
	maxPasswordBytes = 256
	maxEmailBytes    = 254
	// generatedPasswordLen is the length of a password made for a user
	// created without one (~92 bits).
	generatedPasswordLen = 16
)

// NewUser is a cabinet user to create.
type NewUser struct {
	Email    string
	Name     string
	Role     string
	Password string // "" makes one
	Language string // "", "ru" or "en"
}

// CreateUser validates and stores a cabinet user of a workspace, with its
// password hashed by argon2id. It returns the user and, when none was
// given, the password it made (to be shown once). Refusals are
// fault.Errors naming the field: email_invalid, role_invalid,
// password_too_short, password_too_long, name_invalid, language_invalid,
// email_taken.
func CreateUser(ctx context.Context, st *store.Store, scope store.Scope, workspaceID string, nu NewUser) (*store.CabinetUser, string, error) {
	email, ferr := checkEmail(nu.Email)
	if ferr != nil {
		return nil, "", ferr
	}
	if !slices.Contains([]string{store.RoleOwner, store.RoleAdmin, store.RoleManager}, nu.Role) {
		return nil, "", &fault.Error{Kind: fault.Invalid, Code: "role_invalid", Field: "role",
			Message: fmt.Sprintf("role is owner, admin or manager; got %.40q", nu.Role)}
	}
	name := strings.TrimSpace(nu.Name)
	if p := textProblem(name, maxNameRunes); p != "" {
		return nil, "", &fault.Error{Kind: fault.Invalid, Code: "name_invalid", Field: "name", Message: "name: " + p}
	}
	if nu.Language != "" && nu.Language != "ru" && nu.Language != "en" {
		return nil, "", &fault.Error{Kind: fault.Invalid, Code: "language_invalid", Field: "language", Message: `language is "ru" or "en"`}
	}
	plain, generated := nu.Password, ""
	if plain == "" {
		var err error
		if plain, err = password.Generate(generatedPasswordLen); err != nil {
			return nil, "", err
		}
		generated = plain
	} else if ferr := checkPassword(plain); ferr != nil {
		return nil, "", ferr
	}
	if _, err := st.GetWorkspace(ctx, scope, workspaceID); err != nil {
		return nil, "", err
	}
	hash, err := password.Hash(plain, password.OWASP)
	if err != nil {
		return nil, "", err
	}
	u := &store.CabinetUser{WorkspaceID: workspaceID, Email: email, Name: name, Role: nu.Role, PasswordHash: hash, Language: nu.Language}
	if err := st.CreateCabinetUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, "", &fault.Error{Kind: fault.Conflict, Code: "email_taken", Field: "email",
				Message: "the workspace already has a user with this email"}
		}
		return nil, "", err
	}
	return u, generated, nil
}

// checkEmail returns the e-mail lower-cased, or why it is refused. Only a
// bare address is taken (no "Name <a@b>").
func checkEmail(raw string) (string, *fault.Error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > maxEmailBytes || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return "", &fault.Error{Kind: fault.Invalid, Code: "email_invalid", Field: "email",
			Message: "email is an address like name@example.com"}
	}
	return e, nil
}

func checkPassword(p string) *fault.Error {
	if utf8.RuneCountInString(p) < MinPasswordRunes {
		return &fault.Error{Kind: fault.Invalid, Code: "password_too_short", Field: "password",
			Message: fmt.Sprintf("password must have at least %d characters", MinPasswordRunes)}
	}
	if len(p) > maxPasswordBytes || !utf8.ValidString(p) {
		return &fault.Error{Kind: fault.Invalid, Code: "password_too_long", Field: "password",
			Message: fmt.Sprintf("password must be valid text of at most %d bytes", maxPasswordBytes)}
	}
	return nil
}

// userView is a cabinet user as the API shows it: never the hash.
type userView struct {
	ID          string            `json:"id"`
	WorkspaceID string            `json:"workspace_id"`
	Email       string            `json:"email"`
	Name        string            `json:"name"`
	Role        string            `json:"role"`
	Language    string            `json:"language,omitempty"`
	CRMLinks    map[string]string `json:"crm_links"`
	CreatedAt   time.Time         `json:"created_at"`
	// Password is there once, in the answer that created the user without
	// one.
	Password string `json:"password,omitempty"`
}

func viewUser(u *store.CabinetUser, links map[string]string) userView {
	if links == nil {
		links = map[string]string{}
	}
	return userView{ID: u.ID, WorkspaceID: u.WorkspaceID, Email: u.Email, Name: u.Name, Role: u.Role, Language: u.Language,
		CRMLinks: links, CreatedAt: u.CreatedAt}
}

// createUser: POST /api/v1/workspaces/:id/users. The operator creates a
// workspace's first owner this way; a workspace token manages its own
// workspace's people.
func (s *Server) createUser(c *gin.Context) {
	var req struct {
		Email    string `json:"email"`
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
		Language string `json:"language"`
	}
	if !decode(c, &req) {
		return
	}
	u, generated, err := CreateUser(c.Request.Context(), s.d.Store, scopeOf(c), c.Param("id"),
		NewUser{Email: req.Email, Name: req.Name, Role: req.Role, Password: req.Password, Language: req.Language})
	if err != nil {
		s.failErr(c, err)
		return
	}
	v := viewUser(u, nil)
	v.Password = generated
	reply(c, http.StatusCreated, v)
}

// listUsers: GET /api/v1/workspaces/:id/users.
func (s *Server) listUsers(c *gin.Context) {
	us, err := s.d.Store.ListCabinetUsers(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	links, err := s.d.Store.CabinetUserCRMLinks(c.Request.Context(), userIDs(us))
	if err != nil {
		s.failErr(c, err)
		return
	}
	out := make([]userView, len(us))
	for i := range us {
		out[i] = viewUser(&us[i], links[us[i].ID])
	}
	reply(c, http.StatusOK, gin.H{"data": out})
}

func userIDs(us []store.CabinetUser) []string {
	ids := make([]string, len(us))
	for i := range us {
		ids[i] = us[i].ID
	}
	return ids
}

// deleteUser: DELETE /api/v1/workspaces/:id/users/:user_id. The user's
// sessions end with them; the last owner stays (409 last_owner).
func (s *Server) deleteUser(c *gin.Context) {
	if !store.ValidID(c.Param("user_id")) {
		fail(c, http.StatusNotFound, "not_found", "no such user")
		return
	}
	u, err := s.d.Store.DeleteCabinetUser(c.Request.Context(), scopeOf(c), c.Param("id"), c.Param("user_id"))
	if errors.Is(err, store.ErrLastOwner) {
		fail(c, http.StatusConflict, "last_owner", "a workspace keeps at least one owner: make another user owner first")
		return
	}
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, viewUser(u, nil))
}

// putUserCRMLinks: PUT /api/v1/workspaces/:id/users/:user_id/crm_links
// with {"<integration id>": "<CRM user id>"} replaces the user's links.
// Each integration must be the workspace's and each CRM user one the
// gateway has read from that CRM.
func (s *Server) putUserCRMLinks(c *gin.Context) {
	ctx := c.Request.Context()
	if !store.ValidID(c.Param("user_id")) {
		fail(c, http.StatusNotFound, "not_found", "no such user")
		return
	}
	var req map[string]string
	if !decode(c, &req) {
		return
	}
	u, err := s.d.Store.GetCabinetUser(ctx, scopeOf(c), c.Param("id"), c.Param("user_id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	links := map[string]string{}
	for inID, crmUser := range req {
		if crmUser == "" {
			continue // "" unlinks, like leaving the integration out
		}
		in, err := s.d.Store.GetIntegration(ctx, store.Scope{WorkspaceID: u.WorkspaceID}, inID)
		if err != nil || !store.ValidID(inID) {
			c.AbortWithStatusPureJSON(http.StatusUnprocessableEntity, gin.H{"error": gin.H{"code": "integration_unknown", "field": inID,
				"message": fmt.Sprintf("%.40q is not an integration of this workspace", inID)}})
			return
		}
		known, err := s.d.Store.CRMUsers(ctx, in.ID)
		if err != nil {
			s.failErr(c, err)
			return
		}
		if !slices.ContainsFunc(known, func(k store.CRMUser) bool { return k.UserID == crmUser }) {
			c.AbortWithStatusPureJSON(http.StatusUnprocessableEntity, gin.H{"error": gin.H{"code": "crm_user_unknown", "field": inID,
				"message": fmt.Sprintf("the integration has no user %.40q (its users are read from the CRM; refresh the integration if they are new)", crmUser)}})
			return
		}
		links[in.ID] = crmUser
	}
	if err := s.d.Store.ReplaceCabinetUserCRMLinks(ctx, u.ID, links); err != nil {
		if errors.Is(err, store.ErrConflict) {
			fail(c, http.StatusConflict, "crm_user_taken", "one of these CRM users is already linked to another cabinet user")
			return
		}
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, viewUser(u, links))
}

// UserChange is an edit of a cabinet user; a nil field stays as it is.
type UserChange struct {
	Name     *string
	Role     *string
	Password *string
}

// changeUser is the one edit of a cabinet user, behind the cabinet's
// employee forms and PATCH /api/v1/workspaces/:id/users/:user_id. Every
// given field is checked first (role_invalid, person_name_invalid,
// password_too_short, password_too_long), so a refusal changes nothing;
// the last owner stays an owner (last_owner); a new password ends every
// session of the user. Who may make which change is the caller's to
// decide. It returns the user as changed and how many sessions ended.
func (s *Server) changeUser(ctx context.Context, u *store.CabinetUser, ch UserChange) (*store.CabinetUser, int64, error) {
	name, role := u.Name, u.Role
	if ch.Role != nil {
		role = *ch.Role
		if !slices.Contains([]string{store.RoleOwner, store.RoleAdmin, store.RoleManager}, role) {
			return nil, 0, &fault.Error{Kind: fault.Invalid, Code: "role_invalid", Field: "role",
				Message: fmt.Sprintf("role is owner, admin or manager; got %.40q", role)}
		}
	}
	if ch.Name != nil {
		name = strings.TrimSpace(*ch.Name)
		if p := textProblem(name, maxNameRunes); p != "" {
			return nil, 0, &fault.Error{Kind: fault.Invalid, Code: "person_name_invalid", Field: "name", Message: "name: " + p}
		}
	}
	var hash string
	if ch.Password != nil {
		if fe := checkPassword(*ch.Password); fe != nil {
			return nil, 0, fe
		}
		// argon2 takes 19 MiB a hash: a slot bounds how many run at once.
		select {
		case s.hashSlots <- struct{}{}:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		var err error
		hash, err = password.Hash(*ch.Password, password.OWASP)
		<-s.hashSlots
		if err != nil {
			return nil, 0, err
		}
	}
	if ch.Name != nil || ch.Role != nil {
		changed, err := s.d.Store.UpdateCabinetUser(ctx, store.Scope{WorkspaceID: u.WorkspaceID}, u.WorkspaceID, u.ID, name, role)
		if errors.Is(err, store.ErrLastOwner) {
			return nil, 0, &fault.Error{Kind: fault.Conflict, Code: "last_owner", Field: "role",
				Message: "a workspace keeps at least one owner: make another user owner first"}
		}
		if err != nil {
			return nil, 0, err
		}
		u = changed
	}
	var ended int64
	if hash != "" {
		var err error
		if ended, err = s.d.Store.SetCabinetUserPassword(ctx, u.ID, hash, ""); err != nil {
			return nil, 0, err
		}
	}
	return u, ended, nil
}

// patchUser: PATCH /api/v1/workspaces/:id/users/:user_id with any of
// {"name", "role", "password"} edits a user as the cabinet's employee
// forms do (changeUser). The answer is the user; a new password's ended
// sessions are counted in sessions_ended.
func (s *Server) patchUser(c *gin.Context) {
	ctx := c.Request.Context()
	if !store.ValidID(c.Param("user_id")) {
		fail(c, http.StatusNotFound, "not_found", "no such user")
		return
	}
	var req struct {
		Name     *string `json:"name"`
		Role     *string `json:"role"`
		Password *string `json:"password"`
	}
	if !decode(c, &req) {
		return
	}
	u, err := s.d.Store.GetCabinetUser(ctx, scopeOf(c), c.Param("id"), c.Param("user_id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	u, ended, err := s.changeUser(ctx, u, UserChange{Name: req.Name, Role: req.Role, Password: req.Password})
	if err != nil {
		s.failErr(c, err)
		return
	}
	links, err := s.d.Store.CabinetUserCRMLinks(ctx, []string{u.ID})
	if err != nil {
		s.failErr(c, err)
		return
	}
	s.d.Log.Info("cabinet user changed through the API", "user_id", u.ID, "role", u.Role, "new_password", req.Password != nil, "sessions_ended", ended)
	reply(c, http.StatusOK, struct {
		userView
		SessionsEnded int64 `json:"sessions_ended"`
	}{viewUser(u, links[u.ID]), ended})
}
