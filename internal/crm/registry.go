package crm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Integration is one CRM provider as the rest of the gateway sees it: it
// mounts its own HTTP routes, binds and unbinds channels, and handles its
// queue jobs, so that internal/web and internal/app's wiring need not know
// which CRM is on the other side.
type Integration interface {
	// Type is the store.Integration.Type value of this provider's
	// integrations; the registry finds the provider by it.
	Type() string
	// Mount adds the provider's HTTP routes (install, events, pages...).
	Mount(r Routes)
	// Handle registers the provider's queue job handlers.
	Handle(q JobHandlers)
	// Bind binds a channel to the integration with the provider's own
	// request body (the admin API's PUT, decoded by the provider since
	// only it knows the fields). Refusals are *fault.Error.
	Bind(ctx context.Context, scope store.Scope, integrationID, channelID string, body json.RawMessage) (*store.ChannelBinding, error)
	// Unbind removes the channel's binding. Refusals are *fault.Error.
	Unbind(ctx context.Context, scope store.Scope, integrationID, channelID string) error
}

// Uninstaller is a provider whose integration, deleted on the gateway's
// side (the settings page's Delete), needs what its CRM's own uninstall
// does beyond the store's uninstall, e.g. a chat channel disconnected;
// web calls it instead of store.UninstallIntegration when the provider
// has it. The integration keeps its users and settings for a reinstall.
type Uninstaller interface {
	// Uninstall uninstalls the integration for reason (kept as its state
	// reason). Refusals are *fault.Error.
	Uninstall(ctx context.Context, integrationID, reason string) error
}

// Routes is where an integration mounts its HTTP handlers; internal/web
// implements it. Providers stay on net/http and never see the router, and
// web keeps authentication and the API's error answers to itself.
type Routes interface {
	// Public mounts a handler that authenticates its caller itself: a
	// portal's signed form, a page session, an OAuth state.
	Public(method, path string, h http.HandlerFunc)
	// Workspace mounts a handler behind the admin API's bearer token. Web
	// decides which workspace the call acts for (the token's own; for the
	// operator the workspace_id query parameter or the default one) and
	// answers a returned error as the admin API answers its own.
	Workspace(method, path string, h WorkspaceHandler)
}

// WorkspaceHandler serves a route of Routes.Workspace for workspaceID. It
// writes the response itself on success; a returned error (a *fault.Error
// for refusals) is written by web, and then nothing must have been written.
type WorkspaceHandler func(w http.ResponseWriter, r *http.Request, workspaceID string) error

// JobHandlers is the queue as an integration registers on it.
type JobHandlers interface {
	Handle(kind string, h queue.Handler)
}

// OutageAware wraps the queue an integration registers its jobs on so
// that each of them waits out its CRM's outage without spending attempts
// (routing.WaitingForCRM): an error Classify marked
// routing.ErrUnavailable snoozes the job.
func OutageAware(q JobHandlers) JobHandlers { return outageAware{q} }

type outageAware struct{ q JobHandlers }

func (o outageAware) Handle(kind string, h queue.Handler) {
	o.q.Handle(kind, routing.WaitingForCRM(h))
}

// Registry holds the integrations by type. It is filled once at start and
// only read afterwards, so it needs no lock.
type Registry struct {
	byType map[string]Integration
	all    []Integration
}

// NewRegistry holds the given integrations; two with one type are a wiring
// mistake and panic.
func NewRegistry(ins ...Integration) *Registry {
	r := &Registry{byType: map[string]Integration{}}
	for _, in := range ins {
		if _, dup := r.byType[in.Type()]; dup {
			panic(fmt.Sprintf("crm: integration type %q registered twice", in.Type()))
		}
		r.byType[in.Type()] = in
		r.all = append(r.all, in)
	}
	return r
}

// Get is the provider of integrations of type typ. A nil registry holds
// none.
func (r *Registry) Get(typ string) (Integration, bool) {
	if r == nil {
		return nil, false
	}
	in, ok := r.byType[typ]
	return in, ok
}

// All are the integrations in the order they were given, so routes mount
// in a stable order.
func (r *Registry) All() []Integration {
	if r == nil {
		return nil
	}
	return r.all
}

// Handle registers every integration's queue handlers.
func (r *Registry) Handle(q JobHandlers) {
	for _, in := range r.All() {
		in.Handle(q)
	}
}

// Named is how people call a provider and its records; pages that name no
// provider ask it (optional: without it a page shows the type id and
// calls records deals).
type Named interface {
	// DisplayName is the CRM's product name ("amoCRM").
	DisplayName() string
	// RecordWords says which words name the records a binding of entity
	// creates, in lang: "lead" or "deal" (amoCRM's leads are "сделки" in
	// Russian and "leads" in English).
	RecordWords(lang, entity string) string
}

// DisplayName is the provider's product name for integrations of typ, or
// typ itself when the provider gives none.
func (r *Registry) DisplayName(typ string) string {
	if p, ok := r.Get(typ); ok {
		if n, ok := p.(Named); ok {
			return n.DisplayName()
		}
	}
	return typ
}

// RecordWords is the provider's word set ("lead" or "deal") for records
// of entity in lang; "deal" when the provider says nothing.
func (r *Registry) RecordWords(typ, lang, entity string) string {
	if p, ok := r.Get(typ); ok {
		if n, ok := p.(Named); ok {
			return n.RecordWords(lang, entity)
		}
	}
	return "deal"
}
