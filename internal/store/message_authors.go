package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Kinds of MessageAuthor: who wrote an outbound message.
const (
	// AuthorCabinet is a cabinet user (UserID their cabinet id).
	AuthorCabinet = "cabinet"
	// AuthorCRM is a CRM's user (UserID their id in the CRM; the
	// integration is the message's origin link).
	AuthorCRM = "crm"
	// AuthorAPI is an API client (a token).
	AuthorAPI = "api"
	// AuthorAuto is the gateway's own automatic message (the branch menu).
	AuthorAuto = "auto"
	// AuthorRobot is a CRM's automation (UserID names the CRM's type:
	// "bitrix24", "amocrm").
	AuthorRobot = "robot"
)

// MessageAuthor says who wrote an outbound message, as it was when the
// message was sent: the chat views name the colleague who answered.
type MessageAuthor struct {
	MessageID   string `gorm:"primaryKey"`
	WorkspaceID string
	Kind        string
	UserID      string
	// Name is the author's name when the message was sent ("" when it
	// was not known); a rename later does not rewrite the history.
	Name      string
	CreatedAt time.Time
}

// InsertMessageAuthor records a's authorship of its message, in the
// transaction that stores the message.
func InsertMessageAuthor(tx *gorm.DB, a *MessageAuthor) error {
	a.CreatedAt = Now()
	if err := tx.Create(a).Error; err != nil {
		return fmt.Errorf("store: message author: %w", err)
	}
	return nil
}

// MessageAuthorOf is the author of message id of workspace workspaceID,
// nil when none is recorded.
func (s *Store) MessageAuthorOf(ctx context.Context, workspaceID, id string) (*MessageAuthor, error) {
	var a MessageAuthor
	err := s.g(ctx).Where("message_id = ? AND workspace_id = ?", id, workspaceID).First(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: message author: %w", err)
	}
	return &a, nil
}

// withAuthors sets the Author of the outbound messages among vs. An
// author row is read only with its message's own workspace, so a row
// that names another workspace never shows.
func (s *Store) withAuthors(ctx context.Context, vs []MessageView) error {
	var ids []string
	for _, v := range vs {
		if v.Direction == Outbound {
			ids = append(ids, v.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var rows []MessageAuthor
	if err := s.g(ctx).Where("message_id IN ?", ids).Find(&rows).Error; err != nil {
		return fmt.Errorf("store: message authors: %w", err)
	}
	by := make(map[string]*MessageAuthor, len(rows))
	for i := range rows {
		by[rows[i].MessageID] = &rows[i]
	}
	for i := range vs {
		if a := by[vs[i].ID]; a != nil && a.WorkspaceID == vs[i].WorkspaceID {
			vs[i].Author = a
		}
	}
	return nil
}

// CRMUserName is an integration's user's stored name, "" when unknown.
func (s *Store) CRMUserName(ctx context.Context, integrationID, userID string) (string, error) {
	var u CRMUser
	err := s.g(ctx).Where("integration_id = ? AND user_id = ?", integrationID, userID).First(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: crm user: %w", err)
	}
	return u.Name, nil
}
