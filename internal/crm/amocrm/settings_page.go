package amocrm

import (
	"context"
	"net/http"
	"sort"
	"strconv"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/store"
)

// The widget's advanced_settings page is the gateway's one settings form
// (internal/web), shown in an iframe at /amocrm/settings: web renders and
// saves it, amoCRM's part is who opens it and the account's pipelines.
var (
	_ crm.EmbeddedSettings = (*Service)(nil)
	_ crm.StageDirectory   = (*Service)(nil)
	_ crm.BindChecker      = (*Service)(nil)
)

// OpenSettings opens the settings page's session: the widget's ticket on
// the first GET, the signed sess after it.
func (s *Service) OpenSettings(r *http.Request, lang string) (*store.Integration, *crm.Session, error) {
	return s.PageSession(r, PurposeSettings, lang, "")
}

// FrameAncestors lets only the account's own pages frame the settings.
func (s *Service) FrameAncestors(in *store.Integration) string {
	base, err := s.hosts().AccountBase(in.Domain)
	if err != nil {
		return "'none'"
	}
	return base
}

// EntryStages reads the account's pipelines (one API call) with the
// statuses a new lead may enter: archived pipelines and the closing
// statuses (142 won, 143 lost) are left out, as Bind refuses them; the
// unsorted stage too, which takes leads only through amoCRM's own flows.
func (s *Service) EntryStages(ctx context.Context, in *store.Integration) (*crm.Entry, error) {
	ps, err := s.Pipelines(ctx, in)
	if err != nil {
		return nil, err
	}
	ps = append([]Pipeline(nil), ps...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Sort < ps[j].Sort })
	e := &crm.Entry{Mode: ModeCRM, Entity: EntityLead}
	for _, p := range ps {
		if p.IsArchive {
			continue
		}
		sts := append([]Status(nil), p.Statuses...)
		sort.SliceStable(sts, func(i, j int) bool { return sts[i].Sort < sts[j].Sort })
		cp := crm.Pipeline{ID: strconv.Itoa(p.ID), Name: p.Name}
		for _, st := range sts {
			if st.Type == 0 && !st.Closed() {
				cp.Stages = append(cp.Stages, crm.Stage{ID: strconv.Itoa(st.ID), Name: st.Name})
			}
		}
		e.Pipelines = append(e.Pipelines, cp)
	}
	return e, nil
}
