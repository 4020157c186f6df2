package crm

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

type fakeIntegration struct {
	typ     string
	handled *[]string
}

func (f fakeIntegration) Type() string   { return f.typ }
func (f fakeIntegration) Mount(r Routes) {}
func (f fakeIntegration) Handle(q JobHandlers) {
	*f.handled = append(*f.handled, f.typ)
}
func (f fakeIntegration) Bind(context.Context, store.Scope, string, string, json.RawMessage) (*store.ChannelBinding, error) {
	return nil, nil
}
func (f fakeIntegration) Unbind(context.Context, store.Scope, string, string) error { return nil }

type noQueue struct{}

func (noQueue) Handle(string, queue.Handler) {}

func TestRegistry(t *testing.T) {
	var handled []string
	r := NewRegistry(fakeIntegration{"b", &handled}, fakeIntegration{"a", &handled})
	if in, ok := r.Get("a"); !ok || in.Type() != "a" {
		t.Fatalf("Get(a) = %v, %v", in, ok)
	}
	if _, ok := r.Get("c"); ok {
		t.Fatal("Get(c) found an integration of a type nobody registered")
	}
	r.Handle(noQueue{})
	if len(handled) != 2 || handled[0] != "b" || handled[1] != "a" {
		t.Fatalf("Handle reached %v, want [b a] in registration order", handled)
	}

	var none *Registry
	if _, ok := none.Get("a"); ok || len(none.All()) != 0 {
		t.Fatal("a nil registry must hold nothing")
	}

	defer func() {
		if recover() == nil {
			t.Fatal("two integrations of one type must panic")
		}
	}()
	NewRegistry(fakeIntegration{"a", &handled}, fakeIntegration{"a", &handled})
}
