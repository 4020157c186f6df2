package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// settingsForm is the data of the "integration_settings" template: one
// integration's settings items 1–7 as one form. It carries everything the
// template needs (texts, CSRF token, where the form posts) so that it
// renders inside any layout: the cabinet's page, and later a CRM
// widget's.
type settingsForm struct {
	T    map[string]string
	Lang string
	// CSRF (the cabinet) or Sess (a page inside a CRM, whose signed
	// session is its CSRF proof) goes into every form of the page.
	CSRF, Sess string
	// Base is the path the form's buttons post under: Base+"/save",
	// Base+"/refresh" and Base+"/delete".
	Base string
	// ReadOnly shows the settings without a way to change them, for the
	// reason given (a CRM user who is not its admin).
	ReadOnly       bool
	ReadOnlyReason string
	// CanBind: the CRM lists its pipelines and stages (Pipelines), so a
	// channel can be bound here and its entry stage chosen.
	CanBind   bool
	Pipelines []crm.Pipeline
	// StagesProblem says the CRM did not list them just now.
	StagesProblem string

	ID, Type, Domain, State, StateLabel, Reason, ReauthURL string
	// CRMName is the CRM's name as people know it ("amoCRM").
	CRMName string

	Users      []formUser
	Channels   []formBinding
	Matrix     []formAccessRow
	AccessMode string
	Visibility string
	ChatAdmin  string
	NotifySecs string
	Trunk8     bool

	Notice  string
	Refused *problem
	// SelfURL is the page's own address (a GET) when it is shown at a
	// form's action (a refused save): the page's script puts it in the
	// address bar, so that a reload does not post the form again.
	SelfURL string
}

type formUser struct {
	ID, Name, Email string
	Active          bool
}

// formBinding is one channel of the workspace, bound or not: items 1,
// 2, 3, 3.1 and 6. The pipeline and stage are chosen when the CRM lists
// them (settingsForm.CanBind), else shown as the provider's bind set
// them.
type formBinding struct {
	ChannelID, ChannelName, Name, Mode string
	Line, Entity, Category, Stage      string
	// Bound: stored as bound; Checked: ticked on the page (Bound, or
	// what a refused save sent).
	Bound, Checked, CRMMode bool
	// StageKnown: Category/Stage is among the listed entry stages (a
	// stored one that is not stays selectable as it is).
	StageKnown                 bool
	Strategy, OnRepeat, Mirror string
	Owners                     []formOwner
	// W are the words that name the binding's records (leads or deals,
	// as this CRM calls them in the page's language).
	W map[string]string
}

type formOwner struct {
	UserID, Name string
	On, Active   bool
	Weight       int
	// Typed is a refused save's weight as it was typed.
	Typed string
}

// WeightText is the weight the input shows.
func (o formOwner) WeightText() string {
	if o.Typed != "" {
		return o.Typed
	}
	return strconv.Itoa(o.Weight)
}

// formAccessRow is one user's row of the access matrix.
type formAccessRow struct {
	UserID, Name string
	Active       bool
	Cells        []formCell
}

type formCell struct {
	ChannelID, Level string
	Default          bool
	// Open: access was never configured, so the user has every level;
	// the cell says so instead of "none".
	Open bool
}

// reauthURL is where an integration whose grant the CRM withdrew starts
// its consent again: each provider mounts /{type}/oauth/start, which takes
// the portal's domain where it needs one.
func reauthURL(in *store.Integration) string {
	if in.State != store.IntegrationNeedsReauth {
		return ""
	}
	u := "/" + url.PathEscape(in.Type) + "/oauth/start"
	if in.Domain != "" {
		u += "?domain=" + url.QueryEscape(in.Domain)
	}
	return u
}

// settingsFormOf builds the form from the settings state.
// entry, when the provider lists its pipelines, offers the channels of
// the workspace that are not bound yet and the choice of entry stage.
func (s *Server) settingsFormOf(ctx context.Context, st *settingsState, ws *store.Workspace, t map[string]string, lang, csrf, base string, entry *crm.Entry) (*settingsForm, error) {
	in := st.in
	f := &settingsForm{T: t, Lang: lang, CSRF: csrf, Base: base, ID: in.ID, Type: in.Type, Domain: in.Domain, State: in.State,
		StateLabel: stateLabel(t, in.State), Reason: in.StateReason, ReauthURL: reauthURL(in),
		AccessMode: st.settings.AccessMode, Visibility: st.settings.Visibility, ChatAdmin: st.settings.ChatAdminUserID,
		NotifySecs: strconv.Itoa(st.settings.NotifyAfterSeconds), Trunk8: ws.PhoneTrunk8}
	if f.AccessMode == "" {
		f.AccessMode = routing.AccessModeOpen
	}
	f.CRMName = s.d.Integrations.DisplayName(in.Type)
	// words picks the texts naming a binding's records: "_lead" or
	// "_deal" variants, as the provider calls them in this language.
	words := func(entity string) map[string]string {
		return recordTexts(t, s.d.Integrations.RecordWords(in.Type, lang, entity))
	}
	for _, u := range st.ac.Users {
		f.Users = append(f.Users, formUser{ID: u.UserID, Name: u.Name, Email: u.Email, Active: u.Active})
	}
	chs, err := s.d.Store.ListChannels(ctx, store.Scope{WorkspaceID: in.WorkspaceID})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, ch := range chs {
		names[ch.ID] = ch.Name
	}
	if entry != nil {
		f.CanBind, f.Pipelines = true, entry.Pipelines
	}
	bound := map[string]bool{}
	for i := range st.bindings {
		b := &st.bindings[i]
		bound[b.ChannelID] = true
		fb := formBinding{ChannelID: b.ChannelID, ChannelName: names[b.ChannelID], Name: b.Name, Mode: b.Mode, Line: b.LineID,
			Entity: b.Entity, Category: b.CategoryID, Stage: b.StageID, Bound: true, Checked: true, CRMMode: b.Mode == "crm", W: words(b.Entity)}
		fb.StageKnown = entryHas(entry, b.CategoryID, b.StageID)
		pol, err := routing.PolicyOf(b)
		if err != nil {
			s.d.Log.Warn("a binding's owner policy does not decode", "binding_id", b.ID, "err", err)
		}
		fb.OnRepeat, fb.Mirror = pol.OnRepeat, pol.Mirror
		weights := map[string]int{}
		if pol.Owner != nil {
			fb.Strategy = pol.Owner.Strategy
			for _, w := range pol.Owner.Users {
				weights[w.UserID] = w.Weight
			}
		}
		for _, u := range st.ac.Users {
			w, on := weights[u.UserID]
			if !on {
				w = 1
			}
			fb.Owners = append(fb.Owners, formOwner{UserID: u.UserID, Name: u.Name, On: on, Active: u.Active, Weight: w})
		}
		f.Channels = append(f.Channels, fb)
	}
	// The workspace's other channels, to bind with the defaults shown.
	for _, ch := range chs {
		if entry == nil || bound[ch.ID] || ch.State == store.ChannelDisabled {
			continue
		}
		fb := formBinding{ChannelID: ch.ID, ChannelName: ch.Name, Mode: entry.Mode, Entity: entry.Entity, CRMMode: entry.Mode == "crm",
			OnRepeat: routing.OnRepeatLastClosed, Mirror: routing.MirrorEach, StageKnown: true, W: words(entry.Entity)}
		if len(entry.Pipelines) > 0 && len(entry.Pipelines[0].Stages) > 0 {
			fb.Category, fb.Stage = entry.Pipelines[0].ID, entry.Pipelines[0].Stages[0].ID
		}
		for _, u := range st.ac.Users {
			fb.Owners = append(fb.Owners, formOwner{UserID: u.UserID, Name: u.Name, Active: u.Active, Weight: 1})
		}
		f.Channels = append(f.Channels, fb)
	}
	levels := map[[2]string]store.ChannelAccess{}
	for _, r := range st.matrix {
		levels[[2]string{r.UserID, r.ChannelID}] = r
	}
	for _, u := range st.ac.Users {
		row := formAccessRow{UserID: u.UserID, Name: u.Name, Active: u.Active}
		for _, b := range st.bindings {
			r, ok := levels[[2]string{u.UserID, b.ChannelID}]
			lv := store.AccessNone
			if ok {
				lv = r.Level
			}
			row.Cells = append(row.Cells, formCell{ChannelID: b.ChannelID, Level: lv, Default: ok && r.IsDefault,
				Open: f.AccessMode == routing.AccessModeOpen})
		}
		f.Matrix = append(f.Matrix, row)
	}
	return f, nil
}

// recordTexts are t with the words that name records as the CRM calls
// them: a key with a variant for kind ("_lead" or "_deal") takes it.
func recordTexts(t map[string]string, kind string) map[string]string {
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
		if w, ok := t[k+"_"+kind]; ok {
			out[k] = w
		}
	}
	return out
}

// formInt reads a whole number from a form field, refusing anything else
// with the field's own code.
func formInt(form url.Values, field, code string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(form.Get(field)))
	if err != nil {
		return 0, &fault.Error{Kind: fault.Invalid, Code: code, Field: field, Message: field + " is a whole number"}
	}
	return n, nil
}

// settingsAction does what one of the form's three buttons asks: save
// everything, refresh the CRM's data, delete the integration. A refusal
// is a *fault.Error and changes nothing.
func (s *Server) settingsAction(ctx context.Context, sc store.Scope, st *settingsState, action string, form url.Values) error {
	switch action {
	case "save":
		ws, err := s.d.Store.GetWorkspace(ctx, sc, st.in.WorkspaceID)
		if err != nil {
			return err
		}
		return s.saveSettingsForm(ctx, sc, st, ws, form)
	case "refresh":
		return s.refreshUsers(ctx, st)
	case "delete":
		return s.deleteIntegration(ctx, st)
	}
	return store.ErrNotFound
}

// integrationPageRow is an integration as the integrations page lists it.
type integrationPageRow struct {
	integrationRow
	ID, ReauthURL string
	Bound         int
}

// integrationsPage lists the workspace's CRM integrations.
func (s *Server) integrationsPage(c *gin.Context) {
	p := s.newPage(c, "integrations")
	rows, err := s.integrationRows(c.Request.Context(), cabinetOf(c).Workspace.ID, p.T)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	p.Integrated = rows
	for _, in := range s.d.Integrations.All() {
		p.Providers = append(p.Providers, providerRow{Type: in.Type(), Name: s.d.Integrations.DisplayName(in.Type())})
	}
	s.render(c, http.StatusOK, "integrations", p)
}

// integrationRows are a workspace's integrations with their states and
// bound channels, for the integrations and employees pages.
func (s *Server) integrationRows(ctx context.Context, workspaceID string, t map[string]string) ([]integrationPageRow, error) {
	ins, err := s.d.Store.ListIntegrations(ctx, store.Scope{WorkspaceID: workspaceID})
	if err != nil {
		return nil, err
	}
	var out []integrationPageRow
	for i := range ins {
		in := &ins[i]
		bs, err := s.d.Store.ListBindings(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, integrationPageRow{integrationRow: integrationRow{Type: s.d.Integrations.DisplayName(in.Type), Domain: in.Domain, State: in.State,
			StateLabel: stateLabel(t, in.State), Reason: in.StateReason}, ID: in.ID, ReauthURL: reauthURL(in), Bound: len(bs)})
	}
	return out, nil
}

// integrationState loads the integration in the path within the signed-in
// workspace; false when it answered (another workspace's is a 404).
func (s *Server) integrationState(c *gin.Context) (*settingsState, bool) {
	id := c.Param("integration_id")
	if !store.ValidID(id) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return nil, false
	}
	st, err := s.loadSettings(c.Request.Context(), store.Scope{WorkspaceID: cabinetOf(c).Workspace.ID}, id)
	if err != nil {
		s.pageErr(c, err)
		return nil, false
	}
	return st, true
}

// integrationPage shows one integration's settings form in the cabinet.
func (s *Server) integrationPage(c *gin.Context) {
	st, ok := s.integrationState(c)
	if !ok {
		return
	}
	s.renderIntegration(c, http.StatusOK, st, cabinetTexts[lang(c)]["saved_"+c.Query("saved")], nil, nil)
}

// renderIntegration shows the page; typed, when set, is a refused save
// whose values are shown as they were typed.
func (s *Server) renderIntegration(c *gin.Context, status int, st *settingsState, notice string, refused *problem, typed url.Values) {
	cc := cabinetOf(c)
	p := s.newPage(c, "integrations")
	entry, stagesProblem := s.entryForPage(c.Request.Context(), st.in, p.T)
	f, err := s.settingsFormOf(c.Request.Context(), st, cc.Workspace, p.T, p.Lang, p.CSRF, "/integrations/"+st.in.ID, entry)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	f.StagesProblem = stagesProblem
	f.Notice, f.Refused = notice, refused
	if typed != nil {
		f.showTyped(typed)
	}
	if refused != nil {
		f.SelfURL = "/integrations/" + st.in.ID
	}
	p.Settings = f
	// A refused form is shown at its action's address; the language
	// switch comes back to the page's own.
	p.Back = "/integrations/" + st.in.ID
	s.render(c, status, "integration", p)
}

// integrationActionPage runs one of the settings form's buttons and shows
// the form again: with the change, or with the refusal and nothing
// changed.
func (s *Server) integrationActionPage(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	action := c.Param("action")
	st, ok := s.integrationState(c)
	if !ok {
		return
	}
	if err := c.Request.ParseForm(); err != nil {
		s.refusePage(c, http.StatusBadRequest, "internal")
		return
	}
	sc := store.Scope{WorkspaceID: cc.Workspace.ID}
	err := s.settingsAction(ctx, sc, st, action, c.Request.PostForm)
	// A refusal names records as this CRM does (amoCRM's leads).
	t := recordTexts(cabinetTexts[lang(c)], s.d.Integrations.RecordWords(st.in.Type, lang(c), ""))
	if pr := problemOf(t, err); pr != nil {
		pr.ChannelID = channelOf(err)
		// Shown as stored: the refused change was not written.
		fresh, ok := s.integrationState(c)
		if !ok {
			return
		}
		var typed url.Values
		if action == "save" {
			typed = c.Request.PostForm
		}
		s.renderIntegration(c, httperr.Status(fault.As(err).Kind), fresh, "", pr, typed)
		return
	}
	if err != nil {
		s.pageErr(c, err)
		return
	}
	// Post, redirect, get: a reload shows the page, not the form again.
	c.Redirect(http.StatusSeeOther, "/integrations/"+st.in.ID+"?saved="+action)
	c.Abort()
}
