package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// InsertMedia stores a media row in the transaction of its message.
func InsertMedia(tx *gorm.DB, m *Media) error {
	if err := tx.Create(m).Error; err != nil {
		return fmt.Errorf("store: insert media: %w", err)
	}
	return nil
}

// DeleteMedia removes a media row whose message was not stored after all.
func DeleteMedia(tx *gorm.DB, id string) error {
	if err := tx.Where("id = ?", id).Delete(&Media{}).Error; err != nil {
		return fmt.Errorf("store: delete media %s: %w", id, err)
	}
	return nil
}

// SetMediaProviderID keeps the messenger's id of an uploaded file, so a
// retried send reuses the upload.
func (s *Store) SetMediaProviderID(ctx context.Context, id, providerID string) error {
	err := s.g(ctx).Model(&Media{}).Where("id = ?", id).
		Updates(map[string]any{"provider_id": providerID, "updated_at": Now()}).Error
	if err != nil {
		return fmt.Errorf("store: media %s provider id: %w", id, err)
	}
	return nil
}

// StoredFile is where a downloaded file now lies and what it is.
type StoredFile struct {
	Key      string
	Size     int64
	SHA256   string
	MimeType string
}

// MarkMediaStored records a file as downloaded into our storage.
func (s *Store) MarkMediaStored(ctx context.Context, id string, f StoredFile) error {
	err := s.g(ctx).Model(&Media{}).Where("id = ?", id).Updates(map[string]any{
		"state": MediaStored, "storage_key": f.Key, "size": f.Size,
		"sha256": f.SHA256, "mime_type": f.MimeType, "error": "", "updated_at": Now(),
	}).Error
	if err != nil {
		return fmt.Errorf("store: media %s stored: %w", id, err)
	}
	return nil
}

// MarkMediaFailed records why a file could not be downloaded.
func (s *Store) MarkMediaFailed(ctx context.Context, id, reason string) error {
	err := s.g(ctx).Model(&Media{}).Where("id = ?", id).
		Updates(map[string]any{"state": MediaFailed, "error": reason, "updated_at": Now()}).Error
	if err != nil {
		return fmt.Errorf("store: media %s failed: %w", id, err)
	}
	return nil
}
