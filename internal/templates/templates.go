// Package templates keeps a copy of each WhatsApp channel's message
// templates as its business account lists them: refreshed on demand (the
// admin API, the cabinet) and daily by a self-renewing queue job. It names
// no messenger: a channel whose provider lists no templates is refused.
package templates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// JobRefresh is the daily refresh of one channel's templates; on success it
// enqueues itself for the next day.
const JobRefresh = "templates.refresh"

// Every is how often the daily job refreshes a channel.
const Every = 24 * time.Hour

// Template is a stored template with its variables counted.
type Template struct {
	Name       string          `json:"name"`
	Language   string          `json:"language"`
	Category   string          `json:"category"`
	Status     string          `json:"status"`
	Components json.RawMessage `json:"components"`
	// HeaderVariables and BodyVariables count the distinct {{1}}…{{n}}
	// (or named {{x}}) placeholders of the text header and the body;
	// Variables is their sum, what a sender must fill in.
	HeaderVariables int `json:"header_variables"`
	// HeaderMedia is true when the header is a file (image, video,
	// document): a send must carry the file, which a picker cannot.
	HeaderMedia   bool      `json:"header_media"`
	BodyVariables int       `json:"body_variables"`
	Variables     int       `json:"variables"`
	SyncedAt      time.Time `json:"synced_at"`
}

// Service refreshes and lists channels' templates.
type Service struct {
	st     *store.Store
	reg    *channel.Registry
	log    *slog.Logger
	notify func()
}

// New builds the service; notify (may be nil) wakes the queue after a job
// is committed.
func New(st *store.Store, reg *channel.Registry, log *slog.Logger, notify func()) *Service {
	if notify == nil {
		notify = func() {}
	}
	return &Service{st: st, reg: reg, log: log, notify: notify}
}

// Handle registers the daily job's handler.
func (s *Service) Handle(q *queue.Queue) { q.Handle(JobRefresh, s.handleRefresh) }

type refreshPayload struct {
	ChannelID string `json:"channel_id"`
}

func jobKey(channelID string) string { return "templates:" + channelID }

// channelFor finds the channel in scope and its template lister.
func (s *Service) channelFor(ctx context.Context, sc store.Scope, channelID string) (*store.Channel, channel.TemplateLister, error) {
	ch, err := s.st.GetChannel(ctx, sc, channelID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fault.New(fault.NotFound, "channel_not_found", "no such channel")
	}
	if err != nil {
		return nil, nil, err
	}
	p, ok := s.reg.ByType(channel.Type(ch.Type))
	if !ok || p.Templates == nil {
		return nil, nil, fault.New(fault.Conflict, "templates_whatsapp_only", "message templates exist for WhatsApp channels only")
	}
	return ch, p.Templates, nil
}

// List answers the channel's stored templates (empty before the first
// refresh).
func (s *Service) List(ctx context.Context, sc store.Scope, channelID string) ([]Template, error) {
	ch, _, err := s.channelFor(ctx, sc, channelID)
	if err != nil {
		return nil, err
	}
	rows, err := s.st.Templates(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Template, 0, len(rows))
	for _, r := range rows {
		out = append(out, view(r))
	}
	return out, nil
}

// Refresh reads the channel's templates from the messenger and replaces the
// stored set with them; on any failure the stored set is kept. It also
// makes sure the channel's daily refresh is queued.
func (s *Service) Refresh(ctx context.Context, sc store.Scope, channelID string) ([]Template, error) {
	ch, lister, err := s.channelFor(ctx, sc, channelID)
	if err != nil {
		return nil, err
	}
	if ch.State != store.ChannelActive {
		return nil, fault.New(fault.Conflict, "channel_disabled", "the channel is disabled; enable it before refreshing its templates")
	}
	if err := s.fetchAndStore(ctx, ch, lister, nil); err != nil {
		return nil, err
	}
	return s.List(ctx, sc, channelID)
}

// fetchAndStore reads the whole set and replaces the stored one, queueing
// the next daily refresh in the same transaction unless one is queued (the
// running daily job is not pending itself).
// daily is the refresh job when the daily chain runs it (nil for a
// refresh asked through the API): it ends in the commit that stores the
// templates and queues the next day's.
func (s *Service) fetchAndStore(ctx context.Context, ch *store.Channel, lister channel.TemplateLister, daily *queue.Job) error {
	creds, err := s.st.Credentials(ch)
	if err != nil {
		return err
	}
	got, err := lister.ListTemplates(ctx, creds, ch.WabaID)
	if err != nil {
		return refreshFailure(ch, err)
	}
	rows := make([]store.ChannelTemplate, 0, len(got))
	for _, t := range got {
		rows = append(rows, store.ChannelTemplate{Name: t.Name, Language: t.Language, Category: t.Category, Status: t.Status, Components: string(t.Components)})
	}
	err = s.st.ReplaceTemplates(ctx, ch.ID, rows, func(tx *gorm.DB) error { return s.queueNext(tx, ch, daily) })
	if err != nil {
		return err
	}
	s.notify()
	s.log.Info("templates refreshed", "channel_id", ch.ID, "workspace_id", ch.WorkspaceID, "templates", len(rows), "daily", daily != nil)
	return nil
}

// queueNext enqueues the channel's refresh for a day later unless one
// waits, and ends the running refresh job daily (when not nil) in tx.
func (s *Service) queueNext(tx *gorm.DB, ch *store.Channel, daily *queue.Job) error {
	pending, err := queue.Pending(tx, JobRefresh, jobKey(ch.ID))
	if err != nil {
		return err
	}
	if !pending {
		_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobRefresh, WorkspaceID: ch.WorkspaceID, Lane: ch.ID, Key: jobKey(ch.ID),
			Payload: refreshPayload{ChannelID: ch.ID}, RunAt: store.Now().Add(Every)})
		if err != nil {
			return err
		}
	}
	if daily != nil {
		return queue.Done(tx, daily)
	}
	return nil
}

// refreshFailure names why the messenger did not give the templates.
func refreshFailure(ch *store.Channel, err error) error {
	var se *channel.SendError
	if errors.As(err, &se) && se.Outcome != channel.OutcomeRetry {
		return &fault.Error{Kind: fault.Upstream, Code: "templates_token_refused",
			Message: "Meta refused to list the WABA's templates with the channel's access_token (replace the token or check the WABA id); the stored templates were kept",
			Err:     err}
	}
	return &fault.Error{Kind: fault.Upstream, Code: "templates_unavailable",
		Message: "could not reach Meta to list the templates; the stored templates were kept, try again",
		Err:     fmt.Errorf("templates: channel %s: %w", ch.ID, err)}
}

// EnsureDaily queues the daily refresh of every active channel with
// templates that has none queued (at start-up: channels made before this
// feature, or whose chain ended).
func (s *Service) EnsureDaily(ctx context.Context) error {
	chs, err := s.st.ListChannels(ctx, store.All)
	if err != nil {
		return err
	}
	queued := 0
	for i := range chs {
		ch := &chs[i]
		p, ok := s.reg.ByType(channel.Type(ch.Type))
		if !ok || p.Templates == nil || ch.State != store.ChannelActive {
			continue
		}
		err := s.st.Tx(ctx, func(tx *gorm.DB) error {
			pending, err := queue.Pending(tx, JobRefresh, jobKey(ch.ID))
			if err != nil || pending {
				return err
			}
			queued++
			// The first refresh runs now: a channel's list is then filled
			// without anyone pressing Refresh.
			_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobRefresh, WorkspaceID: ch.WorkspaceID, Lane: ch.ID, Key: jobKey(ch.ID),
				Payload: refreshPayload{ChannelID: ch.ID}})
			return err
		})
		if err != nil {
			return fmt.Errorf("templates: queue the daily refresh of %s: %w", ch.ID, err)
		}
	}
	if queued > 0 {
		s.notify()
	}
	return nil
}

// handleRefresh is the daily job. A channel gone, disabled or without
// templates ends the chain; a refused token too is tried again the next day
// (it may be replaced meanwhile); a network failure is retried by the queue.
func (s *Service) handleRefresh(ctx context.Context, j *queue.Job) error {
	var p refreshPayload
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	ch, lister, err := s.channelFor(ctx, store.All, p.ChannelID)
	if fe := fault.As(err); err != nil && fe != nil && (fe.Kind == fault.NotFound || fe.Kind == fault.Conflict) {
		s.log.Info("templates: daily refresh ends", "channel_id", p.ChannelID, "reason", fe.Code)
		return nil
	}
	if err != nil {
		return err
	}
	if ch.State != store.ChannelActive {
		s.log.Info("templates: daily refresh ends", "channel_id", ch.ID, "reason", "channel_disabled")
		return nil
	}
	err = s.fetchAndStore(ctx, ch, lister, j)
	if fe := fault.As(err); err != nil && fe != nil && fe.Code == "templates_token_refused" {
		s.log.Warn("templates: daily refresh refused by Meta; trying again tomorrow", "channel_id", ch.ID, "workspace_id", ch.WorkspaceID, "err", err)
		return s.st.Tx(ctx, func(tx *gorm.DB) error { return s.queueNext(tx, ch, j) })
	}
	return err
}

func view(r store.ChannelTemplate) Template {
	t := Template{Name: r.Name, Language: r.Language, Category: r.Category, Status: r.Status,
		Components: json.RawMessage(r.Components), SyncedAt: r.SyncedAt}
	if !json.Valid(t.Components) {
		t.Components = json.RawMessage("[]")
	}
	var comps []struct {
		Type   string `json:"type"`
		Format string `json:"format"`
		Text   string `json:"text"`
	}
	// Components are Meta's; an unreadable set counts no variables rather
	// than hiding the template.
	if json.Unmarshal(t.Components, &comps) == nil {
		for _, c := range comps {
			switch c.Type {
			case "HEADER", "header":
				if c.Format == "" || c.Format == "TEXT" || c.Format == "text" {
					t.HeaderVariables += channel.CountTemplateVariables(c.Text)
				} else {
					t.HeaderMedia = true
				}
			case "BODY", "body":
				t.BodyVariables += channel.CountTemplateVariables(c.Text)
			}
		}
	}
	t.Variables = t.HeaderVariables + t.BodyVariables
	return t
}
