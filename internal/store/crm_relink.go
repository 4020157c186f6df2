package store

import (
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ReplaceLink points a local object at another remote one, or links it
// for the first time: what a connector records when a customer's closed
// CRM record is replaced by a new one. PutLink, by contrast, never moves
// a link, so a retried creation cannot re-point it.
func ReplaceLink(tx *gorm.DB, integrationID, kind, localID, remoteID string) error {
	err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "integration_id"}, {Name: "kind"}, {Name: "local_id"}},
		DoUpdates: clause.Assignments(map[string]any{"remote_id": remoteID, "created_at": Now()}),
	}).Create(&CRMLink{IntegrationID: integrationID, Kind: kind, LocalID: localID, RemoteID: remoteID, CreatedAt: Now()}).Error
	if err != nil {
		return fmt.Errorf("store: replace link: %w", err)
	}
	return nil
}
