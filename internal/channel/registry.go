package channel

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Provider is everything the gateway knows about one messenger.
type Provider struct {
	Type Type
	// WebhookObject is the value of the top-level "object" field that Meta
	// sets on this messenger's webhooks ("whatsapp_business_account",
	// "instagram").
	WebhookObject string
	Parser        Parser
	Sender        Sender
	Fetcher       MediaFetcher
	// Profiles is optional: nil for messengers whose webhooks name the
	// customer.
	Profiles ProfileFetcher
	// Verifier proves a token's hold on an account before a channel is
	// created or re-activated for it.
	Verifier AccountVerifier
	// Media is optional: what the messenger accepts for each outbound
	// media kind, checked on uploads before they are queued. nil means no
	// check (Instagram, for now), and the messenger alone decides.
	Media MediaRules
	// Templates is optional: nil for messengers without message templates
	// (Instagram).
	Templates TemplateLister
	// Reads is optional: nil for messengers the gateway cannot tell that
	// the business read a customer's message.
	Reads ReadMarker
}

// Registry holds the providers wired at start-up. It is built once in main
// and passed down; there is no package-level registry.
type Registry struct {
	byType   map[Type]*Provider
	byObject map[string]*Provider
}

func NewRegistry() *Registry {
	return &Registry{byType: map[Type]*Provider{}, byObject: map[string]*Provider{}}
}

// Register adds a provider; registering one type twice is a wiring bug.
func (r *Registry) Register(p *Provider) {
	if _, dup := r.byType[p.Type]; dup {
		panic(fmt.Sprintf("channel: provider %q registered twice", p.Type))
	}
	r.byType[p.Type] = p
	r.byObject[p.WebhookObject] = p
}

func (r *Registry) ByType(t Type) (*Provider, bool) {
	p, ok := r.byType[t]
	return p, ok
}

func (r *Registry) Types() []Type {
	out := make([]Type, 0, len(r.byType))
	for t := range r.byType {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ErrUnknownObject is returned by ParseWebhook for a webhook whose "object"
// names no registered messenger.
type ErrUnknownObject struct{ Object string }

func (e *ErrUnknownObject) Error() string {
	return fmt.Sprintf("channel: webhook object %q is not handled", e.Object)
}

// ParseWebhook picks the provider by the payload's "object" field and
// parses the body with it.
func (r *Registry) ParseWebhook(body []byte) (*Batch, error) {
	var head struct {
		Object string `json:"object"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, fmt.Errorf("channel: webhook is not a JSON object: %w", err)
	}
	p, ok := r.byObject[head.Object]
	if !ok {
		return nil, &ErrUnknownObject{Object: head.Object}
	}
	return p.Parser.Parse(body)
}
