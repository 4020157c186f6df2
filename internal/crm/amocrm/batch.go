package amocrm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The Service takes hourly and daily batches.
var _ routing.BatchConnector = (*Service)(nil)

// batchMarkerPrefix starts the last line of every batch note: it names
// the batch, the customer's place in it and the note's part, so a note an
// attempt wrote without recording it (the gateway died, or amoCRM answered
// an error after adding it) is found on the lead instead of written twice.
const batchMarkerPrefix = "#sb-"

func batchMarker(batchID string, customer, part int) string {
	return batchMarkerPrefix + batchID + "-" + strconv.Itoa(customer+1) + "." + strconv.Itoa(part+1)
}

// batchNote is one note of a batch.
type batchNote struct {
	batch  string
	lead   int
	marker string
	retry  bool
	found  bool
	text   string
}

// MirrorBatches implements routing.BatchConnector: each customer's
// messages of a batch become one common note on the customer's lead
// (split in parts within NoteTextLimit, each part marked). Missing leads
// are created as the each-path creates them (one leads/complex per
// batch); for batches an earlier attempt may have written, the leads'
// common notes are read (GET /api/v4/leads/{id}/notes) for the markers;
// the rest go out in POST /api/v4/leads/notes, 50 a call. A batch is sent
// when each of its notes was written or found.
func (s *Service) MirrorBatches(ctx context.Context, in *store.Integration, batches []routing.Batch) ([]string, error) {
	var (
		notes    []*batchNote
		broken   = map[string]bool{}
		firstErr error
	)
	fail := func(batchID string, err error) {
		broken[batchID] = true
		if firstErr == nil {
			firstErr = err
		}
	}
	for bi := range batches {
		b := &batches[bi]
		d := &routing.Delivery{Integration: in, Binding: b.Binding, Channel: b.Channel}
		order, by := byCustomer(b.Messages)
		authors, err := s.authors(ctx, in, b.Messages)
		if err != nil {
			return nil, err
		}
		leads, err := s.ensureLeads(ctx, d, order, nil, nil)
		if err != nil {
			fail(b.ID, err)
		}
		for k, ct := range order {
			lead, ok := leads[ct.ID]
			if !ok {
				broken[b.ID] = true
				continue
			}
			parts := SplitText(s.batchText(d, b, ct, by[ct.ID], authors), NoteTextLimit-100)
			for p, text := range parts {
				m := batchMarker(b.ID, k, p)
				notes = append(notes, &batchNote{batch: b.ID, lead: lead, marker: m, retry: b.Retry, text: text + "\n\n" + m})
			}
		}
	}
	if err := s.findWritten(ctx, in, notes); err != nil {
		return nil, err
	}
	var plan []plannedNote
	var sent []*batchNote
	for _, n := range notes {
		if n.found || broken[n.batch] {
			continue
		}
		plan = append(plan, plannedNote{note: NoteInput{EntityID: n.lead, NoteType: NoteCommon, Params: NoteParams{Text: n.text}}})
		sent = append(sent, n)
	}
	written, err := s.writeNotes(ctx, in, plan)
	if err != nil && firstErr == nil {
		firstErr = err
	}
	for i := written; i < len(sent); i++ {
		broken[sent[i].batch] = true
	}
	var ok []string
	for _, b := range batches {
		if !broken[b.ID] {
			ok = append(ok, b.ID)
		}
	}
	return ok, firstErr
}

// findWritten reads, for the notes of batches that may have been written,
// each lead's common notes once and marks the notes whose marker is there.
// A lead that cannot be read fails the call: writing blind could write
// twice.
func (s *Service) findWritten(ctx context.Context, in *store.Integration, notes []*batchNote) error {
	texts := map[int][]string{}
	for _, n := range notes {
		if !n.retry {
			continue
		}
		if _, read := texts[n.lead]; !read {
			got, err := s.API(in).LeadNotes(ctx, n.lead, NoteCommon)
			if err != nil {
				return Classify(err)
			}
			texts[n.lead] = append(got, "") // read, even when empty
		}
		for _, t := range texts[n.lead] {
			if strings.Contains(t, n.marker) {
				n.found = true
				break
			}
		}
	}
	return nil
}

// LeadNotes returns the texts of a lead's notes of one type, all pages
// (GET /api/v4/leads/{id}/notes?filter[note_type][]=...).
func (p *API) LeadNotes(ctx context.Context, leadID int, noteType string) ([]string, error) {
	q := url.Values{"limit": {strconv.Itoa(PageLimit)}, "filter[note_type][]": {noteType}}
	var out []string
	err := p.c.List(ctx, p.a, "/api/v4/leads/"+strconv.Itoa(leadID)+"/notes", q, "notes", func(raw json.RawMessage) error {
		var n struct {
			Params NoteParams `json:"params"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return fmt.Errorf("amocrm: note: %w", err)
		}
		out = append(out, n.Params.Text)
		return nil
	})
	return out, err
}

// batchWords are the words of a batch note, by language: the header of
// the customer's messages alone, the unit, the header of a conversation
// with our messages in it.
var batchWords = map[string][3]string{
	"ru": {"Сообщения клиента", "сообщ.", "Переписка"},
	"en": {"Customer messages", "msg.", "Conversation"},
}

// batchText is one customer's messages of a batch: a header with the
// channel and the period on the workspace's clock, then each message with
// its local time and author (authors names ours).
func (s *Service) batchText(d *routing.Delivery, b *routing.Batch, ct *store.Contact, msgs []store.MessageView, authors map[string]string) string {
	l := lang(d.Integration)
	words := batchWords[l]
	loc := b.Location
	if loc == nil {
		loc = time.UTC
	}
	period := b.Period()
	header := words[0]
	if hasOutbound(msgs) {
		header = words[2]
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s · %s · %s (%s) · %d %s\n", channelLabel(channel.Type(d.Channel.Type)), header, period, loc.String(), len(msgs), words[1])
	for i := range msgs {
		m := &msgs[i]
		r := s.render(m, ct, l)
		if a, ok := authors[m.ID]; ok {
			r.Author = a
		}
		when := m.CreatedAt
		if m.ProviderAt != nil {
			when = *m.ProviderAt
		}
		stamp := b.Stamp(when)
		fmt.Fprintf(&sb, "\n%s %s:\n%s\n", stamp, r.Author, body(r))
	}
	return strings.TrimRight(sb.String(), "\n")
}
