package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/secret"
)

var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: already exists")
)

// Store is the gateway's data access, over one DB and the key that seals
// credentials.
type Store struct {
	DB  *DB
	box *secret.Box
	// tx, when set, is the transaction every method of this view runs in
	// (see InTx); the locks and caches are shared with the store it was
	// made from, so pointers.
	tx           *gorm.DB
	refreshLocks *locks
	channels     *channelCache
	feeds        *feedCache
}

// New is the store over db; box seals and opens the credentials.
func New(db *DB, box *secret.Box) *Store {
	return &Store{DB: db, box: box, refreshLocks: &locks{},
		channels: &channelCache{ttl: channelCacheTTL},
		feeds:    &feedCache{ttl: feedCacheTTL, clone: cloneFeed}}
}

// InTx is a view of the store whose methods all run in tx, a transaction
// Tx handed out, so that a caller can commit a method's writes together
// with its own (a queue job ending with queue.Done). A method that opens a
// transaction of its own opens a savepoint in tx instead. Methods whose
// statement may fail on purpose (a unique violation caught and retried)
// must not be called on it with PostgreSQL, which aborts the whole
// transaction on a failed statement.
func (s *Store) InTx(tx *gorm.DB) *Store {
	view := *s
	view.tx = tx
	return &view
}

// Scope limits a query to one workspace. The zero Scope is the operator's
// (admin token): every workspace.
type Scope struct{ WorkspaceID string }

// All is the operator's scope.
var All = Scope{}

func (s Scope) apply(q *gorm.DB) *gorm.DB {
	if s.WorkspaceID == "" {
		return q
	}
	return q.Where("workspace_id = ?", s.WorkspaceID)
}

func (s *Store) g(ctx context.Context) *gorm.DB {
	if s.tx != nil {
		return s.tx.WithContext(ctx)
	}
	return s.DB.Gorm.WithContext(ctx)
}

// Tx runs f in a transaction. A transaction that changed a channel's feed
// (bindings, integrations' states, routing: their writers invalidate the
// feed cache as they write) invalidates it once more when it ends: a
// lookup between the write and the commit read the old rows and may have
// cached them.
// The channel cache is treated alike (SetChannelState in a transaction of
// InTx's).
func (s *Store) Tx(ctx context.Context, f func(tx *gorm.DB) error) error {
	feedGen, channelGen := s.feeds.generation(), s.channels.generation()
	err := s.g(ctx).Transaction(f)
	if s.feeds.generation() != feedGen {
		s.feeds.invalidate()
	}
	if s.channels.generation() != channelGen {
		s.channels.invalidate()
	}
	return err
}

func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

// IsUniqueViolation reports a unique-index conflict on either engine.
func IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// ---- workspaces and tokens ----

// EnsureDefaultWorkspace returns the default workspace, creating it on the
// first start.
func (s *Store) EnsureDefaultWorkspace(ctx context.Context) (*Workspace, error) {
	var w Workspace
	err := s.g(ctx).Where("is_default = ?", true).First(&w).Error
	if err == nil {
		return &w, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("store: default workspace: %w", err)
	}
	w = newWorkspace("Default", "UTC")
	w.IsDefault = true
	if err := s.g(ctx).Create(&w).Error; err != nil {
		if IsUniqueViolation(err) { // another instance won the race
			return s.EnsureDefaultWorkspace(ctx)
		}
		return nil, fmt.Errorf("store: create default workspace: %w", err)
	}
	return &w, nil
}

// newWorkspace is a workspace with the settings every new one starts with:
// numbers read as in Russia and Kazakhstan, the first customers' countries.
func newWorkspace(name, tz string) Workspace {
	now := Now()
	return Workspace{ID: NewID(), Name: name, Timezone: tz, PhoneTrunk8: true, PhoneRegion: "RU", CreatedAt: now, UpdatedAt: now}
}

func (s *Store) CreateWorkspace(ctx context.Context, name, tz string) (*Workspace, error) {
	w := newWorkspace(name, tz)
	if err := s.g(ctx).Create(&w).Error; err != nil {
		return nil, fmt.Errorf("store: create workspace: %w", err)
	}
	return &w, nil
}

func (s *Store) ListWorkspaces(ctx context.Context, scope Scope) ([]Workspace, error) {
	var ws []Workspace
	q := s.g(ctx).Order("id")
	if scope.WorkspaceID != "" {
		q = q.Where("id = ?", scope.WorkspaceID)
	}
	if err := q.Find(&ws).Error; err != nil {
		return nil, fmt.Errorf("store: list workspaces: %w", err)
	}
	return ws, nil
}

func (s *Store) GetWorkspace(ctx context.Context, scope Scope, id string) (*Workspace, error) {
	if scope.WorkspaceID != "" && scope.WorkspaceID != id {
		return nil, ErrNotFound
	}
	var w Workspace
	if err := s.g(ctx).Where("id = ?", id).First(&w).Error; err != nil {
		return nil, notFound(err)
	}
	return &w, nil
}

// UpdateWorkspace changes a workspace's settings and returns it.
func (s *Store) UpdateWorkspace(ctx context.Context, scope Scope, id string, u WorkspaceUpdate) (*Workspace, error) {
	if _, err := s.GetWorkspace(ctx, scope, id); err != nil {
		return nil, err
	}
	set := map[string]any{"updated_at": Now()}
	if u.Name != nil {
		set["name"] = *u.Name
	}
	if u.Timezone != nil {
		set["timezone"] = *u.Timezone
	}
	if u.PhoneTrunk8 != nil {
		set["phone_trunk8"] = *u.PhoneTrunk8
	}
	if u.PhoneRegion != nil {
		set["phone_region"] = *u.PhoneRegion
	}
	if u.DialogsPerHourLimit != nil {
		set["dialogs_per_hour_limit"] = *u.DialogsPerHourLimit
	}
	if err := s.g(ctx).Model(&Workspace{}).Where("id = ?", id).Updates(set).Error; err != nil {
		return nil, fmt.Errorf("store: update workspace: %w", err)
	}
	return s.GetWorkspace(ctx, scope, id)
}

// CreateAPIToken issues a workspace token. Only its hash is stored; the
// token itself is returned once.
func (s *Store) CreateAPIToken(ctx context.Context, workspaceID, name string) (string, *APIToken, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("store: token: %w", err)
	}
	plain := "sbw_" + base64.RawURLEncoding.EncodeToString(raw)
	t := APIToken{ID: NewID(), WorkspaceID: workspaceID, Name: name, TokenHash: HashToken(plain), CreatedAt: Now()}
	if err := s.g(ctx).Create(&t).Error; err != nil {
		return "", nil, fmt.Errorf("store: create token: %w", err)
	}
	return plain, &t, nil
}

// HashToken is how API tokens are stored and looked up.
func HashToken(plain string) string {
	h := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(h[:])
}

// WorkspaceForToken returns the workspace a live token acts in.
func (s *Store) WorkspaceForToken(ctx context.Context, plain string) (string, error) {
	var t APIToken
	err := s.g(ctx).Where("token_hash = ? AND revoked_at IS NULL", HashToken(plain)).First(&t).Error
	if err != nil {
		return "", notFound(err)
	}
	return t.WorkspaceID, nil
}

// ListAPITokens lists a workspace's tokens, revoked ones too, oldest
// first; only their hashes are stored, so no token is in the list.
func (s *Store) ListAPITokens(ctx context.Context, scope Scope, workspaceID string) ([]APIToken, error) {
	if _, err := s.GetWorkspace(ctx, scope, workspaceID); err != nil {
		return nil, err
	}
	var ts []APIToken
	if err := s.g(ctx).Where("workspace_id = ?", workspaceID).Order("id").Find(&ts).Error; err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	return ts, nil
}

// RevokeAPIToken stops a workspace's token from working, at once. Revoking
// a revoked token changes nothing.
func (s *Store) RevokeAPIToken(ctx context.Context, scope Scope, workspaceID, tokenID string) (*APIToken, error) {
	if _, err := s.GetWorkspace(ctx, scope, workspaceID); err != nil {
		return nil, err
	}
	now := Now()
	if err := s.g(ctx).Model(&APIToken{}).Where("id = ? AND workspace_id = ? AND revoked_at IS NULL", tokenID, workspaceID).
		Update("revoked_at", now).Error; err != nil {
		return nil, fmt.Errorf("store: revoke token: %w", err)
	}
	var t APIToken
	if err := s.g(ctx).Where("id = ? AND workspace_id = ?", tokenID, workspaceID).First(&t).Error; err != nil {
		return nil, notFound(err)
	}
	return &t, nil
}

// ---- channels ----

func tokenAAD(channelID string) string { return "channel:" + channelID + ":access_token" }

// CreateChannel stores a channel with its access token sealed.
func (s *Store) CreateChannel(ctx context.Context, ch *Channel, accessToken string) error {
	now := Now()
	ch.ID = NewID()
	ch.State = ChannelActive
	ch.CreatedAt, ch.UpdatedAt = now, now
	sealed, err := s.box.Seal(accessToken, tokenAAD(ch.ID))
	if err != nil {
		return err
	}
	ch.AccessToken = sealed
	if err := s.g(ctx).Create(ch).Error; err != nil {
		if IsUniqueViolation(err) {
			return ErrConflict
		}
		return fmt.Errorf("store: create channel: %w", err)
	}
	s.channels.invalidate()
	return nil
}

func (s *Store) GetChannel(ctx context.Context, scope Scope, id string) (*Channel, error) {
	var ch Channel
	if err := scope.apply(s.g(ctx)).Where("id = ?", id).First(&ch).Error; err != nil {
		return nil, notFound(err)
	}
	return &ch, nil
}

func (s *Store) ListChannels(ctx context.Context, scope Scope) ([]Channel, error) {
	var chs []Channel
	if err := scope.apply(s.g(ctx)).Order("id").Find(&chs).Error; err != nil {
		return nil, fmt.Errorf("store: list channels: %w", err)
	}
	return chs, nil
}

// ChannelUpdate holds the fields PATCH may change; nil leaves a field as is.
type ChannelUpdate struct {
	Name         *string
	DisplayPhone *string
	WabaID       *string
	PageID       *string
	AccessToken  *string
	SendRate     *float64
	State        *string // active or disabled; error is set by the gateway
}

func (s *Store) UpdateChannel(ctx context.Context, scope Scope, id string, u ChannelUpdate) (*Channel, error) {
	ch, err := s.GetChannel(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	set := map[string]any{"updated_at": Now()}
	if u.Name != nil {
		set["name"] = *u.Name
	}
	if u.DisplayPhone != nil {
		set["display_phone"] = *u.DisplayPhone
	}
	if u.WabaID != nil {
		set["waba_id"] = *u.WabaID
	}
	if u.PageID != nil {
		set["page_id"] = *u.PageID
	}
	if u.SendRate != nil {
		set["send_rate"] = *u.SendRate
	}
	if u.AccessToken != nil {
		sealed, err := s.box.Seal(*u.AccessToken, tokenAAD(ch.ID))
		if err != nil {
			return nil, err
		}
		set["access_token"] = sealed
		// A new token is the fix for a token error.
		if ch.State == ChannelError && u.State == nil {
			set["state"], set["state_reason"] = ChannelActive, ""
		}
	}
	if u.State != nil {
		set["state"] = *u.State
		set["state_reason"] = ""
	}
	if err := s.g(ctx).Model(&Channel{}).Where("id = ?", ch.ID).Updates(set).Error; err != nil {
		if IsUniqueViolation(err) {
			return nil, ErrConflict
		}
		return nil, fmt.Errorf("store: update channel: %w", err)
	}
	s.channels.invalidate()
	return s.GetChannel(ctx, scope, id)
}

// SetChannelState records a state the gateway found (e.g. error: token
// expired).
func (s *Store) SetChannelState(ctx context.Context, id, state, reason string) error {
	err := s.g(ctx).Model(&Channel{}).Where("id = ? AND state <> ?", id, ChannelDisabled).
		Updates(map[string]any{"state": state, "state_reason": reason, "updated_at": Now()}).Error
	s.channels.invalidate()
	return err
}

// ChannelByAccount finds the channel a webhook is for. Disabled channels
// do not receive.
// Found channels come from a short-lived cache (see channelCacheTTL).
func (s *Store) ChannelByAccount(ctx context.Context, typ channel.Type, accountID string) (*Channel, error) {
	k := channelKey{string(typ), accountID}
	now := time.Now()
	ch, gen := s.channels.get(k, now)
	if ch != nil {
		return ch, nil
	}
	var found Channel
	err := s.g(ctx).Where("type = ? AND account_id = ? AND state <> ?", string(typ), accountID, ChannelDisabled).First(&found).Error
	if err != nil {
		return nil, notFound(err)
	}
	s.channels.put(k, &found, gen, now)
	return &found, nil
}

// Credentials opens a channel's access token.
func (s *Store) Credentials(ch *Channel) (channel.Credentials, error) {
	tok, err := s.box.Open(ch.AccessToken, tokenAAD(ch.ID))
	if err != nil {
		return channel.Credentials{}, fmt.Errorf("store: channel %s token: %w", ch.ID, err)
	}
	return channel.Credentials{AccountID: ch.AccountID, AccessToken: tok}, nil
}

// ---- unrouted events ----

func (s *Store) SaveUnrouted(ctx context.Context, typ channel.Type, accountID string, payload []byte) error {
	return s.g(ctx).Create(&UnroutedEvent{ChannelType: string(typ), AccountID: accountID, Payload: string(payload), CreatedAt: Now()}).Error
}
