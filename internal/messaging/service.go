// Package messaging is the gateway's core for messages: it stores what
// messengers deliver, accepts what operators send, and does the slow work
// (sending, fetching media) in queue jobs.
package messaging

import (
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/metrics"
	"github.com/switchboard/switchboard/internal/store"
)

// Job kinds.
const (
	JobSend       = "message.send"
	JobFetchMedia = "media.fetch"
	JobProfile    = "contact.profile"
	JobMarkRead   = "message.mark_read"
)

// Config holds the limits the service enforces.
type Config struct {
	MediaMaxBytes  int64
	UploadMaxBytes int64
	SendRate       float64 // default per-channel messages per second
	SendBurst      int
	SendTimeout    time.Duration
}

// Service is the messaging core.
type Service struct {
	store    *store.Store
	registry *channel.Registry
	files    media.Store
	signer   *media.Signer
	metrics  *metrics.Metrics
	log      *slog.Logger
	cfg      Config
	// notify wakes the queue after a commit that enqueued work.
	notify func()

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	hooks    []Hook

	// clock is nil for time.Now; SetClock replaces it.
	clock atomic.Pointer[func() time.Time]
	zones sync.Map // time zone name → *time.Location
	// marks throttles the channels' "last webhook seen" writes.
	marks webhookMarks
	// committer groups concurrent deliveries into shared transactions.
	committer committer
}

// Hook lets integrations follow what the core stores. Each call runs
// inside the transaction that stored the change, so work a hook enqueues
// commits or rolls back with it.
type Hook interface {
	// MessageStored: a new customer message, an echo of one the
	// business sent from elsewhere, or a message Send queued (outbound,
	// status queued).
	MessageStored(tx *gorm.DB, ch *store.Channel, m *store.Message) error
	// StatusChanged: an outbound message moved to m.Status.
	StatusChanged(tx *gorm.DB, ch *store.Channel, m *store.Message) error
}

// StatusesHook is a Hook that can take a channel's status changes of a
// group of webhooks in one call (routing reads their CRM links with one
// statement). The call must do what StatusChanged for each message in
// order would do.
type StatusesHook interface {
	Hook
	StatusesChanged(tx *gorm.DB, ch *store.Channel, ms []*store.Message) error
}

// Notify wakes the queue workers (after a commit that enqueued work).
func (s *Service) Notify() { s.notify() }

// AddHook registers a hook; call it before the queue starts.
func (s *Service) AddHook(h Hook) { s.hooks = append(s.hooks, h) }

func (s *Service) messageStored(tx *gorm.DB, ch *store.Channel, m *store.Message) error {
	for _, h := range s.hooks {
		if err := h.MessageStored(tx, ch, m); err != nil {
			return err
		}
	}
	return nil
}

// statusesChanged calls the hooks for status changes in order: a
// StatusesHook once per run of the same channel's changes, any other
// hook once per change. Each hook sees the changes in their order; one
// hook's calls no longer interleave with another's, which no hook can
// tell (each writes only its own rows).
func (s *Service) statusesChanged(tx *gorm.DB, chs []*store.Channel, ms []*store.Message) error {
	for _, h := range s.hooks {
		bh, ok := h.(StatusesHook)
		for i := 0; i < len(ms); {
			if !ok {
				if err := h.StatusChanged(tx, chs[i], ms[i]); err != nil {
					return err
				}
				i++
				continue
			}
			j := i + 1
			for j < len(ms) && chs[j].ID == chs[i].ID {
				j++
			}
			if err := bh.StatusesChanged(tx, chs[i], ms[i:j]); err != nil {
				return err
			}
			i = j
		}
	}
	return nil
}

func (s *Service) statusChanged(tx *gorm.DB, ch *store.Channel, m *store.Message) error {
	for _, h := range s.hooks {
		if err := h.StatusChanged(tx, ch, m); err != nil {
			return err
		}
	}
	return nil
}

func New(st *store.Store, reg *channel.Registry, files media.Store, signer *media.Signer, m *metrics.Metrics, log *slog.Logger, cfg Config, notify func()) *Service {
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if notify == nil {
		notify = func() {}
	}
	s := &Service{store: st, registry: reg, files: files, signer: signer, metrics: m, log: log, cfg: cfg, notify: notify, limiters: map[string]*rate.Limiter{}}
	s.committer.maxLeaders = leadersSQLite
	if st.DB.Dialect == store.Postgres {
		s.committer.maxLeaders = leadersPostgres
	}
	return s
}

// limiter is the channel's token bucket; a channel's own rate overrides
// the default.
func (s *Service) limiter(ch *store.Channel) *rate.Limiter {
	r := s.cfg.SendRate
	if ch.SendRate > 0 {
		r = ch.SendRate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[ch.ID]
	if !ok || l.Limit() != rate.Limit(r) {
		l = rate.NewLimiter(rate.Limit(r), s.cfg.SendBurst)
		s.limiters[ch.ID] = l
	}
	return l
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
