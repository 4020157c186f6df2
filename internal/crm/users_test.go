package crm

import (
	"context"
	"testing"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
)

// A provider that cannot list users, and a type nobody serves, are a
// 409 refresh_unsupported, not a crash or a silent empty list.
func TestRefreshUsersUnsupported(t *testing.T) {
	var handled []string
	r := NewRegistry(fakeIntegration{"a", &handled})
	for _, typ := range []string{"a", "nobody"} {
		_, err := r.RefreshUsers(context.Background(), nil, &store.Integration{ID: "i", Type: typ})
		if fe := fault.As(err); fe == nil || fe.Code != CodeNoUserDirectory || fe.Kind != fault.Conflict {
			t.Errorf("type %s: %v", typ, err)
		}
	}
	var none *Registry
	if _, err := none.RefreshUsers(context.Background(), nil, &store.Integration{Type: "a"}); fault.CodeOf(err) != CodeNoUserDirectory {
		t.Errorf("nil registry: %v", err)
	}
}
