package bitrix24

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/strictjson"
)

// JobActivate switches our connector on (or off) for a binding's line.
const JobActivate = "bitrix24.activate"

// BindRequest binds a channel to a portal. The CRM-neutral policy (name,
// owner, on_repeat, mirror) sits next to Bitrix24's own fields; a PUT
// replaces it whole, so a field left out is back at its default.
type BindRequest struct {
	Mode         string `json:"mode"`
	LineID       string `json:"line_id"`
	Entity       string `json:"entity"`
	CategoryID   string `json:"category_id"`
	StageID      string `json:"stage_id"`
	OperatorName *bool  `json:"operator_name"`
	routing.BindingPolicy
	// keepPolicy keeps the binding's stored policy: the app page has no
	// fields for it, and saving the page must not wipe what the API set.
	keepPolicy bool
}

var idPattern = regexp.MustCompile(`^[0-9]{1,10}$`)
var stagePattern = regexp.MustCompile(`^[A-Za-z0-9_:]{1,50}$`)

// Bind binds a channel of the integration's workspace in Open Lines or
// direct CRM mode; the line is activated from the queue. body is the admin
// API's BindRequest, refused in the API's words when it does not decode.
// The line, pipeline and stage are checked against what the portal offers,
// for the API as for the app page.
func (s *Service) Bind(ctx context.Context, scope store.Scope, integrationID, channelID string, body json.RawMessage) (*store.ChannelBinding, error) {
	var req BindRequest
	if err := strictjson.Decode(body, &req); err != nil {
		return nil, err
	}
	return s.bind(ctx, scope, integrationID, channelID, req, nil)
}

// bind is Bind with the portal's choices when the caller has read them
// already (the app page shows them again on a refusal); nil reads them.
func (s *Service) bind(ctx context.Context, scope store.Scope, integrationID, channelID string, req BindRequest, pc *portalChoices) (*store.ChannelBinding, error) {
	in, err := s.store.GetIntegration(ctx, scope, integrationID)
	if err != nil {
		return nil, err
	}
	if in.Type != Type {
		return nil, fault.New(fault.Invalid, "integration_type", "this is not a Bitrix24 integration")
	}
	ch, err := s.store.GetChannel(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, channelID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, crm.ChannelNotHere(ctx, s.store, scope, in, channelID)
	}
	if err != nil {
		return nil, err
	}
	b := &store.ChannelBinding{WorkspaceID: in.WorkspaceID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: req.Mode}
	switch req.Mode {
	case ModeOpenLines:
		if !idPattern.MatchString(req.LineID) {
			return nil, fault.New(fault.Invalid, "line_id_invalid", "line_id is the Open Line's numeric id")
		}
		if req.Entity != "" || req.CategoryID != "" || req.StageID != "" {
			return nil, fault.New(fault.Invalid, "field_not_allowed", "entity, category_id and stage_id belong to crm mode")
		}
		b.LineID = req.LineID
	case ModeCRM:
		if req.Entity != "lead" && req.Entity != "deal" {
			return nil, fault.New(fault.Invalid, "entity_invalid", `entity must be "lead" or "deal"`)
		}
		if req.LineID != "" {
			return nil, fault.New(fault.Invalid, "field_not_allowed", "line_id belongs to openlines mode")
		}
		if req.CategoryID != "" && (req.Entity != "deal" || !idPattern.MatchString(req.CategoryID)) {
			return nil, fault.New(fault.Invalid, "category_id_invalid", "category_id is a deal pipeline's numeric id")
		}
		if req.StageID != "" && !stagePattern.MatchString(req.StageID) {
			return nil, fault.New(fault.Invalid, "stage_id_invalid", "stage_id is a status code such as NEW or C1:NEW")
		}
		b.Entity, b.CategoryID, b.StageID = req.Entity, req.CategoryID, req.StageID
	default:
		return nil, fault.New(fault.Invalid, "mode_invalid", `mode must be "openlines" or "crm"`)
	}
	policy, err := s.bindPolicy(ctx, in.ID, ch.ID, req)
	if err != nil {
		return nil, err
	}
	// A line or stage the portal does not have would bind without a word
	// and then fail every message; only a portal that can be asked is.
	if routing.Live(in) {
		if pc == nil {
			loaded := s.loadChoices(ctx, in)
			pc = &loaded
		}
		if err := pc.checkChoice(req); err != nil {
			return nil, err
		}
	}
	set := BindingSettings{OperatorName: req.OperatorName != nil && *req.OperatorName}
	raw, _ := json.Marshal(set)
	str := string(raw)
	b.Settings = &str
	policy.Apply(b)
	if err := s.store.PutBinding(ctx, b); err != nil {
		return nil, err
	}
	if err := s.router.Bound(ctx, b); err != nil {
		// Bound; the waiting batches are written at their next look.
		s.log.Error("bitrix24: wake the batches waiting for the channel", "integration_id", b.IntegrationID, "channel_id", b.ChannelID, "err", err)
	}
	if b.Mode == ModeOpenLines {
		err := s.store.Tx(ctx, func(tx *gorm.DB) error {
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobActivate, WorkspaceID: in.WorkspaceID, Lane: ch.ID, Key: "b24line:" + in.ID + ":" + b.LineID,
				Payload: activateJob{IntegrationID: in.ID, ChannelID: ch.ID, LineID: b.LineID, Active: true}})
			return err
		})
		if err != nil {
			return nil, err
		}
		s.msg.Notify()
	}
	return b, nil
}

// bindPolicy is the policy a bind stores: the request's, checked against
// the CRM's users as last read, or for the app page the binding's stored
// one (in openlines mode its name only). A kept policy is not checked
// again: a user switched off since must not stop the page from saving,
// and is skipped when owners are picked.
func (s *Service) bindPolicy(ctx context.Context, integrationID, channelID string, req BindRequest) (routing.BindingPolicy, error) {
	if req.keepPolicy {
		cur, err := s.store.BindingOf(ctx, integrationID, channelID)
		if errors.Is(err, store.ErrNotFound) {
			return routing.BindingPolicy{}, nil
		}
		if err != nil {
			return routing.BindingPolicy{}, err
		}
		p, err := routing.PolicyOf(cur)
		if err != nil || req.Mode != ModeCRM {
			// An unreadable stored policy is dropped rather than kept
			// broken; the name survives either way.
			return routing.BindingPolicy{Name: cur.Name}, nil
		}
		return p, nil
	}
	var users []store.CRMUser
	if req.Owner != nil {
		var err error
		if users, err = s.store.CRMUsers(ctx, integrationID); err != nil {
			return routing.BindingPolicy{}, err
		}
	}
	if err := routing.ValidateBinding(req.BindingPolicy, req.Mode == ModeCRM, integrationID, users); err != nil {
		return routing.BindingPolicy{}, err
	}
	return req.BindingPolicy, nil
}

// Unbind removes a binding; the connector is switched off on its line
// when no other channel of that type uses the line.
func (s *Service) Unbind(ctx context.Context, scope store.Scope, integrationID, channelID string) error {
	in, b, err := crm.Unbind(ctx, s.store, s.log, scope, integrationID, channelID)
	if err != nil {
		return err
	}
	if b.Mode != ModeOpenLines || !routing.Live(in) {
		return nil
	}
	err = s.store.Tx(ctx, func(tx *gorm.DB) error {
		_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobActivate, WorkspaceID: in.WorkspaceID, Lane: channelID, Key: "b24line:" + in.ID + ":" + b.LineID,
			Payload: activateJob{IntegrationID: in.ID, ChannelID: channelID, LineID: b.LineID, Active: false}})
		return err
	})
	s.msg.Notify()
	return err
}

type activateJob struct {
	IntegrationID string `json:"integration_id"`
	ChannelID     string `json:"channel_id"`
	LineID        string `json:"line_id"`
	Active        bool   `json:"active"`
}

func (s *Service) handleActivate(ctx context.Context, j *queue.Job) error {
	var p activateJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	in, err := s.store.GetIntegration(ctx, store.All, p.IntegrationID)
	if err != nil || in.State == store.IntegrationUninstalled {
		return nil
	}
	if !routing.Live(in) {
		return s.classify(ErrNeedsReauth)
	}
	ch, err := s.store.GetChannel(ctx, store.All, p.ChannelID)
	if err != nil {
		return queue.Permanent(err)
	}
	connector := s.ConnectorID(channel.Type(ch.Type))
	if !p.Active {
		// Keep the connector on while another channel of this type uses the line.
		bs, err := s.store.ListBindings(ctx, in.ID)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if b.Mode == ModeOpenLines && b.LineID == p.LineID {
				if other, err := s.store.GetChannel(ctx, store.All, b.ChannelID); err == nil && other.Type == ch.Type {
					return nil
				}
			}
		}
		return s.classify(s.client.Call(ctx, in.ID, "imconnector.activate", map[string]any{"CONNECTOR": connector, "LINE": p.LineID, "ACTIVE": "0"}, nil))
	}
	res, err := s.client.Batch(ctx, in.ID, []BatchCommand{
		{Name: "activate", Method: "imconnector.activate", Params: map[string]any{"CONNECTOR": connector, "LINE": p.LineID, "ACTIVE": "1"}},
		{Name: "data", Method: "imconnector.connector.data.set", Params: map[string]any{"CONNECTOR": connector, "LINE": p.LineID,
			"DATA": map[string]any{"ID": ch.AccountID, "NAME": ch.Name + " " + ch.DisplayPhone, "URL": s.url("/"), "URL_IM": s.url("/")}}},
		// Leads and deals the line's CRM tracker creates carry the channel
		// as their source, as in direct CRM mode.
		{Name: "source", Method: "imopenlines.config.update", Params: map[string]any{"CONFIG_ID": p.LineID,
			"PARAMS": map[string]any{"CRM_SOURCE": crmSources[channel.Type(ch.Type)]}}},
	}, false)
	if err != nil {
		return s.classify(err)
	}
	for name, e := range res.Errors {
		if name == "source" {
			// Labelling only: the line works without it.
			s.log.Warn("bitrix24: could not set the line's CRM source", "integration_id", in.ID, "line", p.LineID, "err", e)
			continue
		}
		return fmt.Errorf("bitrix24: activate line %s: %s: %w", p.LineID, name, e)
	}
	s.log.Info("bitrix24 line activated", "integration_id", in.ID, "line", p.LineID, "channel_id", ch.ID)
	return nil
}
