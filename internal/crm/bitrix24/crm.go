package bitrix24

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Links of a contact to CRM records, by kind.
const (
	linkCRMContact = "crm_contact"
	linkCRMLead    = "crm_lead"
	linkCRMDeal    = "crm_deal"
)

// Sources we add to the portal's CRM so records carry their channel.
var crmSources = map[channel.Type]string{channel.WhatsApp: "WHATSAPP", channel.Instagram: "INSTAGRAM"}

// mirrorCRM is direct CRM mode: find the customer's contact by phone (or
// create it), make a lead or deal in the chosen pipeline and stage, and
// write the messages into its timeline — the creations and comments in one
// batch call.
func (s *Service) mirrorCRM(ctx context.Context, d *routing.Delivery, ready []store.MessageView, waiting bool) ([]string, error) {
	loc := time.UTC
	if ws, err := s.store.GetWorkspace(ctx, store.All, d.Integration.WorkspaceID); err == nil {
		if l, err := time.LoadLocation(ws.Timezone); err == nil {
			loc = l
		}
	}
	var order []string
	byContact := map[string][]store.MessageView{}
	for _, m := range ready {
		if _, ok := byContact[m.ContactID]; !ok {
			order = append(order, m.ContactID)
		}
		byContact[m.ContactID] = append(byContact[m.ContactID], m)
	}
	var done []string
	for _, id := range order {
		msgs := byContact[id]
		n, err := s.mirrorCRMContact(ctx, d, msgs[0].Contact, msgs, loc)
		for _, m := range msgs[:n] {
			done = append(done, m.ID)
		}
		if err != nil {
			return done, err
		}
	}
	if waiting {
		return done, errMediaPending
	}
	return done, nil
}

// mirrorCRMContact mirrors one customer's messages; it returns how many,
// from the start, reached the timeline.
func (s *Service) mirrorCRMContact(ctx context.Context, d *routing.Delivery, ct *store.Contact, msgs []store.MessageView, loc *time.Location) (int, error) {
	in, b := d.Integration, d.Binding
	entity := b.Entity
	if entity != "deal" {
		entity = "lead"
	}
	entityLink := linkCRMLead
	if entity == "deal" {
		entityLink = linkCRMDeal
	}
	// An unlinked customer or record is created below.
	contactID, err := s.store.RemoteOf(ctx, in.ID, linkCRMContact, ct.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	entityID, err := s.store.RemoteOf(ctx, in.ID, entityLink, b.ID+":"+ct.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}

	if contactID == "" && ct.Phone != "" {
		found, err := s.findContactByPhone(ctx, in.ID, ct.Phone)
		if err != nil {
			return 0, s.classify(err)
		}
		contactID = found
	}
	typ := channel.Type(d.Channel.Type)
	source := crmSources[typ]
	sourceDesc := fmt.Sprintf("%s %s (%s)", connectorLabel(typ), cmp.Or(d.Channel.DisplayPhone, d.Channel.AccountID), d.Channel.Name)
	owner := in.InstalledBy
	first, last := splitName(cmp.Or(ct.Name, ct.Username, ct.Phone, ct.ExternalID))

	var cmds []BatchCommand
	contactRef := contactID
	if contactID == "" {
		fields := map[string]any{"NAME": first, "LAST_NAME": last, "OPENED": "Y", "SOURCE_ID": source, "SOURCE_DESCRIPTION": sourceDesc}
		if ct.Phone != "" {
			fields["PHONE"] = []map[string]any{{"VALUE": ct.Phone, "VALUE_TYPE": "MOBILE"}}
		}
		if owner != "" {
			fields["ASSIGNED_BY_ID"] = owner
		}
		cmds = append(cmds, BatchCommand{Name: "contact", Method: "crm.contact.add", Params: map[string]any{"fields": fields}})
		contactRef = "$result[contact]"
	}
	entityRef := entityID
	if entityID == "" {
		title := fmt.Sprintf("%s: %s", connectorLabel(typ), NeutralizeBB(cmp.Or(ct.Name, ct.Phone, ct.Username, ct.ExternalID)))
		fields := map[string]any{"TITLE": title, "SOURCE_ID": source, "SOURCE_DESCRIPTION": sourceDesc, "OPENED": "Y"}
		if owner != "" {
			fields["ASSIGNED_BY_ID"] = owner
		}
		if entity == "deal" {
			fields["CONTACT_ID"] = contactRef
			fields["CATEGORY_ID"] = cmp.Or(b.CategoryID, "0")
			if b.StageID != "" {
				fields["STAGE_ID"] = b.StageID
			}
		} else {
			fields["CONTACT_ID"] = contactRef
			fields["NAME"], fields["LAST_NAME"] = first, last
			if b.StageID != "" {
				fields["STATUS_ID"] = b.StageID
			}
			if ct.Phone != "" {
				fields["PHONE"] = []map[string]any{{"VALUE": ct.Phone, "VALUE_TYPE": "MOBILE"}}
			}
		}
		cmds = append(cmds, BatchCommand{Name: "entity", Method: "crm." + entity + ".add", Params: map[string]any{"fields": fields}})
		entityRef = "$result[entity]"
	}
	for i := range msgs {
		cmds = append(cmds, BatchCommand{Name: "comment" + strconv.Itoa(i), Method: "crm.timeline.comment.add", Params: map[string]any{
			"fields": map[string]any{"ENTITY_ID": entityRef, "ENTITY_TYPE": entity, "COMMENT": s.timelineText(d, ct, &msgs[i], loc)},
		}})
	}
	res, err := s.client.Batch(ctx, in.ID, cmds, true)
	if err != nil {
		return 0, s.classify(err)
	}
	// Record what was created even if a later comment failed, so a retry
	// does not create the contact or the deal twice.
	err = s.store.Tx(ctx, func(tx *gorm.DB) error {
		if id := resultID(res.Results["contact"]); id != "" {
			if err := store.PutLink(tx, in.ID, linkCRMContact, ct.ID, id); err != nil {
				return err
			}
		} else if contactID != "" {
			if err := store.PutLink(tx, in.ID, linkCRMContact, ct.ID, contactID); err != nil {
				return err
			}
		}
		if id := resultID(res.Results["entity"]); id != "" {
			return store.PutLink(tx, in.ID, entityLink, b.ID+":"+ct.ID, id)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	done := 0
	for i := range msgs {
		if _, ok := res.Results["comment"+strconv.Itoa(i)]; !ok {
			break
		}
		done++
	}
	for name, e := range res.Errors {
		return done, fmt.Errorf("bitrix24: crm mirror %s: %w", name, e)
	}
	return done, nil
}

func connectorLabel(t channel.Type) string {
	if t == channel.Instagram {
		return "Instagram"
	}
	return "WhatsApp"
}

func resultID(raw json.RawMessage) string {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" || s == "false" {
		return ""
	}
	return s
}

func (s *Service) timelineText(d *routing.Delivery, ct *store.Contact, m *store.MessageView, loc *time.Location) string {
	lang := d.Integration.Language
	// The comment is signed with the contact the timeline belongs to.
	withContact := *m
	withContact.Contact = ct
	r := s.render(&withContact, lang)
	who := NeutralizeBB(r.Author)
	text := InboundText(r)
	for _, f := range r.Files {
		text = strings.TrimSpace(text + "\n" + f.URL)
	}
	when := m.CreatedAt
	if m.ProviderAt != nil {
		when = *m.ProviderAt
	}
	return fmt.Sprintf("%s · %s · %s\n%s", connectorLabel(channel.Type(d.Channel.Type)), who, when.In(loc).Format("02.01.2006 15:04 MST"), text)
}
