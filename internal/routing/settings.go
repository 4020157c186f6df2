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

// Bounds of notify_after_seconds: under half a minute the escalation
// fires before anyone could answer; over a day it is no escalation.
const (
	MinNotifyAfterSeconds = 30
	MaxNotifyAfterSeconds = 86400
)

// Access modes of an integration (item 4).
const (
	// AccessModeOpen is an integration whose access was never configured:
	// every CRM user may read and send on every channel, so that an
	// upgrade does not lock anyone out.
	AccessModeOpen = "open"
	// AccessModeMatrix applies the access matrix: no row is "none". Any
	// write of the matrix switches to it, even one that leaves it empty
	// ("remove all" must not open everything).
	AccessModeMatrix = "matrix"
)

// Error codes of invalid integration settings.
const (
	CodeVisibility  = "visibility_invalid"
	CodeChatAdmin   = "chat_admin_user_unknown"
	CodeNotifyAfter = "notify_after_seconds_out_of_range"
	CodeAccessMode  = "access_mode_invalid"
)

// IntegrationSettings are the routing core's per-integration settings
// that are not per channel, kept as JSON in integrations.settings.
type IntegrationSettings struct {
	Visibility         string `json:"visibility"`
	ChatAdminUserID    string `json:"chat_admin_user_id,omitempty"`
	NotifyAfterSeconds int    `json:"notify_after_seconds"`
	// AccessMode is AccessModeOpen or AccessModeMatrix; "" (never set)
	// reads as open.
	AccessMode string `json:"access_mode,omitempty"`
}

// Validate checks the settings; known reports whether a user id is one
// the CRM listed (active or not: a GET then PUT must not fail because a
// refresh deactivated the chat admin meanwhile). The first problem is a
// *PolicyError naming the field.
func (s IntegrationSettings) Validate(known func(userID string) bool) error {
	switch s.Visibility {
	case VisibilityAll, VisibilityOwn:
	default:
		return &PolicyError{"visibility", CodeVisibility, fmt.Sprintf("visibility %q is not %q or %q", s.Visibility, VisibilityAll, VisibilityOwn)}
	}
	if s.ChatAdminUserID != "" && (known == nil || !known(s.ChatAdminUserID)) {
		return &PolicyError{"chat_admin_user_id", CodeChatAdmin,
			fmt.Sprintf("chat_admin_user_id %q is not a user of this CRM (refresh the users first)", s.ChatAdminUserID)}
	}
	if s.NotifyAfterSeconds < MinNotifyAfterSeconds || s.NotifyAfterSeconds > MaxNotifyAfterSeconds {
		return &PolicyError{"notify_after_seconds", CodeNotifyAfter,
			fmt.Sprintf("notify_after_seconds must be %d to %d", MinNotifyAfterSeconds, MaxNotifyAfterSeconds)}
	}
	switch s.AccessMode {
	case "", AccessModeOpen, AccessModeMatrix:
	default:
		return &PolicyError{"access_mode", CodeAccessMode, fmt.Sprintf("access_mode %q is not %q or %q", s.AccessMode, AccessModeOpen, AccessModeMatrix)}
	}
	return nil
}

// Encode is the settings as integrations.settings stores them.
func (s IntegrationSettings) Encode() string {
	raw, err := json.Marshal(s)
	if err != nil {
		// A struct of strings and ints always marshals.
		panic(err)
	}
	return string(raw)
}

// SettingsOf reads an integration's settings with defaults for what was
// never set. A stored value that does not decode is an error, not the
// defaults: an admin's choice must not silently revert.
func SettingsOf(in *store.Integration) (IntegrationSettings, error) {
	s := IntegrationSettings{Visibility: VisibilityAll, NotifyAfterSeconds: DefaultNotifyAfterSeconds, AccessMode: AccessModeOpen}
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
	if s.AccessMode == "" {
		s.AccessMode = AccessModeOpen
	}
	return s, nil
}
