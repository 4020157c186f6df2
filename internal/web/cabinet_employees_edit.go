package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/password"
	"github.com/switchboard/switchboard/internal/store"
)

// Editing people (issue 9): owners and admins change a user's name and
// role and reset their password (made and shown once, or set); every
// user changes their own password on /account, the current one required.
// A changed password ends the user's sessions (one's own other sessions
// when one changes it oneself). The last owner stays an owner.

// mountCabinetEmployees adds the edit and password routes.
func (s *Server) mountCabinetEmployees(in, admin *gin.RouterGroup) {
	admin.POST("/employees/:user_id", s.editEmployee)
	admin.POST("/employees/:user_id/password", s.resetEmployeePassword)
	in.GET("/account", s.accountPage)
	in.POST("/account/password", s.changeOwnPassword)
}

// employeeOf loads a user of the workspace the signed-in admin may
// manage; otherwise it answers (404 for a stranger, 403 for an owner an
// admin may not touch).
func (s *Server) employeeOf(c *gin.Context) (*store.CabinetUser, bool) {
	cc := cabinetOf(c)
	id := c.Param("user_id")
	if !store.ValidID(id) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return nil, false
	}
	u, err := s.d.Store.GetCabinetUser(c.Request.Context(), store.Scope{WorkspaceID: cc.Workspace.ID}, cc.Workspace.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return nil, false
	}
	if err != nil {
		s.pageErr(c, err)
		return nil, false
	}
	if !canManage(cc.User, u.Role) {
		s.refusePage(c, http.StatusForbidden, "forbidden")
		return nil, false
	}
	return u, true
}

// employeeProblem shows the employees page with a refusal in the
// reader's language.
func (s *Server) employeeProblem(c *gin.Context, fe *fault.Error) {
	p := s.newPage(c, "employees")
	p.Problem, p.Field, p.EditRefused = fe.Message, fe.Field, true
	if txt, ok := p.T["e_"+fe.Code]; ok {
		p.Problem = txt
	}
	s.renderEmployees(c, http.StatusUnprocessableEntity, p)
}

// employeeErr answers a failed edit: a refusal on the page, in the
// reader's language; a request gone, nothing; anything else, the error
// page.
func (s *Server) employeeErr(c *gin.Context, err error) {
	if fe := fault.As(err); fe != nil {
		s.employeeProblem(c, fe)
		return
	}
	if errors.Is(err, context.Canceled) {
		c.Abort()
		return
	}
	s.pageErr(c, err)
}

// editEmployee changes a user's name and role (changeUser, as the API's
// PATCH does).
func (s *Server) editEmployee(c *gin.Context) {
	cc := cabinetOf(c)
	u, ok := s.employeeOf(c)
	if !ok {
		return
	}
	role, name := c.PostForm("role"), c.PostForm("name")
	if !canManage(cc.User, role) {
		s.refusePage(c, http.StatusForbidden, "forbidden")
		return
	}
	if _, _, err := s.changeUser(c.Request.Context(), u, UserChange{Name: &name, Role: &role}); err != nil {
		s.employeeErr(c, err)
		return
	}
	s.d.Log.Info("cabinet user changed", "user_id", u.ID, "role", role, "by", cc.User.ID)
	p := s.newPage(c, "employees")
	p.Notice = p.T["saved_ok"]
	s.renderEmployees(c, http.StatusOK, p)
}

// resetEmployeePassword sets another user's password (made when none is
// given, shown once) and ends their sessions (changeUser).
func (s *Server) resetEmployeePassword(c *gin.Context) {
	cc := cabinetOf(c)
	u, ok := s.employeeOf(c)
	if !ok {
		return
	}
	if u.ID == cc.User.ID {
		// One's own password needs the current one: /account.
		c.Redirect(http.StatusSeeOther, "/account")
		return
	}
	plain, generated := c.PostForm("password"), ""
	if plain == "" {
		var err error
		if plain, err = password.Generate(generatedPasswordLen); err != nil {
			s.pageErr(c, err)
			return
		}
		generated = plain
	}
	_, n, err := s.changeUser(c.Request.Context(), u, UserChange{Password: &plain})
	if err != nil {
		s.employeeErr(c, err)
		return
	}
	s.d.Log.Info("cabinet user's password reset", "user_id", u.ID, "by", cc.User.ID, "sessions_ended", n)
	p := s.newPage(c, "employees")
	p.Generated, p.GeneratedFor = generated, u.Email
	if generated == "" {
		p.Notice = fmt.Sprintf(p.T["password_reset_ok"], u.Email)
	}
	s.renderEmployees(c, http.StatusOK, p)
}

// hashSlot waits for one of the password-hashing slots (argon2 takes
// 19 MiB each); false when the request ended meanwhile. The caller
// frees it.
func (s *Server) hashSlot(c *gin.Context) bool {
	select {
	case s.hashSlots <- struct{}{}:
		return true
	case <-c.Request.Context().Done():
		c.Abort()
		return false
	}
}

// accountPage is the signed-in user's own page: their password.
func (s *Server) accountPage(c *gin.Context) {
	p := s.newPage(c, "account")
	if c.Query("done") == "password" {
		p.Notice = p.T["own_password_ok"]
	}
	s.render(c, http.StatusOK, "account", p)
}

// changeOwnPassword changes the signed-in user's password, the current
// one required, and ends their other sessions. A wrong current password
// counts as a failed sign-in of the account, so this form is no way
// around the sign-in limit.
func (s *Server) changeOwnPassword(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	current, next := c.PostForm("current"), c.PostForm("password")
	refuse := func(status int, code, field string) {
		p := s.newPage(c, "account")
		p.Problem, p.Field = p.T["e_"+code], field
		s.render(c, status, "account", p)
	}
	o := s.d.Cabinet
	since := store.Now().Add(-o.FailureWindow)
	if n, _, err := s.d.Store.LoginFailures(ctx, store.LoginByAccount, cc.User.Email, since); err != nil {
		s.pageErr(c, err)
		return
	} else if o.AccountFailures > 0 && n >= o.AccountFailures {
		c.Header("Retry-After", "900")
		refuse(http.StatusTooManyRequests, "password_locked", "current")
		return
	}
	if len(current) > maxPasswordBytes {
		refuse(http.StatusUnprocessableEntity, "current_password_wrong", "current")
		return
	}
	if fe := checkPassword(next); fe != nil {
		refuse(http.StatusUnprocessableEntity, fe.Code, "password")
		return
	}
	if !s.hashSlot(c) {
		return
	}
	defer func() { <-s.hashSlots }()
	ok, err := password.Verify(current, cc.User.PasswordHash)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	if !ok {
		if err := s.d.Store.RecordLoginFailure(ctx, map[string]string{store.LoginByAccount: cc.User.Email, store.LoginByIP: c.ClientIP()}, since); err != nil {
			s.pageErr(c, err)
			return
		}
		refuse(http.StatusUnprocessableEntity, "current_password_wrong", "current")
		return
	}
	hash, err := password.Hash(next, password.OWASP)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	n, err := s.d.Store.SetCabinetUserPassword(ctx, cc.User.ID, hash, hashSession(cc.sessionID))
	if err != nil {
		s.pageErr(c, err)
		return
	}
	s.d.Log.Info("cabinet user changed their password", "user_id", cc.User.ID, "other_sessions_ended", n)
	c.Redirect(http.StatusSeeOther, "/account?done=password")
}
