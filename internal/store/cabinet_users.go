package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Cabinet roles. An owner may do everything, an admin everything but
// manage owners, a manager only works with dialogs.
const (
	RoleOwner   = "owner"
	RoleAdmin   = "admin"
	RoleManager = "manager"
)

// ErrLastOwner refuses to remove a workspace's last owner: nobody could
// then manage its people from the cabinet.
var ErrLastOwner = errors.New("store: the workspace's last owner")

// CabinetUser is a person who signs in to a workspace's web cabinet.
type CabinetUser struct {
	ID          string `gorm:"primaryKey"`
	WorkspaceID string
	// Email is lower-cased; unique inside a workspace.
	Email string
	Name  string
	Role  string
	// PasswordHash is an argon2id PHC string (package password).
	PasswordHash string
	// Language is the cabinet language the person chose: "ru", "en" or ""
	// (from the browser).
	Language  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// cabinetUserCRMLink is one cabinet user's CRM user in one integration.
type cabinetUserCRMLink struct {
	UserID        string `gorm:"primaryKey"`
	IntegrationID string `gorm:"primaryKey"`
	CRMUserID     string `gorm:"column:crm_user_id"`
	CreatedAt     time.Time
}

func (cabinetUserCRMLink) TableName() string { return "cabinet_user_crm_links" }

// CreateCabinetUser stores a new user; ErrConflict when the workspace
// already has one with that e-mail.
func (s *Store) CreateCabinetUser(ctx context.Context, u *CabinetUser) error {
	now := Now()
	u.ID, u.CreatedAt, u.UpdatedAt = NewID(), now, now
	if err := s.g(ctx).Create(u).Error; err != nil {
		if IsUniqueViolation(err) {
			return ErrConflict
		}
		return fmt.Errorf("store: create cabinet user: %w", err)
	}
	return nil
}

// ListCabinetUsers lists a workspace's users, oldest first.
func (s *Store) ListCabinetUsers(ctx context.Context, scope Scope, workspaceID string) ([]CabinetUser, error) {
	if _, err := s.GetWorkspace(ctx, scope, workspaceID); err != nil {
		return nil, err
	}
	var out []CabinetUser
	if err := s.g(ctx).Where("workspace_id = ?", workspaceID).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list cabinet users: %w", err)
	}
	return out, nil
}

// GetCabinetUser returns one user of a workspace.
func (s *Store) GetCabinetUser(ctx context.Context, scope Scope, workspaceID, id string) (*CabinetUser, error) {
	if _, err := s.GetWorkspace(ctx, scope, workspaceID); err != nil {
		return nil, err
	}
	var u CabinetUser
	if err := s.g(ctx).Where("id = ? AND workspace_id = ?", id, workspaceID).First(&u).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// CabinetUsersByEmail finds every workspace's user with this (lower-cased)
// e-mail, oldest first: the candidates of a sign-in.
func (s *Store) CabinetUsersByEmail(ctx context.Context, email string) ([]CabinetUser, error) {
	var out []CabinetUser
	if err := s.g(ctx).Where("email = ?", email).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: cabinet users by email: %w", err)
	}
	return out, nil
}

// DeleteCabinetUser removes a user with their sessions and CRM links. The
// workspace's last owner stays (ErrLastOwner).
func (s *Store) DeleteCabinetUser(ctx context.Context, scope Scope, workspaceID, id string) (*CabinetUser, error) {
	u, err := s.GetCabinetUser(ctx, scope, workspaceID, id)
	if err != nil {
		return nil, err
	}
	err = s.Tx(ctx, func(tx *gorm.DB) error {
		if u.Role == RoleOwner {
			var owners int64
			if err := tx.Model(&CabinetUser{}).Where("workspace_id = ? AND role = ?", workspaceID, RoleOwner).Count(&owners).Error; err != nil {
				return err
			}
			if owners <= 1 {
				return ErrLastOwner
			}
		}
		// Sessions and links go explicitly: SQLite enforces the foreign
		// keys' cascade only when asked to.
		if err := tx.Where("user_id = ?", id).Delete(&CabinetSession{}).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ?", id).Delete(&cabinetUserCRMLink{}).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", id).Delete(&CabinetUser{}).Error
	})
	if err != nil {
		if errors.Is(err, ErrLastOwner) {
			return nil, err
		}
		return nil, fmt.Errorf("store: delete cabinet user: %w", err)
	}
	return u, nil
}

// SetCabinetUserLanguage records the language a user chose.
func (s *Store) SetCabinetUserLanguage(ctx context.Context, id, lang string) error {
	err := s.g(ctx).Model(&CabinetUser{}).Where("id = ?", id).Updates(map[string]any{"language": lang, "updated_at": Now()}).Error
	if err != nil {
		return fmt.Errorf("store: set cabinet user language: %w", err)
	}
	return nil
}

// CabinetUserCRMLinks returns, per user id, the CRM user each is in every
// integration (integration id → CRM user id).
func (s *Store) CabinetUserCRMLinks(ctx context.Context, userIDs []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []cabinetUserCRMLink
	if err := s.g(ctx).Where("user_id IN ?", userIDs).Order("user_id, integration_id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: cabinet user crm links: %w", err)
	}
	for _, r := range rows {
		if out[r.UserID] == nil {
			out[r.UserID] = map[string]string{}
		}
		out[r.UserID][r.IntegrationID] = r.CRMUserID
	}
	return out, nil
}

// ReplaceCabinetUserCRMLinks sets a user's CRM users, one per integration
// (integration id → CRM user id), replacing the ones before. The caller
// checks that the integrations are the workspace's and the CRM users
// known; ErrConflict when a CRM user is already another cabinet user.
func (s *Store) ReplaceCabinetUserCRMLinks(ctx context.Context, userID string, links map[string]string) error {
	now := Now()
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("user_id = ?", userID).Delete(&cabinetUserCRMLink{}).Error; err != nil {
			return err
		}
		for in, crmUser := range links {
			if err := tx.Create(&cabinetUserCRMLink{UserID: userID, IntegrationID: in, CRMUserID: crmUser, CreatedAt: now}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if IsUniqueViolation(err) {
			return ErrConflict
		}
		return fmt.Errorf("store: replace cabinet user crm links: %w", err)
	}
	return nil
}

// ---- sessions ----

// CabinetSession is a signed-in browser. The cookie holds a random id;
// only its hash (IDHash) is stored.
type CabinetSession struct {
	IDHash     string `gorm:"primaryKey"`
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// CreateCabinetSession starts a session for a user that ends at expires
// at the latest.
func (s *Store) CreateCabinetSession(ctx context.Context, idHash, userID string, expires time.Time) error {
	now := Now()
	err := s.g(ctx).Create(&CabinetSession{IDHash: idHash, UserID: userID, CreatedAt: now, LastSeenAt: now, ExpiresAt: expires}).Error
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// CabinetSessionUser returns a live session and its user: not past its
// absolute expiry and seen after idleSince. ErrNotFound otherwise.
func (s *Store) CabinetSessionUser(ctx context.Context, idHash string, idleSince time.Time) (*CabinetSession, *CabinetUser, error) {
	var ses CabinetSession
	err := s.g(ctx).Where("id_hash = ? AND expires_at > ? AND last_seen_at > ?", idHash, Now(), idleSince).First(&ses).Error
	if err != nil {
		return nil, nil, notFound(err)
	}
	var u CabinetUser
	if err := s.g(ctx).Where("id = ?", ses.UserID).First(&u).Error; err != nil {
		return nil, nil, notFound(err)
	}
	return &ses, &u, nil
}

// TouchCabinetSession records that a session was used now, which moves
// its idle expiry.
func (s *Store) TouchCabinetSession(ctx context.Context, idHash string) error {
	if err := s.g(ctx).Model(&CabinetSession{}).Where("id_hash = ?", idHash).Update("last_seen_at", Now()).Error; err != nil {
		return fmt.Errorf("store: touch session: %w", err)
	}
	return nil
}

// DeleteCabinetSession ends one session (signing out).
func (s *Store) DeleteCabinetSession(ctx context.Context, idHash string) error {
	if err := s.g(ctx).Where("id_hash = ?", idHash).Delete(&CabinetSession{}).Error; err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteCabinetSessions ends every session of a user (signing out
// everywhere) and returns how many there were.
func (s *Store) DeleteCabinetSessions(ctx context.Context, userID string) (int64, error) {
	r := s.g(ctx).Where("user_id = ?", userID).Delete(&CabinetSession{})
	if r.Error != nil {
		return 0, fmt.Errorf("store: delete sessions: %w", r.Error)
	}
	return r.RowsAffected, nil
}

// DeleteExpiredCabinetSessions drops the sessions that can no longer be
// used, so the table does not grow with every sign-in.
func (s *Store) DeleteExpiredCabinetSessions(ctx context.Context, idleSince time.Time) error {
	err := s.g(ctx).Where("expires_at <= ? OR last_seen_at <= ?", Now(), idleSince).Delete(&CabinetSession{}).Error
	if err != nil {
		return fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return nil
}

// ---- failed sign-ins ----

// Kinds of failed sign-in counters.
const (
	LoginByAccount = "account"
	LoginByIP      = "ip"
)

type loginFailure struct {
	ID        string `gorm:"primaryKey"`
	Kind      string
	Key       string
	CreatedAt time.Time
}

func (loginFailure) TableName() string { return "login_failures" }

// RecordLoginFailure counts one failed sign-in against each of keys (kind
// → key) and forgets every failure older than before, so the table holds
// one window's failures at most.
func (s *Store) RecordLoginFailure(ctx context.Context, keys map[string]string, before time.Time) error {
	now := Now()
	return s.Tx(ctx, func(tx *gorm.DB) error {
		for kind, key := range keys {
			if err := tx.Create(&loginFailure{ID: NewID(), Kind: kind, Key: key, CreatedAt: now}).Error; err != nil {
				return fmt.Errorf("store: record login failure: %w", err)
			}
		}
		if err := tx.Where("created_at < ?", before).Delete(&loginFailure{}).Error; err != nil {
			return fmt.Errorf("store: prune login failures: %w", err)
		}
		return nil
	})
}

// LoginFailures counts a key's failed sign-ins since a moment, and the
// oldest of them (when the count next drops).
func (s *Store) LoginFailures(ctx context.Context, kind, key string, since time.Time) (int64, time.Time, error) {
	var n int64
	q := s.g(ctx).Model(&loginFailure{}).Where("kind = ? AND key = ? AND created_at >= ?", kind, key, since)
	if err := q.Count(&n).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("store: count login failures: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var first loginFailure
	if err := s.g(ctx).Where("kind = ? AND key = ? AND created_at >= ?", kind, key, since).Order("created_at").First(&first).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("store: oldest login failure: %w", err)
	}
	return n, first.CreatedAt, nil
}

// ClearLoginFailures forgets a key's failed sign-ins (after a success).
func (s *Store) ClearLoginFailures(ctx context.Context, kind, key string) error {
	if err := s.g(ctx).Where("kind = ? AND key = ?", kind, key).Delete(&loginFailure{}).Error; err != nil {
		return fmt.Errorf("store: clear login failures: %w", err)
	}
	return nil
}

// ---- what the cabinet's home shows ----

// ChannelActivity is what the cabinet shows of a channel's traffic.
type ChannelActivity struct {
	// LastInboundAt is when the channel last received a customer's
	// message (nil: never).
	LastInboundAt *time.Time
	// Messages24h counts messages both ways created in the last 24 hours.
	Messages24h int64
	// LastWebhookAt is when a webhook for the channel last arrived, to
	// the minute (nil: none since this was recorded).
	LastWebhookAt *time.Time
}

// ChannelActivities returns the activity of each of a workspace's
// channels. Ids are time-ordered, so "the last 24 hours" is an id range
// on the messages' (channel_id, id) index, not a scan.
func (s *Store) ChannelActivities(ctx context.Context, workspaceID string, channelIDs []string) (map[string]ChannelActivity, error) {
	out := map[string]ChannelActivity{}
	from := IDAt(Now().Add(-24 * time.Hour))
	for _, id := range channelIDs {
		var a ChannelActivity
		if err := s.g(ctx).Model(&Message{}).Where("workspace_id = ? AND channel_id = ? AND id >= ?", workspaceID, id, from).Count(&a.Messages24h).Error; err != nil {
			return nil, fmt.Errorf("store: channel activity: %w", err)
		}
		var last Message
		err := s.g(ctx).Select("id, created_at").Where("channel_id = ? AND direction = ?", id, Inbound).Order("id DESC").Limit(1).Find(&last).Error
		if err != nil {
			return nil, fmt.Errorf("store: channel last inbound: %w", err)
		}
		if last.ID != "" {
			t := last.CreatedAt
			a.LastInboundAt = &t
		}
		var hook struct{ LastWebhookAt *time.Time }
		if err := s.g(ctx).Table("channels").Select("last_webhook_at").Where("id = ? AND workspace_id = ?", id, workspaceID).Take(&hook).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, fmt.Errorf("store: channel last webhook: %w", err)
		}
		a.LastWebhookAt = hook.LastWebhookAt
		out[id] = a
	}
	return out, nil
}

// UpdateCabinetUser changes a user's name and role. Demoting the
// workspace's last owner is ErrLastOwner: nobody could manage owners.
func (s *Store) UpdateCabinetUser(ctx context.Context, scope Scope, workspaceID, id, name, role string) (*CabinetUser, error) {
	u, err := s.GetCabinetUser(ctx, scope, workspaceID, id)
	if err != nil {
		return nil, err
	}
	err = s.Tx(ctx, func(tx *gorm.DB) error {
		if u.Role == RoleOwner && role != RoleOwner {
			var owners int64
			if err := tx.Model(&CabinetUser{}).Where("workspace_id = ? AND role = ?", workspaceID, RoleOwner).Count(&owners).Error; err != nil {
				return err
			}
			if owners <= 1 {
				return ErrLastOwner
			}
		}
		return tx.Model(&CabinetUser{}).Where("id = ? AND workspace_id = ?", id, workspaceID).
			Updates(map[string]any{"name": name, "role": role, "updated_at": Now()}).Error
	})
	if err != nil {
		if errors.Is(err, ErrLastOwner) {
			return nil, err
		}
		return nil, fmt.Errorf("store: update cabinet user: %w", err)
	}
	u.Name, u.Role = name, role
	return u, nil
}

// SetCabinetUserPassword replaces a user's password hash and ends their
// sessions, all but keep (a session id hash; "" ends every one), in one
// transaction: a stolen session does not outlive a password change.
func (s *Store) SetCabinetUserPassword(ctx context.Context, id, hash, keep string) (int64, error) {
	var ended int64
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&CabinetUser{}).Where("id = ?", id).Updates(map[string]any{"password_hash": hash, "updated_at": Now()})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		q := tx.Where("user_id = ?", id)
		if keep != "" {
			q = q.Where("id_hash <> ?", keep)
		}
		del := q.Delete(&CabinetSession{})
		ended = del.RowsAffected
		return del.Error
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, err
		}
		return 0, fmt.Errorf("store: set cabinet user password: %w", err)
	}
	return ended, nil
}
