package bitrix24

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// batchMarkerPrefix starts the last line of every batch comment: it names
// the batch and the customer's place in it, so a batch whose writing may
// have landed unrecorded (the gateway died, or the portal answered an
// error after it had added the comment) is found on the record instead of
// being written twice.
const batchMarkerPrefix = "#sb-"

// batchMarker is the marker of customer k (0-based, in the batch's order)
// of a batch.
func batchMarker(batchID string, k int) string {
	return batchMarkerPrefix + batchID + "-" + strconv.Itoa(k+1)
}

// batchComment is one timeline comment to write: one customer's messages
// of one batch, on that customer's record.
type batchComment struct {
	batch    string
	entity   string // lead | deal
	entityID string
	text     string
	marker   string
	retry    bool
	found    bool
}

// MirrorBatches implements routing.BatchConnector for CRM mode: one
// readable timeline comment per customer record and batch. Records that
// do not exist yet are created first (as the each-path creates them);
// then, for batches an earlier attempt may have written, the records'
// recent comments are searched for the batch marker, and the remaining
// comments go out, both in batch calls of 50 commands. A batch is
// reported sent when each of its comments was written or found.
func (s *Service) MirrorBatches(ctx context.Context, in *store.Integration, batches []routing.Batch) ([]string, error) {
	var (
		comments []*batchComment
		broken   = map[string]bool{} // batches that cannot be complete this time
		firstErr error
	)
	fail := func(batchID string, err error) {
		broken[batchID] = true
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, b := range batches {
		d := &routing.Delivery{Integration: in, Binding: b.Binding, Channel: b.Channel}
		order, byContact := crm.ByCustomer(b.Messages)
		for k, contactID := range order {
			msgs := byContact[contactID]
			entity, entityID, err := s.batchRecord(ctx, d, msgs[0].Contact, b.Location)
			if err != nil {
				fail(b.ID, err)
				continue
			}
			marker := batchMarker(b.ID, k)
			comments = append(comments, &batchComment{batch: b.ID, entity: entity, entityID: entityID, retry: b.Retry,
				marker: marker, text: s.batchText(d, &b, msgs) + "\n\n" + marker})
		}
	}
	if err := s.findWritten(ctx, in.ID, comments); err != nil {
		return nil, err
	}
	var cmds []BatchCommand
	for i, c := range comments {
		if c.found || broken[c.batch] {
			continue
		}
		cmds = append(cmds, BatchCommand{Name: "c" + strconv.Itoa(i), Method: "crm.timeline.comment.add", Params: map[string]any{
			"fields": map[string]any{"ENTITY_ID": c.entityID, "ENTITY_TYPE": c.entity, "COMMENT": c.text},
		}})
	}
	if len(cmds) > 0 {
		res, err := s.client.Batch(ctx, in.ID, cmds, false)
		if err != nil {
			// The calls before the failed one were answered: what they
			// wrote counts; the rest is searched for on the retry.
			firstErr = s.classify(err)
		}
		for i, c := range comments {
			if c.found || broken[c.batch] {
				continue
			}
			name := "c" + strconv.Itoa(i)
			if res == nil {
				broken[c.batch] = true
				continue
			}
			if ae, ok := res.Errors[name]; ok {
				fail(c.batch, fmt.Errorf("bitrix24: batch comment on %s %s: %w", c.entity, c.entityID, ae))
				continue
			}
			if _, ok := res.Results[name]; !ok {
				broken[c.batch] = true
			}
		}
	}
	var sent []string
	for _, b := range batches {
		if !broken[b.ID] {
			sent = append(sent, b.ID)
		}
	}
	return sent, firstErr
}

// batchRecord is the customer's record in the binding's entity, created
// (with the contact) by the each-path's code when there is none yet.
func (s *Service) batchRecord(ctx context.Context, d *routing.Delivery, ct *store.Contact, loc *time.Location) (entity, entityID string, err error) {
	entity, link := crmEntity(d.Binding)
	if entityID, err = s.makeRecord(ctx, d, ct, loc, nil); err != nil || entityID != "" {
		return entity, entityID, err
	}
	entityID, err = s.store.RemoteOf(ctx, d.Integration.ID, link, d.Binding.ID+":"+ct.ID)
	if err != nil {
		return "", "", fmt.Errorf("bitrix24: record of customer %s not created: %w", ct.ID, err)
	}
	return entity, entityID, nil
}

// makeRecord returns the customer's open record in the binding's entity,
// or creates (and links) one with the contact and returns "". end, when
// set, is the running job to end (queue.Done) in the commit of the links,
// when the creation is the run's last step.
func (s *Service) makeRecord(ctx context.Context, d *routing.Delivery, ct *store.Contact, loc *time.Location, end *queue.Job) (string, error) {
	_, link := crmEntity(d.Binding)
	key := d.Binding.ID + ":" + ct.ID
	var closed map[string]bool
	entityID, err := s.store.RemoteOf(ctx, d.Integration.ID, link, key)
	switch {
	case err == nil:
		// Under on_repeat "new" a won or lost record is not written
		// into: the batch goes to a new one, as the each-path does.
		closed, err = s.closedRecords(ctx, d, []string{ct.ID})
		if err != nil {
			return "", err
		}
		if !closed[entityID] {
			return entityID, nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	// No messages: only the contact and the record are made.
	_, err = s.mirrorCRMContact(ctx, d, ct, nil, loc, closed, end)
	return "", err
}

// EnsureRecord implements routing.RecordEnsurer for CRM mode: the
// batched modes' customer gets their contact and lead/deal (with the
// owner the binding's policy picks) at once, through the path a batch
// takes for a customer without a record; only the comments wait for the
// batch. A customer with an open record costs no call (the closure check
// runs only under on_repeat "new"). A record made is linked in the commit
// that ends the job (d.Job), its last step.
func (s *Service) EnsureRecord(ctx context.Context, d *routing.Delivery, ct *store.Contact) error {
	loc := time.UTC
	ws, err := s.store.GetWorkspace(ctx, store.All, d.Integration.WorkspaceID)
	if err != nil {
		return err
	}
	if l, err := time.LoadLocation(ws.Timezone); err == nil {
		loc = l
	}
	_, err = s.makeRecord(ctx, d, ct, loc, d.Job)
	return err
}

// findWritten looks, for the comments of batches an earlier attempt may
// have written, at the record's latest comments for the marker, in batch
// calls. A record that cannot be searched fails the whole call: writing
// blind could write twice.
func (s *Service) findWritten(ctx context.Context, integrationID string, comments []*batchComment) error {
	var cmds []BatchCommand
	for i, c := range comments {
		if !c.retry {
			continue
		}
		cmds = append(cmds, BatchCommand{Name: "l" + strconv.Itoa(i), Method: "crm.timeline.comment.list", Params: map[string]any{
			"filter": map[string]any{"ENTITY_ID": c.entityID, "ENTITY_TYPE": c.entity},
			"select": []string{"ID", "COMMENT"},
			"order":  map[string]any{"ID": "DESC"},
		}})
	}
	if len(cmds) == 0 {
		return nil
	}
	res, err := s.client.Batch(ctx, integrationID, cmds, false)
	if err != nil {
		return s.classify(err)
	}
	for i, c := range comments {
		if !c.retry {
			continue
		}
		var list []struct {
			Comment string `json:"COMMENT"`
		}
		if err := res.Decode("l"+strconv.Itoa(i), &list); err != nil {
			return err
		}
		for _, e := range list {
			if strings.Contains(e.Comment, c.marker) {
				c.found = true
				break
			}
		}
	}
	return nil
}

// batchTexts are the words of a batch comment, by language.
var batchTexts = map[string][2]string{
	"ru": {"Сообщения клиента", "сообщ."},
	"en": {"Customer messages", "msg."},
}

// batchText is one customer's messages of a batch as one comment: a header
// with the channel and the period on the workspace's clock, then each
// message with its local time, who wrote it, the text (quotes as
// [QUOTE]) and links to its files.
func (s *Service) batchText(d *routing.Delivery, b *routing.Batch, msgs []store.MessageView) string {
	lang := shownLang(d.Integration.Language)
	words, ok := batchTexts[lang]
	if !ok {
		words = batchTexts["en"]
	}
	loc := b.Location
	if loc == nil {
		loc = time.UTC
	}
	period := b.Period()
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s · %s · %s (%s) · %d %s\n", connectorLabel(channel.Type(d.Channel.Type)), words[0], period, loc.String(), len(msgs), words[1])
	for i := range msgs {
		m := msgs[i]
		r := s.render(&m, d.Integration.Language)
		text := InboundText(r)
		for _, f := range r.Files {
			text = strings.TrimSpace(text + "\n" + f.URL)
		}
		when := m.CreatedAt
		if m.ProviderAt != nil {
			when = *m.ProviderAt
		}
		stamp := b.Stamp(when)
		fmt.Fprintf(&sb, "\n%s %s:\n%s\n", stamp, NeutralizeBB(r.Author), text)
	}
	return strings.TrimRight(sb.String(), "\n")
}

var _ routing.BatchConnector = (*Service)(nil)
