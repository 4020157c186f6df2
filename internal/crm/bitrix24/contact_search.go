package bitrix24

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	phonenum "github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/store"
)

// findContactByPhone finds the portal's contact of a customer's number
// (E.164). Bitrix24's crm.duplicate.findbycomm compares its own key of a
// phone: formatting and extension stripped, a leading 8 read as 7, but no
// other guess — "912 345-67-89" typed without a country code is not
// found by +79123456789, and the Russian 8→7 reading applies even in a
// workspace whose customers are in Asia. So it is asked for every form
// the workspace's rule reads as this customer (phone.SearchVariants, one
// call), and the candidates' stored numbers are then read and confirmed
// with the same rule (phone.AnySame). Of several confirmed contacts the
// lowest id wins: the oldest record is the one the team has worked with,
// later ones being the duplicates, and the choice is the same on every
// retry. "" when none is confirmed.
func (s *Service) findContactByPhone(ctx context.Context, integrationID, phone string) (string, error) {
	in, err := s.store.GetIntegration(ctx, store.All, integrationID)
	if err != nil {
		return "", err
	}
	ws, err := s.store.GetWorkspace(ctx, store.All, in.WorkspaceID)
	if err != nil {
		return "", err
	}
	rule := phonenum.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion}
	variants := phonenum.SearchVariants(phone, rule)
	if len(variants) == 0 {
		return "", nil // not a number: nothing to find by
	}
	var raw json.RawMessage
	err = s.client.Call(ctx, integrationID, "crm.duplicate.findbycomm", map[string]any{
		"type": "PHONE", "values": variants, "entity_type": "CONTACT"}, &raw)
	if err != nil {
		return "", err
	}
	var found struct {
		Contact []json.Number `json:"CONTACT"`
	}
	if json.Unmarshal(raw, &found) != nil || len(found.Contact) == 0 {
		return "", nil // [] when nothing is found
	}
	ids := make([]string, len(found.Contact))
	for i, id := range found.Contact {
		ids[i] = id.String()
	}
	var rows []struct {
		ID    json.Number `json:"ID"`
		Phone []struct {
			Value string `json:"VALUE"`
		} `json:"PHONE"`
	}
	// findbycomm returns at most 20 per type, within one page of 50.
	err = s.client.Call(ctx, integrationID, "crm.contact.list", map[string]any{
		"filter": map[string]any{"@ID": ids}, "select": []string{"ID", "PHONE"}, "order": map[string]string{"ID": "ASC"}}, &rows)
	if err != nil {
		return "", err
	}
	var confirmed []int64
	for _, r := range rows {
		values := make([]string, len(r.Phone))
		for i, p := range r.Phone {
			values[i] = p.Value
		}
		id, err := r.ID.Int64()
		if err != nil {
			return "", fmt.Errorf("bitrix24: crm.contact.list id %q: %w", r.ID, err)
		}
		if phonenum.AnySame(values, phone, rule) {
			confirmed = append(confirmed, id)
		}
	}
	if len(confirmed) == 0 {
		s.log.Info("bitrix24: contacts found by phone are not this customer's number under the workspace rule",
			"integration_id", integrationID, "candidates", len(ids))
		return "", nil
	}
	return strconv.FormatInt(slices.Min(confirmed), 10), nil
}
