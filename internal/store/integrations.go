package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Integration states.
const (
	IntegrationActive      = "active"
	IntegrationNeedsReauth = "needs_reauth"
	IntegrationUninstalled = "uninstalled"
	// IntegrationHandlersMismatch: the portal's event handlers do not
	// point at this gateway, so operators' replies cannot arrive; the
	// rest of its work goes on.
	IntegrationHandlersMismatch = "handlers_mismatch"
	// IntegrationUnpaid: the CRM account's subscription is not paid, so
	// its API refuses every call; work waits (parked) and resumes by
	// itself once the account answers again.
	IntegrationUnpaid = "unpaid"
)

type Integration struct {
	ID             string `gorm:"primaryKey"`
	WorkspaceID    string
	Type           string
	State          string
	StateReason    string
	ExternalID     string // Bitrix24 member_id
	Domain         string
	ClientEndpoint string
	ServerEndpoint string
	Scope          string
	// Sealed values; IntegrationSecrets opens them.
	ApplicationToken string
	AccessToken      string
	RefreshToken     string
	TokenExpiresAt   *time.Time
	TokenVersion     int64
	InstalledBy      string
	Language         string
	// ChatAccountID is the account's id in its CRM's chat service
	// (amoCRM's amojo_id), which the Chats API addresses it by; "" for
	// CRMs without one.
	ChatAccountID string
	Settings      *string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// IntegrationSecrets are an integration's credentials in the clear.
type IntegrationSecrets struct {
	ApplicationToken string
	AccessToken      string
	RefreshToken     string
}

func integrationAAD(id, field string) string { return "integration:" + id + ":" + field }

func (s *Store) sealInto(set map[string]any, id string, sec IntegrationSecrets) error {
	for col, v := range map[string]string{"application_token": sec.ApplicationToken, "access_token": sec.AccessToken, "refresh_token": sec.RefreshToken} {
		if v == "" {
			continue
		}
		sealed, err := s.box.Seal(v, integrationAAD(id, col))
		if err != nil {
			return err
		}
		set[col] = sealed
	}
	return nil
}

// Secrets opens an integration's sealed credentials.
func (s *Store) Secrets(in *Integration) (IntegrationSecrets, error) {
	var out IntegrationSecrets
	for col, dst := range map[string]*string{"application_token": &out.ApplicationToken, "access_token": &out.AccessToken, "refresh_token": &out.RefreshToken} {
		src := map[string]string{"application_token": in.ApplicationToken, "access_token": in.AccessToken, "refresh_token": in.RefreshToken}[col]
		if src == "" {
			continue
		}
		v, err := s.box.Open(src, integrationAAD(in.ID, col))
		if err != nil {
			return out, fmt.Errorf("store: integration %s %s: %w", in.ID, col, err)
		}
		*dst = v
	}
	return out, nil
}

// InstallParams is what an install or OAuth callback learned about a portal.
type InstallParams struct {
	Type           string
	ExternalID     string
	Domain         string
	ClientEndpoint string
	ServerEndpoint string
	Scope          string
	InstalledBy    string
	Language       string
	Expiry         time.Time
	Secrets        IntegrationSecrets
	// ReplaceSecrets writes every secret as given, an empty one clearing
	// the stored value; otherwise an empty secret keeps what is stored
	// (an OAuth reconnect keeps the marketplace's application token). A
	// long-lived token replacing an OAuth pair must not leave the old
	// refresh token behind.
	ReplaceSecrets bool
	// ChatAccountID is written when not empty.
	ChatAccountID string
	// Timezone is the time zone of a workspace made for a new
	// integration; "" is Europe/Moscow.
	Timezone string
	// WorkspaceID places a new integration; empty makes a workspace named
	// after the domain.
	WorkspaceID string
}

// UpsertIntegration records an install: a known portal keeps its id and
// workspace and gets the new tokens; a new one is created.
func (s *Store) UpsertIntegration(ctx context.Context, p InstallParams) (*Integration, bool, error) {
	var out Integration
	created := false
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		err := tx.Where("type = ? AND external_id = ?", p.Type, p.ExternalID).First(&out).Error
		now := Now()
		if errors.Is(err, gorm.ErrRecordNotFound) {
			ws := p.WorkspaceID
			if ws == "" {
				w := newWorkspace(p.Domain, cmp.Or(p.Timezone, "Europe/Moscow"))
				if err := tx.Create(&w).Error; err != nil {
					return err
				}
				ws = w.ID
			}
			out = Integration{ID: NewID(), WorkspaceID: ws, Type: p.Type, ExternalID: p.ExternalID, State: IntegrationActive, CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&out).Error; err != nil {
				return err
			}
			created = true
		} else if err != nil {
			return err
		}
		set := map[string]any{"state": IntegrationActive, "state_reason": "", "domain": p.Domain,
			"client_endpoint": p.ClientEndpoint, "server_endpoint": p.ServerEndpoint, "scope": p.Scope,
			"token_version": gorm.Expr("token_version + 1"), "updated_at": now}
		if p.InstalledBy != "" {
			set["installed_by"] = p.InstalledBy
		}
		if p.Language != "" {
			set["language"] = p.Language
		}
		if !p.Expiry.IsZero() {
			set["token_expires_at"] = p.Expiry.UTC()
		}
		if p.ChatAccountID != "" {
			set["chat_account_id"] = p.ChatAccountID
		}
		if p.ReplaceSecrets {
			set["application_token"], set["access_token"], set["refresh_token"] = "", "", ""
			if p.Expiry.IsZero() {
				set["token_expires_at"] = nil
			}
		}
		if err := s.sealInto(set, out.ID, p.Secrets); err != nil {
			return err
		}
		if err := tx.Model(&Integration{}).Where("id = ?", out.ID).Updates(set).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", out.ID).First(&out).Error
	})
	// A reinstall makes the integration live again: after the commit.
	s.feeds.invalidate()
	if err != nil {
		return nil, false, fmt.Errorf("store: upsert integration: %w", err)
	}
	return &out, created, nil
}

func (s *Store) GetIntegration(ctx context.Context, scope Scope, id string) (*Integration, error) {
	var in Integration
	if err := scope.apply(s.g(ctx)).Where("id = ?", id).First(&in).Error; err != nil {
		return nil, notFound(err)
	}
	return &in, nil
}

func (s *Store) IntegrationByExternal(ctx context.Context, typ, externalID string) (*Integration, error) {
	var in Integration
	if err := s.g(ctx).Where("type = ? AND external_id = ?", typ, externalID).First(&in).Error; err != nil {
		return nil, notFound(err)
	}
	return &in, nil
}

// IntegrationByChatAccount finds the integration of typ whose account has
// this id in its CRM's chat service (amoCRM's amojo_id), or ErrNotFound.
func (s *Store) IntegrationByChatAccount(ctx context.Context, typ, chatAccountID string) (*Integration, error) {
	var in Integration
	if chatAccountID == "" {
		return nil, ErrNotFound
	}
	if err := s.g(ctx).Where("type = ? AND chat_account_id = ?", typ, chatAccountID).Order("id").First(&in).Error; err != nil {
		return nil, notFound(err)
	}
	return &in, nil
}

func (s *Store) ListIntegrations(ctx context.Context, scope Scope) ([]Integration, error) {
	var out []Integration
	if err := scope.apply(s.g(ctx)).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list integrations: %w", err)
	}
	return out, nil
}

// SetIntegrationState moves an integration to state with reason.
func (s *Store) SetIntegrationState(ctx context.Context, id, state, reason string) error {
	err := s.g(ctx).Model(&Integration{}).Where("id = ?", id).
		Updates(map[string]any{"state": state, "state_reason": reason, "updated_at": Now()}).Error
	s.feeds.invalidate()
	return err
}

// MarkNeedsReauthAt puts the integration into needs_reauth with reason
// only while its tokens are still at tokenVersion, the ones that were
// refused: an install or a refresh that stored new tokens meanwhile (a
// re-install racing a refresh that failed with the old ones) must not be
// undone by the late mark. It reports whether it marked.
func (s *Store) MarkNeedsReauthAt(ctx context.Context, id string, tokenVersion int64, reason string) (bool, error) {
	res := s.g(ctx).Model(&Integration{}).Where("id = ? AND token_version = ?", id, tokenVersion).
		Updates(map[string]any{"state": IntegrationNeedsReauth, "state_reason": reason, "updated_at": Now()})
	s.feeds.invalidate()
	if res.Error != nil {
		return false, fmt.Errorf("store: integration %s needs re-authorisation: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ChangeIntegrationState moves an integration from one of the states from
// to state with reason, in tx (one of Store.Tx, which forgets the cached
// feeds again after the commit); it reports whether it did (false: the
// integration is in another state, e.g. another caller moved it first).
func (s *Store) ChangeIntegrationState(tx *gorm.DB, id string, from []string, state, reason string) (bool, error) {
	res := tx.Model(&Integration{}).Where("id = ? AND state IN ?", id, from).
		Updates(map[string]any{"state": state, "state_reason": reason, "updated_at": Now()})
	s.feeds.invalidate()
	if res.Error != nil {
		return false, fmt.Errorf("store: integration %s to %s: %w", id, state, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// SetIntegrationEndpoint records a portal's new address after a rename.
func (s *Store) SetIntegrationEndpoint(ctx context.Context, id, domain, endpoint string) error {
	return s.g(ctx).Model(&Integration{}).Where("id = ?", id).
		Updates(map[string]any{"domain": domain, "client_endpoint": endpoint, "updated_at": Now()}).Error
}

// locks serialises token refreshes inside one process; PostgreSQL's row
// lock does it across processes.
type locks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

func (l *locks) get(id string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*sync.Mutex{}
	}
	m, ok := l.m[id]
	if !ok {
		m = &sync.Mutex{}
		l.m[id] = m
	}
	return m
}

// RefreshTokens runs fn holding the integration's refresh lock: a mutex in
// this process and, on PostgreSQL, the row lock (SELECT … FOR UPDATE), so
// exactly one caller across all gateway instances uses a refresh token.
// fn sees the integration as stored under the lock and returns the new
// secrets and expiry to store; an error leaves everything as it was.
func (s *Store) RefreshTokens(ctx context.Context, id string, fn func(in *Integration, sec IntegrationSecrets) (IntegrationSecrets, time.Time, error)) (*Integration, IntegrationSecrets, error) {
	m := s.refreshLocks.get(id)
	m.Lock()
	defer m.Unlock()
	var out Integration
	var outSec IntegrationSecrets
	body := func(tx *gorm.DB) error {
		q := tx.Where("id = ?", id)
		if s.DB.Dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.First(&out).Error; err != nil {
			return notFound(err)
		}
		sec, err := s.Secrets(&out)
		if err != nil {
			return err
		}
		newSec, expiry, err := fn(&out, sec)
		if err != nil {
			return err
		}
		if newSec == sec {
			outSec = sec
			return nil // nothing to store: someone else refreshed already
		}
		set := map[string]any{"token_version": gorm.Expr("token_version + 1"), "updated_at": Now()}
		if !expiry.IsZero() {
			set["token_expires_at"] = expiry.UTC()
		}
		if err := s.sealInto(set, out.ID, newSec); err != nil {
			return err
		}
		if err := tx.Model(&Integration{}).Where("id = ?", id).Updates(set).Error; err != nil {
			return err
		}
		outSec = newSec
		return tx.Where("id = ?", id).First(&out).Error
	}
	var err error
	if s.DB.Dialect == Postgres {
		err = s.Tx(ctx, body)
	} else {
		// One process owns an SQLite file, so the mutex is the whole lock;
		// no transaction is held open across fn's call to the OAuth server
		// (the single connection would stall every other query).
		err = body(s.g(ctx))
	}
	if err != nil {
		return nil, IntegrationSecrets{}, err
	}
	return &out, outSec, nil
}

// ---- bindings ----

type ChannelBinding struct {
	ID            string `gorm:"primaryKey"`
	WorkspaceID   string
	IntegrationID string
	ChannelID     string
	Mode          string // openlines | crm
	LineID        string
	Entity        string // lead | deal
	CategoryID    string
	StageID       string
	Settings      *string
	// Name is the channel's name inside this integration (item 1).
	Name string
	// OwnerPolicy is routing.OwnerPolicy as JSON; "" leaves new records on
	// the installing user.
	OwnerPolicy string
	// OnRepeat is routing.OnRepeat*: what a customer whose last record is
	// closed gets.
	OnRepeat string
	// Mirror is routing.Mirror*: each message, hourly or daily batches, or
	// none.
	Mirror    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PutBinding creates or replaces the binding of a channel to an integration.
func (s *Store) PutBinding(ctx context.Context, b *ChannelBinding) error {
	// After the write (autocommitted): see feedCacheTTL.
	defer s.feeds.invalidate()
	now := Now()
	var cur ChannelBinding
	err := s.g(ctx).Where("integration_id = ? AND channel_id = ?", b.IntegrationID, b.ChannelID).First(&cur).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		b.ID, b.CreatedAt, b.UpdatedAt = NewID(), now, now
		b.OnRepeat, b.Mirror = cmp.Or(b.OnRepeat, "last_closed"), cmp.Or(b.Mirror, "each")
		if err := s.g(ctx).Create(b).Error; err != nil {
			if IsUniqueViolation(err) {
				return s.PutBinding(ctx, b)
			}
			return fmt.Errorf("store: create binding: %w", err)
		}
		return nil
	case err != nil:
		return err
	}
	b.ID, b.CreatedAt, b.UpdatedAt = cur.ID, cur.CreatedAt, now
	b.OnRepeat, b.Mirror = cmp.Or(b.OnRepeat, "last_closed"), cmp.Or(b.Mirror, "each")
	return s.g(ctx).Model(&ChannelBinding{}).Where("id = ?", cur.ID).Updates(map[string]any{
		"mode": b.Mode, "line_id": b.LineID, "entity": b.Entity, "category_id": b.CategoryID,
		"stage_id": b.StageID, "settings": b.Settings, "name": b.Name, "owner_policy": b.OwnerPolicy,
		"on_repeat": b.OnRepeat, "mirror": b.Mirror, "updated_at": now,
	}).Error
}

// DeleteBinding removes the binding of a channel to an integration; it
// reports whether there was one.
func (s *Store) DeleteBinding(ctx context.Context, integrationID, channelID string) (bool, error) {
	res := s.g(ctx).Where("integration_id = ? AND channel_id = ?", integrationID, channelID).Delete(&ChannelBinding{})
	s.feeds.invalidate()
	return res.RowsAffected > 0, res.Error
}

// liveStates are the integration states that take a channel's messages. A
// portal whose handlers miss us is live: customers' messages still reach it.
var liveStates = []string{IntegrationActive, IntegrationHandlersMismatch}

// BindingsForChannel lists the live integrations a channel feeds.
func BindingsForChannel(tx *gorm.DB, channelID string) ([]ChannelBinding, error) {
	var out []ChannelBinding
	err := tx.Joins("JOIN integrations ON integrations.id = channel_bindings.integration_id").
		Where("channel_bindings.channel_id = ? AND integrations.state IN ?", channelID, liveStates).
		Order("channel_bindings.id").Find(&out).Error
	return out, err
}

// StatedBinding is a binding with its integration's state.
type StatedBinding struct {
	ChannelBinding
	IntegrationState string
	// IntegrationType picks the integration's connector.
	IntegrationType string
}

// Live says whether the integration takes the channel's messages now (one
// that needs re-authorisation is bound but not live).
func (b *StatedBinding) Live() bool {
	for _, s := range liveStates {
		if b.IntegrationState == s {
			return true
		}
	}
	return false
}

// AllBindingsForChannel lists every binding of a channel, live or not, in
// one query: the conversation goes on in each while a portal waits for
// re-authorisation. It reads in tx, never from the feed cache (FeedOf).
func AllBindingsForChannel(tx *gorm.DB, channelID string) ([]StatedBinding, error) {
	f, err := readFeed(tx, channelID)
	if err != nil {
		return nil, err
	}
	return f.Bindings, nil
}

func (s *Store) ListBindings(ctx context.Context, integrationID string) ([]ChannelBinding, error) {
	var out []ChannelBinding
	err := s.g(ctx).Where("integration_id = ?", integrationID).Order("id").Find(&out).Error
	return out, err
}

// BindingByLine finds the channel bound to an Open Line.
func (s *Store) BindingByLine(ctx context.Context, integrationID, lineID string) (*ChannelBinding, error) {
	var b ChannelBinding
	err := s.g(ctx).Where("integration_id = ? AND mode = ? AND line_id = ?", integrationID, "openlines", lineID).Order("id").First(&b).Error
	if err != nil {
		return nil, notFound(err)
	}
	return &b, nil
}

// DeleteBindingsByLine drops every binding to an Open Line (the line was
// deleted or the connector switched off there).
func (s *Store) DeleteBindingsByLine(ctx context.Context, integrationID, lineID string) (int64, error) {
	res := s.g(ctx).Where("integration_id = ? AND mode = ? AND line_id = ?", integrationID, "openlines", lineID).Delete(&ChannelBinding{})
	s.feeds.invalidate()
	return res.RowsAffected, res.Error
}

// ---- CRM events and links ----

type CRMEvent struct {
	ID            string `gorm:"primaryKey"`
	IntegrationID string
	Kind          string
	DedupKey      string
	Payload       string
	CreatedAt     time.Time
}

func (CRMEvent) TableName() string { return "crm_events" }

// InsertCRMEvent keeps an event unless one with the same key was kept
// before; it reports whether it inserted.
func InsertCRMEvent(tx *gorm.DB, e *CRMEvent) (bool, error) {
	e.ID, e.CreatedAt = NewID(), Now()
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(e)
	return res.RowsAffected == 1, res.Error
}

func (s *Store) GetCRMEvent(ctx context.Context, id string) (*CRMEvent, error) {
	var e CRMEvent
	if err := s.g(ctx).Where("id = ?", id).First(&e).Error; err != nil {
		return nil, notFound(err)
	}
	return &e, nil
}

type CRMLink struct {
	ID            int64 `gorm:"primaryKey"`
	IntegrationID string
	Kind          string
	LocalID       string
	RemoteID      string
	Extra         *string
	CreatedAt     time.Time
}

func (CRMLink) TableName() string { return "crm_links" }

// PutLink records that a local object is known to the CRM by remoteID;
// the first link of a kind for a local object wins.
func PutLink(tx *gorm.DB, integrationID, kind, localID, remoteID string) error {
	return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&CRMLink{IntegrationID: integrationID, Kind: kind,
		LocalID: localID, RemoteID: remoteID, CreatedAt: Now()}).Error
}

// PutLinks is PutLink for many local objects of one kind (remote id by
// local id) in one statement; they are written in local id order, so two
// writers of the same objects wait for each other rather than deadlock.
func PutLinks(tx *gorm.DB, integrationID, kind string, remoteByLocal map[string]string) error {
	if len(remoteByLocal) == 0 {
		return nil
	}
	now := Now()
	rows := make([]CRMLink, 0, len(remoteByLocal))
	for _, local := range slices.Sorted(maps.Keys(remoteByLocal)) {
		rows = append(rows, CRMLink{IntegrationID: integrationID, Kind: kind, LocalID: local, RemoteID: remoteByLocal[local], CreatedAt: now})
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
		return fmt.Errorf("store: put links: %w", err)
	}
	return nil
}

// LinkByLocal returns the remote id of a local object, or ErrNotFound.
func LinkByLocal(tx *gorm.DB, integrationID, kind, localID string) (string, error) {
	var l CRMLink
	if err := tx.Where("integration_id = ? AND kind = ? AND local_id = ?", integrationID, kind, localID).First(&l).Error; err != nil {
		return "", notFound(err)
	}
	return l.RemoteID, nil
}

// LinkByRemote returns the local id known to the CRM as remoteID.
func LinkByRemote(tx *gorm.DB, integrationID, kind, remoteID string) (string, error) {
	var l CRMLink
	if err := tx.Where("integration_id = ? AND kind = ? AND remote_id = ?", integrationID, kind, remoteID).Order("id").First(&l).Error; err != nil {
		return "", notFound(err)
	}
	return l.LocalID, nil
}

// ---- OAuth states ----

type OAuthState struct {
	State       string `gorm:"primaryKey"`
	WorkspaceID string
	Provider    string
	Domain      string
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

func (OAuthState) TableName() string { return "oauth_states" }

// NewOAuthState stores a random, single-use state for an authorisation.
func (s *Store) NewOAuthState(ctx context.Context, workspaceID, provider, domain string, ttl time.Duration) (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	st := OAuthState{State: base64.RawURLEncoding.EncodeToString(raw), WorkspaceID: workspaceID, Provider: provider,
		Domain: domain, ExpiresAt: Now().Add(ttl), CreatedAt: Now()}
	if err := s.g(ctx).Create(&st).Error; err != nil {
		return "", fmt.Errorf("store: oauth state: %w", err)
	}
	return st.State, nil
}

// ConsumeOAuthState returns and deletes a live state; a state works once.
func (s *Store) ConsumeOAuthState(ctx context.Context, state, provider string) (*OAuthState, error) {
	var st OAuthState
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("state = ? AND provider = ?", state, provider).First(&st).Error; err != nil {
			return notFound(err)
		}
		res := tx.Where("state = ?", state).Delete(&OAuthState{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrNotFound // consumed concurrently
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if Now().After(st.ExpiresAt) {
		return nil, ErrNotFound
	}
	return &st, nil
}

// RememberOnce records key under provider until the given time and
// reports whether it is new: the second call with the same key, from any
// instance, gets false. It keeps single-use values that the gateway did
// not hand out itself (a disposable token's jti). Expired entries are
// forgotten by the next call of the same provider.
func (s *Store) RememberOnce(ctx context.Context, provider, key string, until time.Time) (bool, error) {
	if key == "" {
		return false, nil
	}
	now := Now()
	if err := s.g(ctx).Where("provider = ? AND expires_at < ?", provider, now).Delete(&OAuthState{}).Error; err != nil {
		return false, fmt.Errorf("store: forget expired %s: %w", provider, err)
	}
	st := OAuthState{State: provider + ":" + key, Provider: provider, ExpiresAt: until, CreatedAt: now}
	res := s.g(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&st)
	if res.Error != nil {
		return false, fmt.Errorf("store: remember %s: %w", provider, res.Error)
	}
	return res.RowsAffected == 1, nil
}
