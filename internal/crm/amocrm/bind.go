package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/strictjson"
)

// ModeCRM is the only binding mode of amoCRM: customers' messages become
// leads (amoCRM has no Open Lines).
const ModeCRM = "crm"

// EntityLead is the record every amoCRM binding creates.
const EntityLead = "lead"

// BindRequest binds a channel to an account: the pipeline (category_id)
// and status (stage_id) new leads enter, with the CRM-neutral policy
// (name, owner, on_repeat, mirror) beside them. The field names are
// Bitrix24's CRM mode's, so one admin tool binds both. A PUT replaces the
// binding whole.
type BindRequest struct {
	Mode string `json:"mode"`
	// Entity may be left out; only "lead" is accepted.
	Entity string `json:"entity"`
	// CategoryID is the pipeline id; empty is the account's main pipeline
	// (or the one holding StageID).
	CategoryID string `json:"category_id"`
	// StageID is the status id new leads get; empty is the pipeline's
	// first open status.
	StageID string `json:"stage_id"`
	routing.BindingPolicy
}

var numericID = regexp.MustCompile(`^[1-9][0-9]{0,11}$`)

func invalid(field, code, message string) *fault.Error {
	return &fault.Error{Kind: fault.Invalid, Code: code, Field: field, Message: field + ": " + message}
}

// Bind binds a channel of the integration's workspace. The pipeline and
// status are checked against the account as it is now (one call), the
// policy against the users as last read; a refusal is a named 422 and
// stores nothing. The binding keeps the ids it resolved, so the connector
// never has to guess a default.
func (s *Service) Bind(ctx context.Context, scope store.Scope, integrationID, channelID string, body json.RawMessage) (*store.ChannelBinding, error) {
	b, err := s.prepareBind(ctx, scope, integrationID, channelID, body)
	if err != nil {
		return nil, err
	}
	if err := s.store.PutBinding(ctx, b); err != nil {
		return nil, err
	}
	if err := s.router.Bound(ctx, b); err != nil {
		// Bound; the waiting batches are written at their next look.
		s.log.Error("amocrm: wake the batches waiting for the channel", "integration_id", b.IntegrationID, "channel_id", b.ChannelID, "err", err)
	}
	return b, nil
}

// CheckBind answers what Bind would refuse, with Bind's own checks,
// writing nothing: the settings page checks every channel before it
// changes any.
func (s *Service) CheckBind(ctx context.Context, scope store.Scope, integrationID, channelID string, body json.RawMessage) error {
	_, err := s.prepareBind(ctx, scope, integrationID, channelID, body)
	return err
}

// prepareBind checks a bind request and builds the binding it stores.
func (s *Service) prepareBind(ctx context.Context, scope store.Scope, integrationID, channelID string, body json.RawMessage) (*store.ChannelBinding, error) {
	if err := s.configured(); err != nil {
		return nil, err
	}
	var req BindRequest
	if err := strictjson.Decode(body, &req); err != nil {
		return nil, err
	}
	in, err := s.store.GetIntegration(ctx, scope, integrationID)
	if err != nil {
		return nil, err
	}
	ch, err := s.store.GetChannel(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, channelID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, crm.ChannelNotHere(ctx, s.store, scope, in, channelID)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case req.Mode != ModeCRM:
		return nil, invalid("mode", "mode_invalid", `amoCRM bindings are "crm": messages become leads`)
	case req.Entity != "" && req.Entity != EntityLead:
		return nil, invalid("entity", "entity_invalid", `amoCRM bindings create leads: leave entity out or give "lead"`)
	case req.CategoryID != "" && !numericID.MatchString(req.CategoryID):
		return nil, invalid("category_id", "category_id_invalid", "the pipeline's numeric id")
	case req.StageID != "" && !numericID.MatchString(req.StageID):
		return nil, invalid("stage_id", "stage_id_invalid", "the status's numeric id")
	}
	var users []store.CRMUser
	if req.Owner != nil {
		if users, err = s.store.CRMUsers(ctx, in.ID); err != nil {
			return nil, err
		}
	}
	if err := routing.ValidateBinding(req.BindingPolicy, true, in.ID, users); err != nil {
		return nil, err
	}
	pipelines, err := s.Pipelines(ctx, in)
	if err != nil {
		return nil, err
	}
	pipeline, status, err := choose(pipelines, req.CategoryID, req.StageID)
	if err != nil {
		return nil, err
	}
	b := &store.ChannelBinding{WorkspaceID: in.WorkspaceID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: ModeCRM, Entity: EntityLead,
		CategoryID: strconv.Itoa(pipeline), StageID: strconv.Itoa(status)}
	req.BindingPolicy.Apply(b)
	return b, nil
}

// choose resolves the pipeline and entry status of a binding against the
// account's pipelines: a status must belong to the pipeline, must not be
// a closing one (142 won, 143 lost: a lead entering there is closed at
// birth), and an archived pipeline takes no new leads.
func choose(pipelines []Pipeline, categoryID, stageID string) (pipeline, status int, err error) {
	byID := map[int]*Pipeline{}
	for i := range pipelines {
		byID[pipelines[i].ID] = &pipelines[i]
	}
	stage, _ := strconv.Atoi(stageID)
	if stage == StatusWon || stage == StatusLost {
		return 0, 0, invalid("stage_id", "stage_closed", fmt.Sprintf("status %d closes a lead (won or lost); new leads need an open status", stage))
	}
	var p *Pipeline
	switch {
	case categoryID != "":
		id, _ := strconv.Atoi(categoryID)
		if p = byID[id]; p == nil {
			return 0, 0, invalid("category_id", "category_unknown", fmt.Sprintf("the account has no pipeline %s", categoryID))
		}
	case stage != 0:
		for i := range pipelines {
			if hasStatus(&pipelines[i], stage) {
				p = &pipelines[i]
				break
			}
		}
		if p == nil {
			return 0, 0, invalid("stage_id", "stage_unknown", fmt.Sprintf("the account has no status %s", stageID))
		}
	default:
		for i := range pipelines {
			if pipelines[i].IsMain && !pipelines[i].IsArchive {
				p = &pipelines[i]
			}
		}
		if p == nil {
			for i := range pipelines {
				if !pipelines[i].IsArchive {
					p = &pipelines[i]
					break
				}
			}
		}
		if p == nil {
			return 0, 0, invalid("category_id", "category_unknown", "the account has no pipeline to put leads in")
		}
	}
	if p.IsArchive {
		return 0, 0, invalid("category_id", "category_archived", fmt.Sprintf("pipeline %d is archived", p.ID))
	}
	if stage != 0 {
		if !hasStatus(p, stage) {
			return 0, 0, invalid("stage_id", "stage_unknown", fmt.Sprintf("status %s is not in pipeline %d", stageID, p.ID))
		}
		return p.ID, stage, nil
	}
	first := firstOpenStatus(p)
	if first == 0 {
		return 0, 0, invalid("stage_id", "stage_unknown", fmt.Sprintf("pipeline %d has no open status; give stage_id", p.ID))
	}
	return p.ID, first, nil
}

func hasStatus(p *Pipeline, id int) bool {
	for _, s := range p.Statuses {
		if s.ID == id {
			return true
		}
	}
	return false
}

// firstOpenStatus is the pipeline's first regular (type 0) status by
// sort: the unsorted stage takes leads only through amoCRM's own incoming
// flows (contract §2.7).
func firstOpenStatus(p *Pipeline) int {
	sts := append([]Status(nil), p.Statuses...)
	sort.SliceStable(sts, func(i, j int) bool { return sts[i].Sort < sts[j].Sort })
	for _, s := range sts {
		if s.Type == 0 && !s.Closed() {
			return s.ID
		}
	}
	return 0
}

// Unbind removes a channel's binding; nothing in amoCRM needs undoing.
func (s *Service) Unbind(ctx context.Context, scope store.Scope, integrationID, channelID string) error {
	_, _, err := crm.Unbind(ctx, s.store, s.log, scope, integrationID, channelID)
	return err
}
