package crm

import (
	"context"
	"strings"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
	phonenum "github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/store"
)

// What a CRM's automation (Bitrix24's robot, amoCRM's digital pipeline
// action) shares: which channel a rule's message goes out by, and the
// template its settings name. Each CRM reads its own settings and reports
// the outcome its own way.

// CodeNoChannel is the fault code of an automation without a usable
// channel; its message says which, for the CRM to show its users.
const CodeNoChannel = "automation_no_channel"

// AutomationChannel picks the channel an automation sends through: the
// one named (id, account id or display number) in the integration's
// workspace, else the first active channel bound to the integration.
func AutomationChannel(ctx context.Context, st *store.Store, in *store.Integration, name string) (*store.Channel, error) {
	chs, err := st.ListChannels(ctx, store.Scope{WorkspaceID: in.WorkspaceID})
	if err != nil {
		return nil, err
	}
	if name = strings.TrimSpace(name); name != "" {
		// A number is read by the workspace's rule, as the recipient is:
		// "8 701 234 56 78" names the channel "+7 701 234 56 78".
		ws, err := st.GetWorkspace(ctx, store.All, in.WorkspaceID)
		if err != nil {
			return nil, err
		}
		rule := phonenum.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion}
		for i := range chs {
			ch := &chs[i]
			sameNumber := digits(name) != "" && (digits(ch.DisplayPhone) == digits(name) || phonenum.Same(name, ch.DisplayPhone, rule))
			if ch.State == store.ChannelActive && (ch.ID == name || ch.AccountID == name || sameNumber) {
				return ch, nil
			}
		}
		return nil, fault.New(fault.NotFound, CodeNoChannel, "no active channel "+name+" in this workspace")
	}
	bs, err := st.ListBindings(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		for i := range chs {
			if chs[i].ID == b.ChannelID && chs[i].State == store.ChannelActive {
				return &chs[i], nil
			}
		}
	}
	return nil, fault.New(fault.NotFound, CodeNoChannel, "no active channel is bound to this account")
}

// AutomationTemplate is the template an automation's settings name: its
// name, language (lang when empty) and comma-separated body parameters;
// nil without a name.
func AutomationTemplate(name, language, params, lang string) *channel.Template {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil
	}
	t := &channel.Template{Name: name, Language: strings.TrimSpace(language)}
	if t.Language == "" {
		t.Language = lang
	}
	for _, p := range strings.Split(params, ",") {
		if p = strings.TrimSpace(p); p != "" {
			t.Params = append(t.Params, p)
		}
	}
	return t
}

func digits(v string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, v)
}
