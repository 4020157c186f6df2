package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// onChannel is a refusal about one channel of the form, so the page can
// mark that channel's card.
type onChannel struct {
	channelID string
	err       error
}

func (e *onChannel) Error() string { return e.err.Error() }
func (e *onChannel) Unwrap() error { return e.err }

// channelOf is the channel a refusal is about, "" when none.
func channelOf(err error) string {
	for err != nil {
		if oc, ok := err.(*onChannel); ok {
			return oc.channelID
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return ""
		}
		err = u.Unwrap()
	}
	return ""
}

// bindStep is what saving does to one bound or newly ticked channel: a
// bind through the provider (new, or another pipeline or stage), or only
// the policy columns of the stored binding.
type bindStep struct {
	channelID string
	body      json.RawMessage
	policy    *store.ChannelBinding
}

// entryOf is the provider's pipelines and entry stages, nil when it does
// not list them.
func (s *Server) entryOf(ctx context.Context, in *store.Integration) (*crm.Entry, error) {
	p, ok := s.d.Integrations.Get(in.Type)
	dir, isDir := p.(crm.StageDirectory)
	if !ok || !isDir {
		return nil, nil
	}
	return dir.EntryStages(ctx, in)
}

// saveSettingsForm saves the whole settings form (its Save button): the
// channels ticked and unticked with their pipelines, stages and policies,
// the access matrix, visibility, the alert and the workspace's phone
// rule. Everything is checked first — binds through the provider's own
// checks (crm.BindChecker), the rest through the API's — and a refusal
// changes nothing; then binds and unbinds go through the provider's
// Bind and Unbind, as PUT and DELETE
// /api/v1/integrations/{id}/channels/{channel_id} do.
func (s *Server) saveSettingsForm(ctx context.Context, sc store.Scope, st *settingsState, ws *store.Workspace, form url.Values) error {
	in := st.in
	p, ok := s.d.Integrations.Get(in.Type)
	if !ok {
		return store.ErrNotFound
	}
	notify, err := formInt(form, "notify_after_seconds", routing.CodeNotifyAfter)
	if err != nil {
		return err
	}
	bound := map[string]*store.ChannelBinding{}
	for i := range st.bindings {
		bound[st.bindings[i].ChannelID] = &st.bindings[i]
	}
	var (
		unbind []string
		steps  []bindStep
		kept   []string
		entry  *crm.Entry
	)
	seen := map[string]bool{}
	for _, ch := range form["ch"] {
		if !store.ValidID(ch) || seen[ch] {
			return &fault.Error{Kind: fault.Malformed, Code: "form_invalid", Field: "ch", Message: "the form's channel list is damaged; reload the page"}
		}
		seen[ch] = true
		b := bound[ch]
		if form.Get("bind:"+ch) != "on" {
			if b != nil {
				unbind = append(unbind, ch)
			}
			continue
		}
		if b == nil && entry == nil {
			// A new binding needs the provider's mode and record kind.
			if entry, err = s.entryOf(ctx, in); err != nil {
				return err
			}
			if entry == nil {
				return &onChannel{ch, fault.New(fault.Invalid, "bind_unsupported", "this CRM binds channels from its own app or the API, not here")}
			}
		}
		mode := ""
		if b != nil {
			mode = b.Mode
		} else {
			mode = entry.Mode
		}
		pol, err := policyFromForm(form, ch, mode == "crm", st.ac.Users)
		if err != nil {
			return &onChannel{ch, err}
		}
		if err := routing.ValidateBinding(pol, mode == "crm", in.ID, st.ac.Users); err != nil {
			return &onChannel{ch, err}
		}
		category, stage, _ := strings.Cut(form.Get("stage:"+ch), "/")
		switch {
		case b == nil:
			body, err := json.Marshal(crm.BindBody{Mode: entry.Mode, Entity: entry.Entity, CategoryID: category, StageID: stage, BindingPolicy: pol})
			if err != nil {
				return err
			}
			steps = append(steps, bindStep{channelID: ch, body: body})
		case form.Has("stage:"+ch) && (category != b.CategoryID || stage != b.StageID):
			body, err := json.Marshal(crm.BindBody{Mode: b.Mode, Entity: b.Entity, CategoryID: category, StageID: stage, BindingPolicy: pol})
			if err != nil {
				return err
			}
			steps = append(steps, bindStep{channelID: ch, body: body})
			kept = append(kept, ch)
		default:
			nb := *b
			pol.Apply(&nb)
			steps = append(steps, bindStep{channelID: ch, policy: &nb})
			kept = append(kept, ch)
		}
	}
	for _, step := range steps {
		if step.body == nil {
			continue
		}
		if bc, ok := p.(crm.BindChecker); ok {
			if err := bc.CheckBind(ctx, sc, in.ID, step.channelID, step.body); err != nil {
				return &onChannel{step.channelID, err}
			}
		}
	}
	vis, admin := form.Get("visibility"), form.Get("chat_admin_user_id")
	req := settingsRequest{Visibility: &vis, ChatAdminUserID: &admin, NotifyAfterSeconds: &notify}
	// The matrix of the channels that stay bound, written only when it
	// changed: writing it switches an open integration to the matrix.
	narrowed := *st
	narrowed.ac.Bound = kept
	if rows := accessFromForm(form, st.ac.Users, kept); !sameAccess(rows, st.matrix, kept) {
		req.Access = &rows
	}
	next, access, err := checkSettings(&narrowed, req)
	if err != nil {
		return err
	}
	trunk8 := form.Get("phone_trunk8") == "on"

	// Checked: now write, the provider's paths first.
	for _, ch := range unbind {
		if err := p.Unbind(ctx, sc, in.ID, ch); err != nil {
			return fmt.Errorf("web: unbind %s: %w", ch, err)
		}
	}
	for _, step := range steps {
		if step.policy != nil {
			if err := s.d.Store.PutBinding(ctx, step.policy); err != nil {
				return err
			}
			continue
		}
		if _, err := p.Bind(ctx, sc, in.ID, step.channelID, step.body); err != nil {
			return &onChannel{step.channelID, err}
		}
	}
	st.settings = next
	if err := s.storeSettings(ctx, st, access); err != nil {
		return err
	}
	if trunk8 != ws.PhoneTrunk8 {
		if _, err := s.patchWorkspace(ctx, sc, in.WorkspaceID, store.WorkspaceUpdate{PhoneTrunk8: &trunk8}, false); err != nil {
			return err
		}
	}
	return nil
}

// policyFromForm reads a channel's name, owner strategy with weights,
// repeat rule and mirror mode (the last three in crm mode only).
func policyFromForm(form url.Values, ch string, crmMode bool, users []store.CRMUser) (routing.BindingPolicy, error) {
	pol := routing.BindingPolicy{Name: strings.TrimSpace(form.Get("name:" + ch))}
	if !crmMode {
		return pol, nil
	}
	pol.OnRepeat, pol.Mirror = form.Get("on_repeat:"+ch), form.Get("mirror:"+ch)
	strategy := form.Get("strategy:" + ch)
	if strategy == "" {
		return pol, nil
	}
	pol.Owner = &routing.OwnerPolicy{Strategy: strategy}
	for _, u := range users {
		if form.Get("owner:"+ch+":"+u.UserID) != "on" {
			continue
		}
		w, err := formInt(form, "weight:"+ch+":"+u.UserID, routing.CodeOwnerWeight)
		if err != nil {
			return pol, err
		}
		pol.Owner.Users = append(pol.Owner.Users, routing.WeightedUser{UserID: u.UserID, Weight: w})
	}
	return pol, nil
}

// accessFromForm reads the matrix's cells of channels: lvl:{user}:{channel}
// and the default channel def:{user}, which follows the level (a channel
// without send cannot be the default).
func accessFromForm(form url.Values, users []store.CRMUser, channels []string) []routing.UserAccess {
	rows := make([]routing.UserAccess, 0, len(users))
	for _, u := range users {
		ua := routing.UserAccess{UserID: u.UserID, Channels: map[string]string{}}
		for _, ch := range channels {
			if lv := form.Get("lvl:" + u.UserID + ":" + ch); lv != "" && lv != store.AccessNone {
				ua.Channels[ch] = lv
			}
		}
		if d := form.Get("def:" + u.UserID); d != "" && routing.CanSend(ua.Channels[d]) {
			ua.DefaultChannelID = d
		}
		if len(ua.Channels) > 0 {
			rows = append(rows, ua)
		}
	}
	return rows
}

// sameAccess says whether rows are the stored matrix's cells of channels.
func sameAccess(rows []routing.UserAccess, stored []store.ChannelAccess, channels []string) bool {
	in := map[string]bool{}
	for _, ch := range channels {
		in[ch] = true
	}
	type cell struct {
		level string
		def   bool
	}
	want := map[[2]string]cell{}
	for _, r := range stored {
		if in[r.ChannelID] && r.Level != store.AccessNone {
			want[[2]string{r.UserID, r.ChannelID}] = cell{r.Level, r.IsDefault}
		}
	}
	got := map[[2]string]cell{}
	for _, ua := range rows {
		for ch, lv := range ua.Channels {
			got[[2]string{ua.UserID, ch}] = cell{lv, ua.DefaultChannelID == ch}
		}
	}
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// deleteIntegration is the form's Delete button: the integration is
// uninstalled as the CRM's own disable hook does it — bindings removed,
// tokens forgotten, users and settings kept for a reinstall — by its
// provider when that has more to undo (crm.Uninstaller).
func (s *Server) deleteIntegration(ctx context.Context, st *settingsState) error {
	const reason = "deleted from the integration's settings page"
	if p, ok := s.d.Integrations.Get(st.in.Type); ok {
		if u, ok := p.(crm.Uninstaller); ok {
			return u.Uninstall(ctx, st.in.ID, reason)
		}
	}
	return s.d.Store.UninstallIntegration(ctx, st.in.ID, false, reason)
}

// entryForPage is entryOf for a page: a CRM that does not answer now
// leaves the choice of stage out, with the reason in the page's words,
// rather than the whole page.
func (s *Server) entryForPage(ctx context.Context, in *store.Integration, t map[string]string) (*crm.Entry, string) {
	if !routing.Live(in) {
		// An unpaid or unauthorised CRM is not asked; a CRM that lists
		// its stages says why they are missing, not that it never does.
		if p, ok := s.d.Integrations.Get(in.Type); ok {
			if _, isDir := p.(crm.StageDirectory); isDir && in.State != store.IntegrationUninstalled {
				return nil, t["stages_paused"]
			}
		}
		return nil, ""
	}
	entry, err := s.entryOf(ctx, in)
	if err != nil {
		s.d.Log.Warn("settings page: the CRM did not list its pipelines", "integration_id", in.ID, "err", err)
		return nil, t["stages_unavailable"]
	}
	return entry, ""
}

// showTyped puts a refused save's values back into the form, so that the
// admin fixes the one named problem instead of typing everything again.
// Only channels the form listed are touched.
func (f *settingsForm) showTyped(form url.Values) {
	f.Visibility, f.ChatAdmin, f.NotifySecs = form.Get("visibility"), form.Get("chat_admin_user_id"), form.Get("notify_after_seconds")
	f.Trunk8 = form.Get("phone_trunk8") == "on"
	listed := map[string]bool{}
	for _, ch := range form["ch"] {
		listed[ch] = true
	}
	for i := range f.Channels {
		b := &f.Channels[i]
		ch := b.ChannelID
		if !listed[ch] {
			continue
		}
		b.Checked = form.Get("bind:"+ch) == "on"
		b.Name, b.Strategy = form.Get("name:"+ch), form.Get("strategy:"+ch)
		if v := form.Get("on_repeat:" + ch); v != "" {
			b.OnRepeat = v
		}
		if v := form.Get("mirror:" + ch); v != "" {
			b.Mirror = v
		}
		if cat, stage, ok := strings.Cut(form.Get("stage:"+ch), "/"); ok {
			b.Category, b.Stage = cat, stage
			b.StageKnown = entryHas(&crm.Entry{Pipelines: f.Pipelines}, cat, stage)
		}
		for j := range b.Owners {
			o := &b.Owners[j]
			o.On = form.Get("owner:"+ch+":"+o.UserID) == "on"
			o.Typed = form.Get("weight:" + ch + ":" + o.UserID)
		}
	}
	for i := range f.Matrix {
		r := &f.Matrix[i]
		for j := range r.Cells {
			c := &r.Cells[j]
			if lv := form.Get("lvl:" + r.UserID + ":" + c.ChannelID); lv != "" {
				c.Level = lv
			}
			c.Default = form.Get("def:"+r.UserID) == c.ChannelID
		}
	}
}

// entryHas says whether the CRM lists stage in pipeline as an entry
// stage; a nil entry lists nothing.
func entryHas(e *crm.Entry, pipeline, stage string) bool {
	if e == nil {
		return false
	}
	for _, p := range e.Pipelines {
		if p.ID != pipeline {
			continue
		}
		for _, st := range p.Stages {
			if st.ID == stage {
				return true
			}
		}
	}
	return false
}
