package amocrm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Links of a customer to the account's records (crm_links kinds; each
// integration keeps its own, so the names may be Bitrix24's).
const (
	// linkContact ties a store contact to its amoCRM contact.
	linkContact = "crm_contact"
	// linkLead ties binding id + ":" + store contact to the lead the
	// binding writes the customer's messages into (a new binding of the
	// channel takes the dialog's lead over: crm.RecordLink).
	linkLead = "crm_lead"
	// linkLeadTry marks, per binding and customer, a lead creation whose
	// outcome is not recorded yet (recoverLeads).
	linkLeadTry = "crm_lead_try"
)

// leadClockSlack widens the window in which a lead made by an unfinished
// call is looked for: amoCRM's clock (created_at) against ours (the mark).
const leadClockSlack = 5 * time.Minute

// The Service is routing's connector for amoCRM accounts.
var _ routing.Connector = (*Service)(nil)

// Mirror writes customers' messages, and ours to them (OutboundMirror), as notes on their leads (mirror mode
// "each"): the leads missing are created first, all of the call's new
// customers in one POST /api/v4/leads/complex, then every message becomes
// one common note, all notes in one POST /api/v4/leads/notes (50 a call).
//
// One note per message rather than one per call: a note carries its
// message's own author line and time, so the lead's feed reads as the
// conversation did, and a message is mirrored once it is written (a retry
// never rewrites a whole call's text); the notes go in one array, so it
// costs no more calls than one note per call would.
func (s *Service) Mirror(ctx context.Context, d *routing.Delivery, msgs []store.MessageView) ([]string, error) {
	order, by := byCustomer(msgs)
	authors, err := s.authors(ctx, d.Integration, msgs)
	if err != nil {
		return nil, err
	}
	leads, leadErr := s.ensureLeads(ctx, d, order, nil, nil)
	loc := s.location(ctx, d.Integration)
	var plan []plannedNote
	for _, ct := range order {
		lead, ok := leads[ct.ID]
		if !ok {
			continue // its lead could not be made: its messages wait
		}
		for i := range by[ct.ID] {
			m := &by[ct.ID][i]
			for _, part := range SplitText(s.noteText(d, ct, m, loc, authors), NoteTextLimit) {
				plan = append(plan, plannedNote{msgID: m.ID, note: NoteInput{EntityID: lead, NoteType: NoteCommon, Params: NoteParams{Text: part}}})
			}
		}
	}
	plan, found, err := s.skipWritten(ctx, d, plan)
	if err != nil {
		return nil, err
	}
	for i := range plan {
		plan[i].note.RequestID = strconv.Itoa(i)
	}
	written, err := s.writeNotes(ctx, d.Integration, plan)
	if gone := goneLeads(err, plan); len(gone) > 0 {
		// A user deleted a customer's lead: the customer gets a new one
		// and the rest of the notes go there.
		s.log.Warn("amocrm: leads deleted in the account are replaced", "integration_id", d.Integration.ID, "leads", len(gone))
		var again []*store.Contact
		for _, ct := range order {
			if gone[leads[ct.ID]] {
				again = append(again, ct)
			}
		}
		fresh, ferr := s.ensureLeads(ctx, d, again, gone, nil)
		rest := plan[written:]
		for i := range rest {
			if id := rest[i].note.EntityID; gone[id] {
				for _, ct := range again {
					if leads[ct.ID] == id && fresh[ct.ID] != 0 {
						rest[i].note.EntityID = fresh[ct.ID]
					}
				}
			}
			if gone[rest[i].note.EntityID] {
				rest = rest[:i] // its customer has no lead yet: stop there
				break
			}
		}
		var more int
		more, err = s.writeNotes(ctx, d.Integration, rest)
		written += more
		err = cmp.Or(err, ferr)
	}
	// A message counts once all its notes are written; notes go in the
	// customers' order, so what is done is a prefix of each customer's.
	done := found
	for i := 0; i < written; i++ {
		if i+1 == len(plan) || plan[i+1].msgID != plan[i].msgID {
			done = append(done, plan[i].msgID)
		}
	}
	return done, cmp.Or(err, leadErr)
}

// skipWritten takes out of the plan the notes of messages an earlier call
// may have written (d.InDoubt) that are on their lead already, reading
// each such lead's common notes once, and returns those messages as
// found. A message counts as found only when every note of it is there.
// A lead that cannot be read fails the call: writing blind could write
// twice.
func (s *Service) skipWritten(ctx context.Context, d *routing.Delivery, plan []plannedNote) ([]plannedNote, []string, error) {
	texts := map[int]map[string]bool{}
	missing := map[string]bool{} // in doubt, a note of it not found
	doubt := false
	for _, p := range plan {
		if !d.InDoubt[p.msgID] {
			continue
		}
		doubt = true
		lead := p.note.EntityID
		if _, read := texts[lead]; !read {
			got, err := s.API(d.Integration).LeadNotes(ctx, lead, NoteCommon)
			if err != nil {
				return nil, nil, Classify(err)
			}
			texts[lead] = map[string]bool{}
			for _, t := range got {
				texts[lead][t] = true
			}
		}
		if !texts[lead][p.note.Params.Text] {
			missing[p.msgID] = true
		}
	}
	if !doubt {
		return plan, nil, nil
	}
	var found []string
	kept := plan[:0:0]
	for i, p := range plan {
		if d.InDoubt[p.msgID] && !missing[p.msgID] {
			if i+1 == len(plan) || plan[i+1].msgID != p.msgID {
				found = append(found, p.msgID)
			}
			continue
		}
		kept = append(kept, p)
	}
	if len(found) > 0 {
		s.log.Info("amocrm: notes found on their leads after an unfinished call, not written again",
			"integration_id", d.Integration.ID, "messages", len(found))
	}
	return kept, found, nil
}

// plannedNote is one note to write and the message it is (part of).
type plannedNote struct {
	msgID string
	note  NoteInput
}

// writeNotes adds the notes in calls of MaxBatch and returns how many,
// from the start, were written. A refused call writes nothing of its
// batch (amoCRM validates the whole array first).
func (s *Service) writeNotes(ctx context.Context, in *store.Integration, plan []plannedNote) (int, error) {
	api := s.API(in)
	written := 0
	for written < len(plan) {
		n := min(len(plan)-written, MaxBatch)
		notes := make([]NoteInput, n)
		for i := range notes {
			notes[i] = plan[written+i].note
		}
		if _, err := api.AddNotes(ctx, "leads", notes); err != nil {
			return written, Classify(err)
		}
		written += n
	}
	return written, nil
}

// goneLeads are the leads a refused notes call named as not found.
func goneLeads(err error, plan []plannedNote) map[int]bool {
	var gone map[int]bool
	for rid, errs := range ItemErrors(err) {
		i, aerr := strconv.Atoi(rid)
		if aerr != nil || i < 0 || i >= len(plan) {
			continue
		}
		for _, fe := range errs {
			if fe.Code == "NotFound" && fe.Path == "entity_id" {
				if gone == nil {
					gone = map[int]bool{}
				}
				gone[plan[i].note.EntityID] = true
			}
		}
	}
	return gone
}

// byCustomer is crm.ByCustomer with each customer's contact.
func byCustomer(msgs []store.MessageView) ([]*store.Contact, map[string][]store.MessageView) {
	ids, by := crm.ByCustomer(msgs)
	order := make([]*store.Contact, 0, len(ids))
	for _, id := range ids {
		ct := by[id][0].Contact
		if ct == nil {
			ct = &store.Contact{ID: id}
		}
		order = append(order, ct)
	}
	return order, by
}

// newLead is a customer whose lead ensureLeads creates.
type newLead struct {
	ct       *store.Contact
	owner    routing.NewOwner
	replaced bool // a closed lead is replaced (on_repeat new)
	input    LeadInput
}

// ensureLeads returns the lead of each customer of the binding, by store
// contact id, creating what is missing:
//   - a linked lead is kept, unless the binding's on_repeat is "new" and
//     the lead is closed (142 won, 143 lost) or gone: then one GET
//     /api/v4/leads for all the call's linked leads tells which;
//   - a new lead goes into the binding's pipeline and status, on the owner
//     the routing core picks (the installing user without a policy),
//     tagged with the channel, with the customer's contact: the linked
//     one, else one found by phone, else a new one embedded in the lead;
//     all new leads in one POST /api/v4/leads/complex.
//
// gone names leads amoCRM no longer has (deleted by a user): they are
// replaced like closed ones. Customers whose lead could not be made are
// missing from the answer and the error says why; the others are usable.
//
// end, when set, is the running job whose last step this is: it ends
// (queue.Done) in the commit of the run's last write (the adopted leads'
// links, or the new leads'), when nothing failed. The creation's try mark
// (linkLeadTry) stays a commit of its own before the call, so a run whose
// last commit fails (its lease lost) leaves the creation in doubt and the
// next run looks for the lead first.
func (s *Service) ensureLeads(ctx context.Context, d *routing.Delivery, cts []*store.Contact, gone map[int]bool, end *queue.Job) (map[string]int, error) {
	in, b := d.Integration, d.Binding
	// The mirror, batch and notice jobs of a binding run under different
	// queue keys; each may be the first to meet a new customer. Within
	// the gateway one at a time reads the links and creates what is
	// missing, so the second finds the first's lead. (Two instances
	// could still both create one; the link written first wins and the
	// other lead stays unused.)
	mu, _ := s.leadLocks.LoadOrStore(in.ID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	p, err := routing.PolicyOf(b)
	if err != nil {
		return nil, queue.Permanent(err)
	}
	leads := map[string]int{}
	linked := map[string]int{}
	var unlinked []*store.Contact
	for _, ct := range cts {
		v, err := crm.RecordLink(ctx, s.store, b, linkLead, ct.ID, EntityLead)
		if err != nil {
			return nil, err
		}
		id, _ := strconv.Atoi(v)
		if id != 0 {
			linked[ct.ID] = id
		} else {
			unlinked = append(unlinked, ct)
		}
	}
	// Customers we know no lead of may have one in the account (the
	// integration was deleted with its links and installed again): their
	// contact's lead is taken over, as a linked one is.
	contacts := map[string]int{}
	// The adoption's commit is the run's last when it links every
	// customer to a lead that is kept (written into, not replaced): then
	// nothing below writes or calls.
	var adoptEnd *queue.Job
	if len(unlinked) == len(cts) {
		adoptEnd = end
	}
	keeps := func(l *Lead) bool { return (!routing.StartNewRecord(p, true) || l.Open()) && !gone[l.ID] }
	known, err := s.adoptContactLeads(ctx, d, unlinked, linked, contacts, adoptEnd, keeps)
	if err != nil {
		return nil, err
	}
	open := map[int]bool{}
	checkClosed := routing.StartNewRecord(p, true) && len(linked) > 0
	if checkClosed {
		var ids []int
		for _, id := range linked {
			if o, ok := known[id]; ok {
				open[id] = o // read just now with the contact
			} else {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		if len(ids) > 0 {
			ls, err := s.API(in).Leads(ctx, LeadFilter{IDs: ids})
			if err != nil {
				return nil, Classify(err)
			}
			for _, l := range ls {
				if l.Open() {
					open[l.ID] = true
				}
			}
		}
	}
	var todo []*newLead
	for _, ct := range cts {
		if id, ok := linked[ct.ID]; ok && (!checkClosed || open[id]) && !gone[id] {
			leads[ct.ID] = id
			continue
		}
		nl, err := s.planLead(ctx, d, ct, contacts)
		if err != nil {
			return leads, err
		}
		nl.replaced = linked[ct.ID] != 0
		nl.input.RequestID = strconv.Itoa(len(todo))
		todo = append(todo, nl)
	}
	if len(todo) == 0 {
		return leads, nil
	}
	created, err := s.recoverLeads(ctx, d, todo)
	if err != nil {
		return leads, err
	}
	var rest []*newLead
	var at []int
	for i, nl := range todo {
		if created[i].lead == 0 {
			rest, at = append(rest, nl), append(at, i)
		}
	}
	var made []createdIDs
	if len(rest) > 0 {
		made, err = s.createLeads(ctx, d, rest)
	}
	for i, c := range made {
		created[at[i]] = c
	}
	var linkEnd *queue.Job
	if err == nil {
		linkEnd = end
	}
	if lerr := s.linkLeads(ctx, d, todo, created, linkEnd); lerr != nil {
		return leads, lerr
	}
	for i, nl := range todo {
		if id := created[i]; id.lead != 0 {
			leads[nl.ct.ID] = id.lead
		}
	}
	return leads, err
}

// recoverLeads marks the leads about to be created (linkLeadTry) and,
// for a customer whose earlier creation is still marked (that call did
// not see its answer: the process died, or amoCRM did the work and the
// answer was lost), looks for the lead it may have made before making
// one. amoCRM has no field of ours to find a lead by without setting the
// account up (a custom field), and a tag per lead would fill the
// account's tag list; so the lead is recognised by what we sent and
// when: created in the pipeline since the mark, tagged with the channel,
// named after the customer (under any of the names the customer's fields
// give: the profile may have arrived since), carrying the contact we
// embedded when that was an existing one, and linked to no customer.
// Found leads come back by position of todo (with their contact); a zero
// lead is to be created. A look-up that fails fails the call: creating
// blind could create twice.
func (s *Service) recoverLeads(ctx context.Context, d *routing.Delivery, todo []*newLead) ([]createdIDs, error) {
	in, b := d.Integration, d.Binding
	locals := make([]string, len(todo))
	for i, nl := range todo {
		locals[i] = b.ID + ":" + nl.ct.ID
	}
	since, err := s.store.MarkAttempts(ctx, in.ID, b.ID, linkLeadTry, locals)
	if err != nil {
		return nil, err
	}
	out := make([]createdIDs, len(todo))
	var recent []Lead
	read := false
	for i, nl := range todo {
		at, doubt := since[locals[i]]
		if !doubt {
			continue
		}
		if !read {
			// One read for the call: the oldest mark bounds it.
			oldest := at
			for _, t := range since {
				if t.Before(oldest) {
					oldest = t
				}
			}
			if recent, err = s.API(in).RecentLeads(ctx, nl.input.PipelineID, oldest.Add(-leadClockSlack).Unix()); err != nil {
				return nil, Classify(err)
			}
			read = true
		}
		if out[i], err = s.findMadeLead(ctx, d, nl, at, recent, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// findMadeLead is recoverLeads' look-up for one customer among the
// recent leads; zero ids when none fits. taken are the leads already
// recovered for other customers of the call.
func (s *Service) findMadeLead(ctx context.Context, d *routing.Delivery, nl *newLead, since time.Time, recent []Lead, taken []createdIDs) (createdIDs, error) {
	in := d.Integration
	label := channelLabel(channel.Type(d.Channel.Type))
	names := map[string]bool{}
	for _, v := range []string{nl.ct.Name, nl.ct.Username, nl.ct.Phone, nl.ct.ExternalID} {
		if v = cleanLine(v); v != "" {
			names[label+": "+v] = true
		}
	}
	from := since.Add(-leadClockSlack).Unix()
	var embedded int
	if cs := nl.input.Embedded.Contacts; len(cs) > 0 {
		embedded = cs[0].ID
	}
	var best *Lead
	for i := range recent {
		l := &recent[i]
		switch {
		case !names[l.Name], l.CreatedAt < from,
			nl.input.PipelineID != 0 && l.PipelineID != nl.input.PipelineID,
			!slices.ContainsFunc(l.Embedded.Tags, func(t Tag) bool { return t.Name == label }),
			embedded != 0 && !slices.ContainsFunc(l.Embedded.Contacts, func(c EntityLink) bool { return c.ID == embedded }),
			slices.ContainsFunc(taken, func(c createdIDs) bool { return c.lead == l.ID }),
			best != nil && best.ID < l.ID: // the oldest fitting one, the same on every retry
			continue
		}
		owners, err := s.store.LocalIDsByRemote(ctx, in.ID, linkLead, strconv.Itoa(l.ID))
		if err != nil {
			return createdIDs{}, err
		}
		if len(owners) == 0 {
			best = l
		}
	}
	if best == nil {
		return createdIDs{}, nil
	}
	// The lead keeps the owner the lost call gave it.
	nl.owner.UserID = strconv.Itoa(best.ResponsibleUserID)
	got := createdIDs{lead: best.ID}
	if len(best.Embedded.Contacts) > 0 {
		got.contact = best.Embedded.Contacts[0].ID
	}
	s.log.Info("amocrm: a lead an unfinished call made is found and not made again",
		"integration_id", in.ID, "binding_id", d.Binding.ID, "contact_id", nl.ct.ID, "lead_id", got.lead)
	return got, nil
}

// createdIDs are the ids one new lead got.
type createdIDs struct{ lead, contact int }

// createLeads sends the new leads in POST /api/v4/leads/complex (50 a
// call). amoCRM refuses a whole call when one lead is invalid and names it
// by request_id: the call is repeated without the refused ones, so one
// customer's bad data does not hold up the others; their error is
// returned. The answer is by position of todo; a zero lead was not made.
//
// A lead refused only because its linked contact is gone (a user deleted
// it: _embedded.contacts.0.id NotFound) is not refused for good: the
// customer's contact link is forgotten, the contact is found by phone
// again or a new one is embedded, and the lead goes in the next call.
func (s *Service) createLeads(ctx context.Context, d *routing.Delivery, todo []*newLead) ([]createdIDs, error) {
	in := d.Integration
	out := make([]createdIDs, len(todo))
	replanned := make([]bool, len(todo))
	send := make([]int, len(todo)) // positions in todo still to send
	for i := range send {
		send[i] = i
	}
	var refused error
	// Each lead is refused at most once for its contact and once for
	// good: three calls at most.
	for attempt := 0; attempt < 3 && len(send) > 0; attempt++ {
		inputs := make([]LeadInput, len(send))
		for i, pos := range send {
			inputs[i] = todo[pos].input
		}
		res, err := s.API(in).CreateLeadsComplex(ctx, inputs)
		byRID := map[string]ComplexResult{}
		for _, r := range res {
			for _, rid := range r.RequestIDs {
				byRID[rid] = r
			}
		}
		for _, pos := range send {
			if r, ok := byRID[todo[pos].input.RequestID]; ok {
				out[pos].lead = r.ID
				if r.ContactID != nil {
					out[pos].contact = *r.ContactID
				}
			}
		}
		if err == nil {
			return out, refused
		}
		bad := ItemErrors(err)
		if bad == nil {
			return out, Classify(err)
		}
		var rest []int
		for _, pos := range send {
			errs, isBad := bad[todo[pos].input.RequestID]
			if isBad && contactGone(errs) && !replanned[pos] {
				replanned[pos] = true
				if rerr := s.replaceContact(ctx, d, todo[pos]); rerr != nil {
					return out, rerr
				}
				isBad = false
			} else if isBad {
				s.log.Warn("amocrm: lead refused", "integration_id", in.ID, "contact_id", todo[pos].ct.ID, "err", err)
				refused = err
			}
			if !isBad && out[pos].lead == 0 {
				rest = append(rest, pos)
			}
		}
		send = rest
	}
	return out, refused
}

// contactGone reports whether a lead's errors say its embedded contact,
// given by id, is not in the account (deleted there).
func contactGone(errs []FieldError) bool {
	for _, fe := range errs {
		if fe.Code == "NotFound" && fe.Path == "_embedded.contacts.0.id" {
			return true
		}
	}
	return false
}

// replaceContact forgets the customer's link to a contact amoCRM no longer
// has and gives the planned lead the customer's contact anew: the one
// found by phone, else a new one embedded in the lead.
func (s *Service) replaceContact(ctx context.Context, d *routing.Delivery, nl *newLead) error {
	in := d.Integration
	old := nl.input.Embedded.Contacts[0].ID
	s.log.Warn("amocrm: the customer's contact was deleted in the account; it is found by phone or made again",
		"integration_id", in.ID, "contact_id", nl.ct.ID, "amocrm_contact", old)
	if err := s.forgetContact(ctx, in, nl.ct.ID, old); err != nil {
		return err
	}
	contactID := 0
	if nl.ct.Phone != "" {
		var err error
		if contactID, _, err = s.findContactByPhone(ctx, in, nl.ct.Phone); err != nil {
			return err
		}
		if contactID == old {
			contactID = 0 // the search still shows it: make a new one
		}
	}
	owner, _ := strconv.Atoi(cmp.Or(nl.owner.UserID, in.InstalledBy))
	nl.input.Embedded.Contacts = []ContactInput{s.contactInput(d, nl.ct, contactID, owner)}
	return nil
}

// forgetContact drops a customer's link to an amoCRM contact that is gone,
// if it still names that contact (another job may have linked a new one).
func (s *Service) forgetContact(ctx context.Context, in *store.Integration, localID string, remote int) error {
	cur, err := s.remoteInt(ctx, in.ID, linkContact, localID)
	if err != nil || cur != remote {
		return err
	}
	return s.store.DeleteLinks(ctx, in.ID, linkContact, []string{localID})
}

// contactInput is the contact embedded in a customer's new lead: the
// account's contact contactID, or a new one (0).
func (s *Service) contactInput(d *routing.Delivery, ct *store.Contact, contactID, owner int) ContactInput {
	if contactID != 0 {
		return ContactInput{ID: contactID}
	}
	// A contact we create is the new lead's owner's; one found in the
	// account keeps whoever has it there.
	label := channelLabel(channel.Type(d.Channel.Type))
	name := cleanLine(cmp.Or(ct.Name, ct.Username, ct.Phone, ct.ExternalID))
	contact := ContactInput{Name: name, ResponsibleUserID: owner, TagsToAdd: []Tag{{Name: label}}}
	if ct.Phone != "" {
		contact.CustomFields = []FieldValues{Phone(ct.Phone, "MOB")}
	}
	return contact
}

// planLead decides a new lead for a customer: its contact and owner.
// contacts holds the account's contacts adoptContactLeads looked up
// already (0: none), so they are not searched twice.
func (s *Service) planLead(ctx context.Context, d *routing.Delivery, ct *store.Contact, contacts map[string]int) (*newLead, error) {
	in, b := d.Integration, d.Binding
	contactID, looked := contacts[ct.ID]
	var err error
	if !looked {
		if contactID, err = s.remoteInt(ctx, in.ID, linkContact, ct.ID); err != nil {
			return nil, err
		}
		if contactID == 0 && ct.Phone != "" {
			if contactID, _, err = s.findContactByPhone(ctx, in, ct.Phone); err != nil {
				return nil, err
			}
		}
	}
	nl := &newLead{ct: ct}
	if nl.owner, err = routing.OwnerForNewRecord(ctx, s.store, b, ct.ID); err != nil {
		return nil, err
	}
	if nl.owner.Reason == routing.OwnerNobodyActive {
		s.log.Warn("amocrm: nobody in the owner group is active; the lead goes to the installing user",
			"integration_id", in.ID, "binding_id", b.ID, "contact_id", ct.ID)
	}
	owner, _ := strconv.Atoi(cmp.Or(nl.owner.UserID, in.InstalledBy))
	pipeline, _ := strconv.Atoi(b.CategoryID)
	status, _ := strconv.Atoi(b.StageID)
	label := channelLabel(channel.Type(d.Channel.Type))
	name := cleanLine(cmp.Or(ct.Name, ct.Username, ct.Phone, ct.ExternalID))
	contact := s.contactInput(d, ct, contactID, owner)
	nl.input = LeadInput{Name: label + ": " + name, PipelineID: pipeline, StatusID: status, ResponsibleUserID: owner,
		Embedded: &LeadEmbed{Tags: []Tag{{Name: label}}, Contacts: []ContactInput{contact}}}
	return nl, nil
}

// linkLeads records what createLeads made, in one transaction: the
// customer's contact and lead (replacing a closed lead's link), and the
// dialog's record and owner. end, when set, is the running job that ends
// (queue.Done) in the same commit.
func (s *Service) linkLeads(ctx context.Context, d *routing.Delivery, todo []*newLead, created []createdIDs, end *queue.Job) error {
	in, b := d.Integration, d.Binding
	return s.store.Tx(ctx, func(tx *gorm.DB) error {
		for i, nl := range todo {
			c := created[i]
			if c.lead == 0 {
				continue
			}
			// Linked in this commit: the creation is no longer in doubt.
			if err := store.DropLinks(tx, in.ID, linkLeadTry, []string{b.ID + ":" + nl.ct.ID}); err != nil {
				return err
			}
			if c.contact != 0 {
				if err := store.PutLink(tx, in.ID, linkContact, nl.ct.ID, strconv.Itoa(c.contact)); err != nil {
					return err
				}
			}
			put := store.PutLink
			if nl.replaced {
				put = store.ReplaceLink
			}
			if err := put(tx, in.ID, linkLead, b.ID+":"+nl.ct.ID, strconv.Itoa(c.lead)); err != nil {
				return err
			}
			k := store.DialogKey{WorkspaceID: b.WorkspaceID, IntegrationID: in.ID, ChannelID: b.ChannelID, ContactID: nl.ct.ID}
			if err := store.SetDialogCRM(tx, k, store.DialogCRM{Entity: EntityLead, EntityID: strconv.Itoa(c.lead), OwnerUserID: nl.owner.UserID}); err != nil {
				return err
			}
			if nl.owner.Reason == routing.OwnerWaiting {
				// A member may claim the customer between the owner's
				// choice and this link, when the claim found no lead to
				// hand over; this job, run after the link commits,
				// applies such a claim (and costs no call without one).
				if err := enqueueAssign(tx, b, nl.ct.ID); err != nil {
					return err
				}
			}
		}
		if end == nil {
			return nil
		}
		return queue.Done(tx, end)
	})
}

// findContactByPhone finds the account's contact of a customer's number
// (E.164). amoCRM's query is a substring search over the stored digits,
// so it is asked once for the national digits, which every written form
// of the number contains ("8 (912) 345-67-89", "+7 912 345 67 89",
// "9123456789"); each hit's PHONE values are then confirmed with the
// workspace's rule (phone.AnySame: 8→+7 only where the workspace says so),
// since the search also hits other numbers and fields holding those
// digits. Of several confirmed contacts the lowest id (the oldest) wins,
// the same on every retry. 0 when none is confirmed. leads are the found
// contact's lead ids (read in the same call).
func (s *Service) findContactByPhone(ctx context.Context, in *store.Integration, e164 string) (id int, leads []int, err error) {
	query := phone.NationalDigits(e164)
	if query == "" {
		return 0, nil, nil
	}
	ws, err := s.store.GetWorkspace(ctx, store.All, in.WorkspaceID)
	if err != nil {
		return 0, nil, err
	}
	rule := phone.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion}
	found, err := s.API(in).SearchContacts(ctx, query, true)
	if err != nil {
		return 0, nil, Classify(err)
	}
	for _, c := range found {
		if phone.AnySame(c.Values("PHONE"), e164, rule) && (id == 0 || c.ID < id) {
			id, leads = c.ID, c.LeadIDs()
		}
	}
	return id, leads, nil
}

// statusUnsorted is the type of a pipeline's "unsorted" status.
const statusUnsorted = 1

// adoptContactLeads looks in the account for a lead of each customer the
// binding knows none of (no link, no dialog record: the integration was
// deleted, with its links, and installed again; or the customer's contact
// was already in the account). The customer's contact is the linked one,
// else the one found by phone (kept in contacts for planLead); its leads
// are read in one call for all the customers (and the pipelines, to leave
// out amoCRM's unsorted incoming leads), and one is taken over:
// an open one, in the binding's pipeline first, the most recently
// updated; with none open, the most recently updated closed one, which
// on_repeat then writes into or replaces as for any linked closed lead.
// The lead taken is linked (with the contact and the dialog) and added to
// linked; known says, of each lead taken, whether it is open. end, when
// set, is the running job that ends (queue.Done) in the commit of the
// links when every customer got a lead and keeps says each is kept.
func (s *Service) adoptContactLeads(ctx context.Context, d *routing.Delivery, cts []*store.Contact, linked, contacts map[string]int,
	end *queue.Job, keeps func(*Lead) bool) (map[int]bool, error) {
	in, b := d.Integration, d.Binding
	leadsOf := map[string][]int{}
	var all []int
	for _, ct := range cts {
		contactID, err := s.remoteInt(ctx, in.ID, linkContact, ct.ID)
		if err != nil {
			return nil, err
		}
		var ids []int
		switch {
		case contactID != 0:
			c, found, err := s.API(in).GetContact(ctx, contactID, true)
			if err != nil {
				return nil, Classify(err)
			}
			if found {
				ids = c.LeadIDs()
				break
			}
			// Deleted in the account: the customer's contact is looked
			// for by phone again (or made with the lead).
			if err := s.forgetContact(ctx, in, ct.ID, contactID); err != nil {
				return nil, err
			}
			contactID = 0
			if ct.Phone != "" {
				if contactID, ids, err = s.findContactByPhone(ctx, in, ct.Phone); err != nil {
					return nil, err
				}
			}
		case ct.Phone != "":
			if contactID, ids, err = s.findContactByPhone(ctx, in, ct.Phone); err != nil {
				return nil, err
			}
		}
		contacts[ct.ID] = contactID
		if len(ids) > 0 {
			leadsOf[ct.ID] = ids
			all = append(all, ids...)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	slices.Sort(all)
	ls, err := s.API(in).Leads(ctx, LeadFilter{IDs: slices.Compact(all)})
	if err != nil {
		return nil, Classify(err)
	}
	// A lead in an unsorted status is amoCRM's incoming request (from a
	// chat, a form), not yet accepted by anyone: not a lead to write into.
	ps, err := s.API(in).Pipelines(ctx)
	if err != nil {
		return nil, Classify(err)
	}
	unsorted := map[int]bool{}
	for _, p := range ps {
		for _, st := range p.Statuses {
			if st.Type == statusUnsorted {
				unsorted[st.ID] = true
			}
		}
	}
	byID := make(map[int]*Lead, len(ls))
	for i := range ls {
		if !unsorted[ls[i].StatusID] {
			byID[ls[i].ID] = &ls[i]
		}
	}
	pipeline, _ := strconv.Atoi(b.CategoryID)
	// rank orders a customer's leads: open before closed, the binding's
	// pipeline first, then the most recently updated (the highest id on
	// a tie, the same on every retry).
	rank := func(l *Lead) []int64 {
		r := []int64{0, 0, l.UpdatedAt, int64(l.ID)}
		if l.Open() {
			r[0] = 1
			if l.PipelineID == pipeline {
				r[1] = 1
			}
		}
		return r
	}
	// A lead the integration already links to another customer (the same
	// person writing on another channel) stays theirs: a lead's card
	// answers one conversation.
	taken := func(leadID int, ct *store.Contact) (bool, error) {
		locals, err := s.store.LocalIDsByRemote(ctx, in.ID, linkLead, strconv.Itoa(leadID))
		if err != nil {
			return false, err
		}
		for _, l := range locals {
			if !strings.HasSuffix(l, ":"+ct.ID) {
				return true, nil
			}
		}
		return false, nil
	}
	pick := map[string]*Lead{}
	for _, ct := range cts {
		for _, id := range leadsOf[ct.ID] {
			l := byID[id]
			if l == nil || (pick[ct.ID] != nil && slices.Compare(rank(l), rank(pick[ct.ID])) <= 0) {
				continue
			}
			if t, err := taken(id, ct); err != nil || t {
				if err != nil {
					return nil, err
				}
				continue
			}
			pick[ct.ID] = l
		}
	}
	known := map[int]bool{}
	settled := end != nil
	for _, ct := range cts {
		if best := pick[ct.ID]; best == nil || !keeps(best) {
			settled = false
		}
	}
	err = s.store.Tx(ctx, func(tx *gorm.DB) error {
		for _, ct := range cts {
			best := pick[ct.ID]
			if best == nil {
				continue
			}
			if err := store.PutLink(tx, in.ID, linkContact, ct.ID, strconv.Itoa(contacts[ct.ID])); err != nil {
				return err
			}
			if err := store.PutLink(tx, in.ID, linkLead, b.ID+":"+ct.ID, strconv.Itoa(best.ID)); err != nil {
				return err
			}
			// A creation left in doubt (its lead is likely this one,
			// found through the contact) is settled with the link.
			if err := store.DropLinks(tx, in.ID, linkLeadTry, []string{b.ID + ":" + ct.ID}); err != nil {
				return err
			}
			k := store.DialogKey{WorkspaceID: b.WorkspaceID, IntegrationID: in.ID, ChannelID: b.ChannelID, ContactID: ct.ID}
			if err := store.SetDialogCRM(tx, k, store.DialogCRM{Entity: EntityLead, EntityID: strconv.Itoa(best.ID)}); err != nil {
				return err
			}
			linked[ct.ID], known[best.ID] = best.ID, best.Open()
			s.log.Info("amocrm: the customer's lead in the account is taken over", "integration_id", in.ID,
				"binding_id", b.ID, "contact_id", ct.ID, "lead_id", best.ID, "open", best.Open())
		}
		if !settled {
			return nil
		}
		return queue.Done(tx, end)
	})
	return known, err
}

// remoteInt reads a numeric link; 0 when there is none.
func (s *Service) remoteInt(ctx context.Context, integrationID, kind, localID string) (int, error) {
	v, err := s.store.RemoteOf(ctx, integrationID, kind, localID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	id, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("amocrm: link %s of %s is not an id: %q", kind, localID, v)
	}
	return id, nil
}

// location is the workspace's clock, for the times notes show.
func (s *Service) location(ctx context.Context, in *store.Integration) *time.Location {
	ws, err := s.store.GetWorkspace(ctx, store.All, in.WorkspaceID)
	if err != nil {
		return time.UTC
	}
	return routing.Location(ws.Timezone)
}

// channelLabel names a channel type in notes, tags and lead names.
func channelLabel(t channel.Type) string {
	if t == channel.Instagram {
		return "Instagram"
	}
	return "WhatsApp"
}

// lang is the language notes and tasks are written in: the account's.
func lang(in *store.Integration) string {
	if strings.EqualFold(in.Language, "en") {
		return "en"
	}
	return "ru"
}

// render is a message as an operator reads it, signed with the customer
// whose lead it goes to.
func (s *Service) render(m *store.MessageView, ct *store.Contact, l string) crm.Rendered {
	withContact := *m
	if ct != nil {
		withContact.Contact = ct
	}
	r, err := crm.Render(&withContact, l, s.cfg.FileURL)
	if err != nil {
		s.log.Error("amocrm: render a message", "message_id", m.ID, "err", err)
	}
	return r
}

// body is a rendered message as plain note text (amoCRM notes have no
// markup): the quote as "> " lines, the text, the files' links.
func body(r crm.Rendered) string {
	var parts []string
	if r.Deleted != "" {
		parts = append(parts, "["+r.Deleted+"]")
	}
	if r.Quote != "" {
		parts = append(parts, "> "+strings.ReplaceAll(strings.TrimSpace(r.Quote), "\n", "\n> "))
	}
	if r.Text != "" {
		parts = append(parts, r.Text)
	}
	for _, f := range r.Files {
		if f.URL != "" {
			parts = append(parts, f.URL)
		}
	}
	return strings.Join(parts, "\n")
}

// noteText is one message's note: channel, author (authors names ours)
// and local time, then the message.
func (s *Service) noteText(d *routing.Delivery, ct *store.Contact, m *store.MessageView, loc *time.Location, authors map[string]string) string {
	r := s.render(m, ct, lang(d.Integration))
	if a, ok := authors[m.ID]; ok {
		r.Author = a
	}
	when := m.CreatedAt
	if m.ProviderAt != nil {
		when = *m.ProviderAt
	}
	return fmt.Sprintf("%s · %s · %s\n%s", channelLabel(channel.Type(d.Channel.Type)), r.Author, when.In(loc).Format("02.01.2006 15:04 MST"), body(r))
}

// cleanLine folds text onto one line.
func cleanLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// EnsureRecord implements routing.RecordEnsurer: in the batched mirror
// modes the customer's contact and lead (on the owner the policy picks)
// are made at the first message, so managers see the lead before the
// window's note. A linked open lead costs no write. A lead made or taken
// over is linked in the commit that ends the job (d.Job), its last step.
func (s *Service) EnsureRecord(ctx context.Context, d *routing.Delivery, contact *store.Contact) error {
	_, err := s.ensureLeads(ctx, d, []*store.Contact{contact}, nil, d.Job)
	return err
}
