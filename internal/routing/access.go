package routing

import (
	"fmt"
	"slices"

	"github.com/switchboard/switchboard/internal/store"
)

// Error codes of an invalid access matrix or bulk change (item 4).
const (
	CodeAccessUser       = "access_user_unknown"
	CodeAccessDuplicate  = "access_user_duplicate"
	CodeAccessLevel      = "access_level_invalid"
	CodeChannelNotBound  = "access_channel_not_bound"
	CodeDefaultNotSend   = "access_default_not_send"
	CodeBulkOp           = "bulk_op_invalid"
	CodeBulkLevel        = "bulk_level_invalid"
	CodeAccessModeAccess = "access_mode_conflict"
)

// Bulk operations on the access matrix.
const (
	// BulkAddAll gives every active user at least the level on the channel
	// (or on every bound channel); nobody loses a higher level.
	BulkAddAll = "add_all"
	// BulkRemoveAll takes every user's access to the channel (or every
	// access) away.
	BulkRemoveAll = "remove_all"
)

// UserAccess is one user's row of the access matrix as the API reads and
// writes it: the level per channel (a channel left out is "none") and the
// user's default outbound channel.
type UserAccess struct {
	UserID           string            `json:"user_id"`
	Channels         map[string]string `json:"channels"`
	DefaultChannelID string            `json:"default_channel_id,omitempty"`
}

// AccessContext is what an access matrix is checked against: the CRM's
// users as last read (inactive ones included: they may keep their rows,
// so a re-activated user gets their access back and a GET then PUT does
// not fail after a refresh) and the channels bound to the integration.
type AccessContext struct {
	Users []store.CRMUser
	Bound []string
}

func (c AccessContext) known(id string) bool {
	return slices.ContainsFunc(c.Users, func(u store.CRMUser) bool { return u.UserID == id })
}

func (c AccessContext) bound(id string) bool { return slices.Contains(c.Bound, id) }

// CanRead is whether a level lets a user see a channel's conversations.
func CanRead(level string) bool { return level == store.AccessRead || level == store.AccessSend }

// CanSend is whether a level lets a user write to the channel's customers.
func CanSend(level string) bool { return level == store.AccessSend }

// CanSee is the visibility rule (item 5) for one dialog: with "own" a user
// sees their own and unassigned dialogs, and the chat admin sees all.
// Access to the dialog's channel is checked apart (Gate does both).
func CanSee(s IntegrationSettings, userID, dialogOwner string) bool {
	if s.Visibility != VisibilityOwn {
		return true
	}
	return dialogOwner == "" || dialogOwner == userID || (s.ChatAdminUserID != "" && s.ChatAdminUserID == userID)
}

// ValidateAccess checks a whole matrix as the API received it and turns it
// into the store's rows with the default-channel rule applied: a default
// must be a channel the user can send from, and a user who can send from
// exactly one channel and named no default gets that one. The first
// problem is a *PolicyError naming the field.
func ValidateAccess(rows []UserAccess, c AccessContext) ([]store.ChannelAccess, error) {
	seen := map[string]int{}
	var out []store.ChannelAccess
	for i, r := range rows {
		field := fmt.Sprintf("access[%d]", i)
		if !c.known(r.UserID) {
			return nil, &PolicyError{field + ".user_id", CodeAccessUser, fmt.Sprintf("user %q is not a user of this CRM (refresh the users first)", r.UserID)}
		}
		if j, dup := seen[r.UserID]; dup {
			return nil, &PolicyError{field + ".user_id", CodeAccessDuplicate, fmt.Sprintf("user %q is already access[%d]", r.UserID, j)}
		}
		seen[r.UserID] = i
		chs := make([]string, 0, len(r.Channels))
		for ch := range r.Channels {
			chs = append(chs, ch)
		}
		slices.Sort(chs) // the first problem named is the same every time
		for _, ch := range chs {
			lv := r.Channels[ch]
			cf := fmt.Sprintf("%s.channels[%q]", field, ch)
			switch lv {
			case store.AccessNone, store.AccessRead, store.AccessSend:
			default:
				return nil, &PolicyError{cf, CodeAccessLevel, fmt.Sprintf("level %q is not %q, %q or %q", lv, store.AccessNone, store.AccessRead, store.AccessSend)}
			}
			if !c.bound(ch) {
				return nil, &PolicyError{cf, CodeChannelNotBound, fmt.Sprintf("channel %q is not bound to this integration", ch)}
			}
		}
		def, err := defaultOf(r.Channels, r.DefaultChannelID)
		if err != nil {
			return nil, &PolicyError{field + ".default_channel_id", CodeDefaultNotSend, err.Error()}
		}
		for _, ch := range chs {
			if lv := r.Channels[ch]; lv != store.AccessNone {
				out = append(out, store.ChannelAccess{UserID: r.UserID, ChannelID: ch, Level: lv, IsDefault: ch == def})
			}
		}
	}
	return out, nil
}

// defaultOf applies the default-channel rule to one user's levels: want
// (may be "") must be a channel with send; without one, the single send
// channel is the default.
func defaultOf(levels map[string]string, want string) (string, error) {
	if want != "" {
		if !CanSend(levels[want]) {
			return "", fmt.Errorf("default channel %q is not one the user can send from", want)
		}
		return want, nil
	}
	var sends []string
	for ch, lv := range levels {
		if CanSend(lv) {
			sends = append(sends, ch)
		}
	}
	if len(sends) == 1 {
		return sends[0], nil
	}
	return "", nil
}

// AccessView groups the store's rows per user for the API, users in id
// order.
func AccessView(rows []store.ChannelAccess) []UserAccess {
	out := []UserAccess{}
	idx := map[string]int{}
	for _, r := range rows {
		i, ok := idx[r.UserID]
		if !ok {
			i = len(out)
			idx[r.UserID] = i
			out = append(out, UserAccess{UserID: r.UserID, Channels: map[string]string{}})
		}
		out[i].Channels[r.ChannelID] = r.Level
		if r.IsDefault {
			out[i].DefaultChannelID = r.ChannelID
		}
	}
	slices.SortFunc(out, func(a, b UserAccess) int {
		switch {
		case a.UserID < b.UserID:
			return -1
		case a.UserID > b.UserID:
			return 1
		}
		return 0
	})
	return out
}

// BulkAccess is a change to the whole matrix or to one channel's column.
type BulkAccess struct {
	Op string `json:"op"`
	// ChannelID "" means every channel bound to the integration.
	ChannelID string `json:"channel_id,omitempty"`
	// Level is what add_all gives (read or send); remove_all takes none.
	Level string `json:"level,omitempty"`
}

// Apply returns the matrix cur with the change made, defaults kept where
// still valid (a default on a channel that lost send is cleared; a user
// left with one send channel gets it as default). add_all reaches the
// active users only: a deactivated user is never given access.
func (b BulkAccess) Apply(cur []store.ChannelAccess, c AccessContext) ([]store.ChannelAccess, error) {
	switch b.Op {
	case BulkAddAll:
		if b.Level != store.AccessRead && b.Level != store.AccessSend {
			return nil, &PolicyError{"level", CodeBulkLevel, fmt.Sprintf("add_all needs level %q or %q", store.AccessRead, store.AccessSend)}
		}
	case BulkRemoveAll:
		if b.Level != "" {
			return nil, &PolicyError{"level", CodeBulkLevel, "remove_all takes no level"}
		}
	default:
		return nil, &PolicyError{"op", CodeBulkOp, fmt.Sprintf("op %q is not %q or %q", b.Op, BulkAddAll, BulkRemoveAll)}
	}
	chs := c.Bound
	if b.ChannelID != "" {
		if !c.bound(b.ChannelID) {
			return nil, &PolicyError{"channel_id", CodeChannelNotBound, fmt.Sprintf("channel %q is not bound to this integration", b.ChannelID)}
		}
		chs = []string{b.ChannelID}
	}
	levels := map[string]map[string]string{}
	defaults := map[string]string{}
	for _, r := range cur {
		if levels[r.UserID] == nil {
			levels[r.UserID] = map[string]string{}
		}
		levels[r.UserID][r.ChannelID] = r.Level
		if r.IsDefault {
			defaults[r.UserID] = r.ChannelID
		}
	}
	switch b.Op {
	case BulkAddAll:
		for _, u := range c.Users {
			if !u.Active {
				continue
			}
			if levels[u.UserID] == nil {
				levels[u.UserID] = map[string]string{}
			}
			for _, ch := range chs {
				if !CanSend(levels[u.UserID][ch]) {
					levels[u.UserID][ch] = b.Level
				}
			}
		}
	case BulkRemoveAll:
		for _, lv := range levels {
			for _, ch := range chs {
				delete(lv, ch)
			}
		}
	}
	users := make([]string, 0, len(levels))
	for u := range levels {
		users = append(users, u)
	}
	slices.Sort(users)
	var out []store.ChannelAccess
	for _, u := range users {
		def := defaults[u]
		if !CanSend(levels[u][def]) {
			def = ""
		}
		def, _ = defaultOf(levels[u], def) // def is "" or a send channel: no error
		chsOf := make([]string, 0, len(levels[u]))
		for ch := range levels[u] {
			chsOf = append(chsOf, ch)
		}
		slices.Sort(chsOf)
		for _, ch := range chsOf {
			out = append(out, store.ChannelAccess{UserID: u, ChannelID: ch, Level: levels[u][ch], IsDefault: ch == def})
		}
	}
	return out, nil
}

// Gate answers what one CRM user may see and do in one integration: the
// access matrix (or everything while the integration's access is open),
// then the visibility rule. A CRM's administrator passes everything: they
// can rebind the integration's channels anyway, so restricting them would
// protect nothing and could strand an unconfigured portal.
type Gate struct {
	settings IntegrationSettings
	userID   string
	admin    bool
	open     bool
	levels   map[string]string
}

// AccessOpen is whether the integration's access is still open (never
// configured: everyone may read and send), given how many matrix rows it
// has. Whoever asks "who has access to this channel" (the unanswered
// escalation) takes every active user then, not store.UsersWithAccess,
// which lists matrix rows only.
func AccessOpen(s IntegrationSettings, rows int) bool {
	return s.AccessMode != AccessModeMatrix && rows == 0
}

// NewGate builds the gate of userID from the integration's settings and
// its whole matrix. The matrix applies once the settings say so or any row
// exists; before that everyone may send (upgrades lock nobody out).
func NewGate(s IntegrationSettings, matrix []store.ChannelAccess, userID string, admin bool) Gate {
	g := Gate{settings: s, userID: userID, admin: admin, open: AccessOpen(s, len(matrix)), levels: map[string]string{}}
	for _, r := range matrix {
		if r.UserID == userID {
			g.levels[r.ChannelID] = r.Level
		}
	}
	return g
}

// Level is the user's effective access to the channel.
func (g Gate) Level(channelID string) string {
	if g.admin || g.open {
		return store.AccessSend
	}
	if lv, ok := g.levels[channelID]; ok {
		return lv
	}
	return store.AccessNone
}

// Sees is whether the user sees a dialog of the channel owned by owner
// ("" unassigned).
func (g Gate) Sees(channelID, owner string) bool {
	return CanRead(g.Level(channelID)) && (g.admin || CanSee(g.settings, g.userID, owner))
}

// Sends is whether the user may write in that dialog.
func (g Gate) Sends(channelID, owner string) bool {
	return CanSend(g.Level(channelID)) && g.Sees(channelID, owner)
}
