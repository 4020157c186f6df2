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
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Links of a contact to CRM records, by kind.
const (
	linkCRMContact = "crm_contact"
	linkCRMLead    = "crm_lead"
	linkCRMDeal    = "crm_deal"
)

// linkRecordTry marks, per binding and customer ("binding id:contact
// id"), a batch that creates the customer's contact or record and whose
// outcome is not recorded yet: a run that finds it looks for what that
// call may have made (by ORIGIN_ID) before creating anything again.
const linkRecordTry = "crm_record_try"

// originator is the ORIGINATOR_ID (the external system) of the contacts
// and records we create; their ORIGIN_ID is our stable key for them
// (contactOrigin, recordOrigin), so a creation whose answer was lost is
// found again with a crm.*.list filter on the two.
const originator = "switchboard"

// contactOrigin is the ORIGIN_ID of the contact we create for a customer.
func contactOrigin(ct *store.Contact) string { return "c:" + ct.ID }

// recordOrigin is the ORIGIN_ID of the lead or deal we create for a
// customer of a binding; one replacing a closed record names it, so the
// replacement has a key of its own (the closed record keeps the old one).
func recordOrigin(b *store.ChannelBinding, ct *store.Contact, replaced string) string {
	k := "r:" + b.ID + ":" + ct.ID
	if replaced != "" {
		k += ":" + replaced
	}
	return k
}

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
	order, byContact := crm.ByCustomer(ready)
	closed, err := s.closedRecords(ctx, d, order)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, id := range order {
		msgs := byContact[id]
		n, err := s.mirrorCRMContact(ctx, d, msgs[0].Contact, msgs, loc, closed, nil)
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

// crmEntity is the kind of record a binding keeps conversations in, and
// the crm_links kind that ties a customer to it.
func crmEntity(b *store.ChannelBinding) (entity, link string) {
	if b.Entity == "deal" {
		return "deal", linkCRMDeal
	}
	return "lead", linkCRMLead
}

// closedRecords asks the portal which of the records linked to these
// customers are closed (a deal won or lost, a lead converted or junked),
// in one crm.*.list call for the whole mirror call. It asks only when
// the binding's on_repeat would act on the answer: under "last_closed"
// a closed record is written into like an open one.
func (s *Service) closedRecords(ctx context.Context, d *routing.Delivery, contactIDs []string) (map[string]bool, error) {
	p, err := routing.PolicyOf(d.Binding)
	if err != nil {
		return nil, queue.Permanent(err)
	}
	if !routing.StartNewRecord(p, true) {
		return nil, nil
	}
	entity, link := crmEntity(d.Binding)
	var ids []string
	for _, c := range contactIDs {
		id, err := crm.RecordLink(ctx, s.store, d.Binding, link, c, entity)
		if err != nil {
			return nil, err
		}
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// A mirror call carries at most routing.MaxBatch customers, and a
	// list page holds 50 rows: one call.
	var rows []struct {
		ID        string `json:"ID"`
		Closed    string `json:"CLOSED"`
		StageSem  string `json:"STAGE_SEMANTIC_ID"`
		StatusSem string `json:"STATUS_SEMANTIC_ID"`
	}
	sel := []string{"ID", "CLOSED", "STAGE_SEMANTIC_ID"}
	if entity == "lead" {
		sel = []string{"ID", "STATUS_SEMANTIC_ID"}
	}
	if err := s.client.Call(ctx, d.Integration.ID, "crm."+entity+".list", map[string]any{
		"filter": map[string]any{"@ID": ids}, "select": sel}, &rows); err != nil {
		return nil, s.classify(err)
	}
	closed := map[string]bool{}
	for _, r := range rows {
		sem := r.StageSem
		if entity == "lead" {
			sem = r.StatusSem
		}
		if r.Closed == "Y" || sem == "S" || sem == "F" {
			closed[r.ID] = true
		}
	}
	return closed, nil
}

// recordPlan is how one mirror call gets the customer's contact and
// record: the ids it has, the batch commands that create what is missing,
// and the references later commands use for them.
type recordPlan struct {
	entity, link        string
	contactID, entityID string // known ids; "" while the plan creates them
	contactRef          string // contactID or "$result[contact]"
	entityRef           string // entityID or "$result[entity]"
	cmds                []BatchCommand
	owner               routing.NewOwner
	// replaced is the closed record a new one replaces (on_repeat new).
	replaced string
	// recovered is the record an earlier, unfinished call made (found by
	// its ORIGIN_ID): linked like a created one, not created again.
	recovered string
	// tried: the creation is marked (linkRecordTry) until linkRecord
	// records its outcome.
	tried bool
}

// planRecord finds the customer's contact (by link, then by phone) and
// record (by link), and plans the creation of what is missing. A new
// record's owner is the binding's policy's choice, the installing user
// without one; a closed record is replaced when the policy says so.
func (s *Service) planRecord(ctx context.Context, d *routing.Delivery, ct *store.Contact, closed map[string]bool) (*recordPlan, error) {
	in, b := d.Integration, d.Binding
	pl := &recordPlan{}
	pl.entity, pl.link = crmEntity(b)
	var err error
	// An unlinked customer or record is created below.
	pl.contactID, err = s.store.RemoteOf(ctx, in.ID, linkCRMContact, ct.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	// The customer's record under an earlier binding of the channel is
	// taken over (crm.RecordLink says why).
	if pl.entityID, err = crm.RecordLink(ctx, s.store, b, pl.link, ct.ID, pl.entity); err != nil {
		return nil, err
	}
	if pl.entityID != "" && closed[pl.entityID] {
		pl.replaced, pl.entityID = pl.entityID, ""
	}
	if pl.contactID == "" && ct.Phone != "" {
		found, err := s.findContactByPhone(ctx, in.ID, ct.Phone)
		if err != nil {
			return nil, s.classify(err)
		}
		pl.contactID = found
	}
	if pl.contactID == "" || pl.entityID == "" {
		if err := s.recoverRecord(ctx, d, ct, pl); err != nil {
			return nil, err
		}
	}
	owner := in.InstalledBy
	if pl.entityID == "" {
		if pl.owner, err = routing.OwnerForNewRecord(ctx, s.store, b, ct.ID); err != nil {
			return nil, err
		}
		owner = cmp.Or(pl.owner.UserID, owner)
		if pl.owner.Reason == routing.OwnerNobodyActive {
			s.log.Warn("bitrix24: nobody in the owner group is active; the record goes to the installing user",
				"integration_id", in.ID, "binding_id", b.ID, "contact_id", ct.ID, "user_id", owner)
		}
	}
	typ := channel.Type(d.Channel.Type)
	source := crmSources[typ]
	sourceDesc := fmt.Sprintf("%s %s (%s)", connectorLabel(typ), cmp.Or(d.Channel.DisplayPhone, d.Channel.AccountID), d.Channel.Name)
	first, last := splitName(cmp.Or(ct.Name, ct.Username, ct.Phone, ct.ExternalID))

	pl.contactRef = pl.contactID
	if pl.contactID == "" {
		// A contact we create is the new record's owner's; one found in
		// the CRM keeps whoever has it there.
		fields := map[string]any{"NAME": first, "LAST_NAME": last, "OPENED": "Y", "SOURCE_ID": source, "SOURCE_DESCRIPTION": sourceDesc,
			"ORIGINATOR_ID": originator, "ORIGIN_ID": contactOrigin(ct)}
		if ct.Phone != "" {
			fields["PHONE"] = []map[string]any{{"VALUE": ct.Phone, "VALUE_TYPE": "MOBILE"}}
		}
		if owner != "" {
			fields["ASSIGNED_BY_ID"] = owner
		}
		pl.cmds = append(pl.cmds, BatchCommand{Name: "contact", Method: "crm.contact.add", Params: map[string]any{"fields": fields}})
		pl.contactRef = "$result[contact]"
	}
	pl.entityRef = pl.entityID
	if pl.entityID == "" {
		title := fmt.Sprintf("%s: %s", connectorLabel(typ), NeutralizeBB(cmp.Or(ct.Name, ct.Phone, ct.Username, ct.ExternalID)))
		fields := map[string]any{"TITLE": title, "SOURCE_ID": source, "SOURCE_DESCRIPTION": sourceDesc, "OPENED": "Y",
			"ORIGINATOR_ID": originator, "ORIGIN_ID": recordOrigin(b, ct, pl.replaced)}
		if owner != "" {
			fields["ASSIGNED_BY_ID"] = owner
		}
		if pl.entity == "deal" {
			fields["CONTACT_ID"] = pl.contactRef
			fields["CATEGORY_ID"] = cmp.Or(b.CategoryID, "0")
			if b.StageID != "" {
				fields["STAGE_ID"] = b.StageID
			}
		} else {
			fields["CONTACT_ID"] = pl.contactRef
			fields["NAME"], fields["LAST_NAME"] = first, last
			if b.StageID != "" {
				fields["STATUS_ID"] = b.StageID
			}
			if ct.Phone != "" {
				fields["PHONE"] = []map[string]any{{"VALUE": ct.Phone, "VALUE_TYPE": "MOBILE"}}
			}
		}
		pl.cmds = append(pl.cmds, BatchCommand{Name: "entity", Method: "crm." + pl.entity + ".add", Params: map[string]any{"fields": fields}})
		pl.entityRef = "$result[entity]"
	}
	return pl, nil
}

// recoverRecord marks the creation of the customer's contact or record
// the plan is about to make (linkRecordTry) and, when an earlier call's
// mark is still there (that call did not see its answer: the process
// died, or the answer was lost after the portal had done the work), asks
// the portal first for what that call may have made, by ORIGINATOR_ID
// and ORIGIN_ID, in one batch: a record found becomes the plan's, with
// the owner it was given; a contact found likewise. A portal that cannot
// be asked fails the call: creating blind could create twice.
func (s *Service) recoverRecord(ctx context.Context, d *routing.Delivery, ct *store.Contact, pl *recordPlan) error {
	in, b := d.Integration, d.Binding
	local := b.ID + ":" + ct.ID
	doubt, err := s.store.MarkMirrorAttempts(ctx, in.ID, b.ID, linkRecordTry, []string{local})
	if err != nil {
		return err
	}
	pl.tried = true
	if !doubt[local] {
		return nil
	}
	find := func(name, entity, origin string) BatchCommand {
		return BatchCommand{Name: name, Method: "crm." + entity + ".list", Params: map[string]any{
			"filter": map[string]any{"ORIGINATOR_ID": originator, "ORIGIN_ID": origin},
			"select": []string{"ID", "ASSIGNED_BY_ID"},
			"order":  map[string]any{"ID": "ASC"},
		}}
	}
	var cmds []BatchCommand
	if pl.entityID == "" {
		cmds = append(cmds, find("entity", pl.entity, recordOrigin(b, ct, pl.replaced)))
	}
	if pl.contactID == "" {
		cmds = append(cmds, find("contact", "contact", contactOrigin(ct)))
	}
	res, err := s.client.Batch(ctx, in.ID, cmds, true)
	if err != nil {
		return s.classify(err)
	}
	type row struct {
		ID         string `json:"ID"`
		AssignedBy string `json:"ASSIGNED_BY_ID"`
	}
	for _, c := range cmds {
		var rows []row
		if err := res.Decode(c.Name, &rows); err != nil {
			return s.classify(err)
		}
		if len(rows) == 0 {
			continue
		}
		if c.Name == "entity" {
			pl.entityID, pl.recovered = rows[0].ID, rows[0].ID
			pl.owner = routing.NewOwner{UserID: rows[0].AssignedBy}
		} else {
			pl.contactID = rows[0].ID
		}
		s.log.Info("bitrix24: a "+c.Name+" an unfinished call made is found and not made again",
			"integration_id", in.ID, "binding_id", b.ID, "contact_id", ct.ID, "crm_id", rows[0].ID)
	}
	return nil
}

// linkRecord records what the batch created (even if a later comment
// failed, so a retry does not create the contact or the record twice),
// re-links a customer whose closed record was replaced, and tells the
// dialog its record and owner. end, when set and the batch had no error,
// is the running job that ends (queue.Done) in this commit: the links are
// its last write. The creation's try mark (linkRecordTry) was committed
// on its own before the call, so a run whose commit fails here (its lease
// lost) leaves the creation in doubt and the next run finds it.
func (s *Service) linkRecord(ctx context.Context, d *routing.Delivery, ct *store.Contact, pl *recordPlan, res *BatchResult, end *queue.Job) error {
	in, b := d.Integration, d.Binding
	return s.store.Tx(ctx, func(tx *gorm.DB) error {
		if err := s.putRecordLinks(tx, in, b, ct, pl, res); err != nil {
			return err
		}
		if end == nil || len(res.Errors) > 0 {
			return nil
		}
		return queue.Done(tx, end)
	})
}

// putRecordLinks is linkRecord's writes, in tx.
func (s *Service) putRecordLinks(tx *gorm.DB, in *store.Integration, b *store.ChannelBinding, ct *store.Contact, pl *recordPlan, res *BatchResult) error {
	if id := cmp.Or(resultID(res.Results["contact"]), pl.contactID); id != "" {
		if err := store.PutLink(tx, in.ID, linkCRMContact, ct.ID, id); err != nil {
			return err
		}
	}
	created := cmp.Or(resultID(res.Results["entity"]), pl.recovered)
	recordSettled := created != "" || pl.entityID != ""
	contactSettled := pl.contactRef == pl.contactID || resultID(res.Results["contact"]) != ""
	if pl.tried && recordSettled && contactSettled {
		// Everything the plan made is linked in this commit: the
		// creation is no longer in doubt.
		if err := store.DropLinks(tx, in.ID, linkRecordTry, []string{b.ID + ":" + ct.ID}); err != nil {
			return err
		}
	}
	if created == "" {
		return nil
	}
	put := store.PutLink
	if pl.replaced != "" {
		put = store.ReplaceLink
	}
	if err := put(tx, in.ID, pl.link, b.ID+":"+ct.ID, created); err != nil {
		return err
	}
	k := store.DialogKey{WorkspaceID: b.WorkspaceID, IntegrationID: in.ID, ChannelID: b.ChannelID, ContactID: ct.ID}
	if err := store.SetDialogCRM(tx, k, store.DialogCRM{Entity: pl.entity, EntityID: created, OwnerUserID: pl.owner.UserID}); err != nil {
		return err
	}
	if pl.owner.Reason == routing.OwnerWaiting {
		// A member may claim the customer between the owner's choice
		// and this link; their reassignment found no record then.
		// This job, run after the link commits, applies such a claim
		// (and costs no call when there is none).
		return enqueueAssign(tx, b, ct.ID)
	}
	return nil
}

// mirrorCRMContact mirrors one customer's messages; it returns how many,
// from the start, reached the timeline. end, when set, is the running job
// whose last step this is: it ends in the commit of the links
// (linkRecord) when nothing failed.
func (s *Service) mirrorCRMContact(ctx context.Context, d *routing.Delivery, ct *store.Contact, msgs []store.MessageView, loc *time.Location, closed map[string]bool, end *queue.Job) (int, error) {
	pl, err := s.planRecord(ctx, d, ct, closed)
	if err != nil {
		return 0, err
	}
	texts := make([]string, len(msgs))
	for i := range msgs {
		texts[i] = s.timelineText(d, ct, &msgs[i], loc)
	}
	// A prefix of the customer's messages an earlier call may have
	// written (in doubt) and that is on the record already is not written
	// again.
	found, err := s.commentsWritten(ctx, d, pl, msgs, texts)
	if err != nil {
		return 0, err
	}
	msgs, texts = msgs[found:], texts[found:]
	cmds := pl.cmds
	for i := range msgs {
		cmds = append(cmds, BatchCommand{Name: "comment" + strconv.Itoa(i), Method: "crm.timeline.comment.add", Params: map[string]any{
			"fields": map[string]any{"ENTITY_ID": pl.entityRef, "ENTITY_TYPE": pl.entity, "COMMENT": texts[i]},
		}})
	}
	res := &BatchResult{}
	if len(cmds) > 0 {
		if res, err = s.client.Batch(ctx, d.Integration.ID, cmds, true); err != nil {
			return found, s.classify(err)
		}
	} else if found > 0 && pl.recovered == "" && !pl.tried {
		return found, nil // all there, the record too: nothing to link
	}
	if err := s.linkRecord(ctx, d, ct, pl, res, end); err != nil {
		return 0, err
	}
	done := found
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

// commentsWritten counts how many of the customer's first messages an
// earlier call may have written (d.InDoubt) are on the record already, by
// their comment's exact text among the record's comments. Only a record
// that exists is read (one the plan creates has none), and the count
// stops at the first message not in doubt or not found, so the
// customer's order holds. A record that cannot be read fails the call:
// writing blind could write twice.
func (s *Service) commentsWritten(ctx context.Context, d *routing.Delivery, pl *recordPlan, msgs []store.MessageView, texts []string) (int, error) {
	if pl.entityID == "" || len(msgs) == 0 || !d.InDoubt[msgs[0].ID] {
		return 0, nil
	}
	res, err := s.client.Batch(ctx, d.Integration.ID, []BatchCommand{{Name: "l", Method: "crm.timeline.comment.list", Params: map[string]any{
		"filter": map[string]any{"ENTITY_ID": pl.entityID, "ENTITY_TYPE": pl.entity},
		"select": []string{"ID", "COMMENT"},
		"order":  map[string]any{"ID": "DESC"},
	}}}, true)
	if err != nil {
		return 0, s.classify(err)
	}
	var list []struct {
		Comment string `json:"COMMENT"`
	}
	if err := res.Decode("l", &list); err != nil {
		return 0, err
	}
	on := make(map[string]bool, len(list))
	for _, c := range list {
		on[c.Comment] = true
	}
	n := 0
	for n < len(msgs) && d.InDoubt[msgs[n].ID] && on[texts[n]] {
		n++
	}
	if n > 0 {
		s.log.Info("bitrix24: comments found on the record after an unfinished call, not written again",
			"integration_id", d.Integration.ID, "messages", n)
	}
	return n, nil
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
