package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// chatRead is a cabinet user's read mark on a dialog.
type chatRead struct {
	UserID   string `gorm:"primaryKey"`
	DialogID string `gorm:"primaryKey"`
	ReadAt   time.Time
}

func (chatRead) TableName() string { return "chat_reads" }

// MarkDialogRead records that the cabinet user has seen the dialog up to
// now: their unread count starts again from here.
func (s *Store) MarkDialogRead(ctx context.Context, userID, dialogID string) error {
	err := s.g(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}, {Name: "dialog_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"read_at"}),
	}).Create(&chatRead{UserID: userID, DialogID: dialogID, ReadAt: Now()}).Error
	if err != nil {
		return fmt.Errorf("store: mark dialog read: %w", err)
	}
	return nil
}

// ChatUnread counts, for the cabinet user, the customer's messages of each
// dialog they have not seen: those after their read mark. A dialog they
// never opened counts what waits since the last answer (the dialog's own
// unread count), not its whole history. Two queries for any number of
// dialogs.
func (s *Store) ChatUnread(ctx context.Context, userID string, ds []DialogView) (map[string]int, error) {
	out := make(map[string]int, len(ds))
	if len(ds) == 0 {
		return out, nil
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
		out[d.ID] = d.UnreadCount
	}
	var marks []chatRead
	if err := s.g(ctx).Where("user_id = ? AND dialog_id IN ?", userID, ids).Find(&marks).Error; err != nil {
		return nil, fmt.Errorf("store: chat read marks: %w", err)
	}
	if len(marks) == 0 {
		return out, nil
	}
	marked := make([]string, len(marks))
	for i, m := range marks {
		marked[i] = m.DialogID
		out[m.DialogID] = 0
	}
	var rows []struct {
		DialogID string
		N        int
	}
	err := s.g(ctx).Raw(`SELECT r.dialog_id AS dialog_id, COUNT(m.id) AS n FROM chat_reads r
JOIN dialogs d ON d.id = r.dialog_id
JOIN messages m ON m.contact_id = d.contact_id AND m.channel_id = d.channel_id AND m.direction = ? AND m.created_at > r.read_at
WHERE r.user_id = ? AND r.dialog_id IN ?
GROUP BY r.dialog_id`, Inbound, userID, marked).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: chat unread: %w", err)
	}
	for _, r := range rows {
		out[r.DialogID] = r.N
	}
	return out, nil
}

// MessageChange is a message stored or changed (a status, an edit): what
// the shared chat's live updates tell the browsers of its workspace.
type MessageChange struct {
	ID          string
	WorkspaceID string
	ContactID   string
	UpdatedAt   time.Time
}

// MessagesChangedSince lists the messages changed after since, oldest
// change first, at most limit: the one query per interval the chat's live
// updates cost a gateway instance, whoever watches.
func (s *Store) MessagesChangedSince(ctx context.Context, since time.Time, limit int) ([]MessageChange, error) {
	var out []MessageChange
	err := s.g(ctx).Model(&Message{}).Select("id, workspace_id, contact_id, updated_at").
		Where("updated_at > ?", since.UTC()).Order("updated_at").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: messages changed: %w", err)
	}
	return out, nil
}
