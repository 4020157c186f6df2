package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// QuickReply is one of a workspace's canned answers for the shared chat:
// a short title to pick it by, its text and optionally one file, kept in
// the media store under FileKey (empty: none).
type QuickReply struct {
	ID          string `gorm:"primaryKey"`
	WorkspaceID string
	Title       string
	Text        string
	FileKey     string
	Filename    string
	MimeType    string
	FileSize    int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// QuickReplyMax bounds a workspace's quick replies: a picker, not a
// library.
const QuickReplyMax = 200

// ListQuickReplies lists the scope's quick replies by title.
func (s *Store) ListQuickReplies(ctx context.Context, sc Scope) ([]QuickReply, error) {
	var out []QuickReply
	if err := sc.apply(s.g(ctx)).Order("title, id").Limit(QuickReplyMax).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: quick replies: %w", err)
	}
	return out, nil
}

// CountQuickReplies counts a workspace's quick replies.
func (s *Store) CountQuickReplies(ctx context.Context, workspaceID string) (int64, error) {
	var n int64
	if err := s.g(ctx).Model(&QuickReply{}).Where("workspace_id = ?", workspaceID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("store: count quick replies: %w", err)
	}
	return n, nil
}

// GetQuickReply loads a quick reply of the scope; another workspace's is
// ErrNotFound.
func (s *Store) GetQuickReply(ctx context.Context, sc Scope, id string) (*QuickReply, error) {
	var q QuickReply
	err := sc.apply(s.g(ctx)).Where("id = ?", id).First(&q).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: quick reply %s: %w", id, err)
	}
	return &q, nil
}

// CreateQuickReply stores a new quick reply (ID and times set here).
func (s *Store) CreateQuickReply(ctx context.Context, q *QuickReply) error {
	if q.ID == "" {
		q.ID = NewID()
	}
	q.CreatedAt = Now()
	q.UpdatedAt = q.CreatedAt
	if err := s.g(ctx).Create(q).Error; err != nil {
		return fmt.Errorf("store: create quick reply: %w", err)
	}
	return nil
}

// UpdateQuickReply saves a quick reply's title, text and file of the
// scope; ErrNotFound when it is not there.
func (s *Store) UpdateQuickReply(ctx context.Context, sc Scope, q *QuickReply) error {
	q.UpdatedAt = Now()
	res := sc.apply(s.g(ctx).Model(&QuickReply{})).Where("id = ?", q.ID).Updates(map[string]any{
		"title": q.Title, "text": q.Text, "file_key": q.FileKey, "filename": q.Filename,
		"mime_type": q.MimeType, "file_size": q.FileSize, "updated_at": q.UpdatedAt})
	if res.Error != nil {
		return fmt.Errorf("store: update quick reply %s: %w", q.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteQuickReply removes a quick reply of the scope and returns it (its
// file is the caller's to remove); ErrNotFound when it is not there.
func (s *Store) DeleteQuickReply(ctx context.Context, sc Scope, id string) (*QuickReply, error) {
	var q QuickReply
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		if err := sc.apply(tx).Where("id = ?", id).First(&q).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrNotFound
			}
			return err
		}
		return tx.Where("id = ?", id).Delete(&QuickReply{}).Error
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: delete quick reply %s: %w", id, err)
	}
	return &q, nil
}
