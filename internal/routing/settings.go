package routing

import (
	"encoding/json"
	"fmt"

	"github.com/switchboard/switchboard/internal/store"
)

// Visibility rules of an integration (item 5).
const (
	// VisibilityAll lets every user with access to a channel see all of
	// its dialogs.
	VisibilityAll = "all"
	// VisibilityOwn shows a user their own and unassigned dialogs only;
	// the chat admin still sees all.
	VisibilityOwn = "own"
)

// DefaultNotifyAfterSeconds is how long a customer waits before everyone
// with access to the channel is told.
const DefaultNotifyAfterSeconds = 300

// IntegrationSettings are the routing core's per-integration settings
// that are not per channel, kept as JSON in integrations.settings.
type IntegrationSettings struct {
	Visibility         string `json:"visibility"`
	ChatAdminUserID    string `json:"chat_admin_user_id,omitempty"`
	NotifyAfterSeconds int    `json:"notify_after_seconds"`
}

// SettingsOf reads an integration's settings with defaults for what was
// never set. A stored value that does not decode is an error, not the
// defaults: an admin's choice must not silently revert.
func SettingsOf(in *store.Integration) (IntegrationSettings, error) {
	s := IntegrationSettings{Visibility: VisibilityAll, NotifyAfterSeconds: DefaultNotifyAfterSeconds}
	if in.Settings == nil || *in.Settings == "" {
		return s, nil
	}
	if err := json.Unmarshal([]byte(*in.Settings), &s); err != nil {
		return s, fmt.Errorf("routing: integration %s settings: %w", in.ID, err)
	}
	if s.Visibility == "" {
		s.Visibility = VisibilityAll
	}
	if s.NotifyAfterSeconds == 0 {
		s.NotifyAfterSeconds = DefaultNotifyAfterSeconds
	}
	return s, nil
}
