package crm

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Capabilities a provider may have beside Integration, found by a type
// assertion on the registry's entry. They let internal/web show the one
// settings form inside a CRM's own interface, with the CRM's own lists,
// without naming the CRM.

// EmbeddedSettings is a provider whose CRM shows the integration's
// settings page inside its own interface (an iframe), at
// /{type}/settings. The provider proves who opens it; web renders and
// saves the form.
type EmbeddedSettings interface {
	// OpenSettings proves who opens the settings page in r: the CRM's
	// first proof (a one-time ticket) on a GET, else the signed session
	// the page's forms and links carry ("sess": a GET's query, a POST's
	// body only). lang is the language the address asks for, for a
	// session being opened. Refusals are *fault.Error; the session is
	// returned when known even with an error, so the refusal can be
	// worded in its language.
	OpenSettings(r *http.Request, lang string) (*store.Integration, *Session, error)
	// SignSession renews a session for the page's forms and links.
	SignSession(ss *Session) string
	// FrameAncestors is the CSP frame-ancestors source list allowed to
	// frame the integration's pages: the CRM account's own origin.
	FrameAncestors(in *store.Integration) string
}

// StageDirectory is a provider whose bindings put a channel's new records
// into a pipeline and stage chosen from the CRM's own lists.
type StageDirectory interface {
	// EntryStages reads the pipelines and the stages a new record may
	// enter (closing stages left out), now, from the CRM. Refusals are
	// *fault.Error.
	EntryStages(ctx context.Context, in *store.Integration) (*Entry, error)
}

// Entry is where a channel's new records may go in a CRM: the binding's
// mode and record kind for a channel bound from a settings page, and the
// pipelines with their entry stages.
type Entry struct {
	Mode, Entity string
	Pipelines    []Pipeline
}

// Pipeline is one of a CRM's pipelines with the stages a new record may
// enter, in the CRM's order.
type Pipeline struct {
	ID, Name string
	Stages   []Stage
}

// Stage is a pipeline's stage.
type Stage struct {
	ID, Name string
}

// BindChecker is a provider that can check a bind without writing it,
// with exactly Bind's checks: a page that saves several channels at once
// checks every one before changing any.
type BindChecker interface {
	// CheckBind answers what Bind would refuse, changing nothing.
	CheckBind(ctx context.Context, scope store.Scope, integrationID, channelID string, body json.RawMessage) error
}

// BindBody is the admin API's neutral bind request (PUT
// /api/v1/integrations/{id}/channels/{channel_id}): every provider's Bind
// reads these names, so a page can bind through it.
type BindBody struct {
	Mode       string `json:"mode"`
	Entity     string `json:"entity,omitempty"`
	CategoryID string `json:"category_id,omitempty"`
	StageID    string `json:"stage_id,omitempty"`
	routing.BindingPolicy
}
