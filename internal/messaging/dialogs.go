package messaging

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// SetClock replaces the service's clock (time.Now), which decides the hour
// of the dialog counter. Tests turn the hour with it instead of waiting one.
func (s *Service) SetClock(now func() time.Time) { s.clock.Store(&now) }

func (s *Service) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// location returns a workspace's time zone. The API accepts only zones
// that load, so a failure means the zone database changed under a running
// gateway: the hour is then taken in UTC, and said so, rather than holding
// every send of the workspace.
func (s *Service) location(tz string) *time.Location {
	if l, ok := s.zones.Load(tz); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		s.log.Warn("workspace time zone unusable; the dialog counter uses UTC", "timezone", tz, "err", err)
		return time.UTC
	}
	s.zones.Store(tz, l)
	return l
}

// Clock is a workspace's time zone, the clock its dialog counter keeps:
// the API shows a held message's held_until on it, as it shows the
// channel's dialogs.paused_until.
func (s *Service) Clock(ctx context.Context, workspaceID string) (*time.Location, error) {
	ws, err := s.store.GetWorkspace(ctx, store.All, workspaceID)
	if err != nil {
		return nil, err
	}
	return s.location(ws.Timezone), nil
}

// hourStart is the start of the hour that holds t on loc's clock. Minutes
// and seconds are taken off the instant rather than rebuilding a wall time
// with time.Date, which is ambiguous in the repeated hour of a DST change;
// zones offset by a half or three quarters of an hour (Asia/Kolkata,
// Asia/Kathmandu) get their own top of the hour.
func hourStart(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return l.Add(-(time.Duration(l.Minute())*time.Minute + time.Duration(l.Second())*time.Second + time.Duration(l.Nanosecond())))
}

// admitDialog applies the workspace's dialog counter to an outbound message
// about to go out. It returns nil when the message may go, or a queue.Snooze
// until the next hour when the channel has no room for a new dialog: the
// message stays queued and its job spends no attempt while it waits.
//
// The dialog is counted before Meta is called and stays counted if Meta
// then refuses the message. The decision has to be taken before the call
// for two workers not to pass the limit together; Meta opens a
// conversation when the message is delivered, which the gateway learns
// later (if ever) from a status webhook, so giving the slot back on a
// failure could let an hour pass the limit Meta counted. A failed first
// message may thus cost a slot Meta did not count, never the reverse, and
// a retried send of the same customer in the same hour finds its dialog
// counted and takes no second slot.
func (s *Service) admitDialog(ctx context.Context, ch *store.Channel, m *store.Message) error {
	ws, err := s.store.GetWorkspace(ctx, store.All, ch.WorkspaceID)
	if err != nil {
		return err
	}
	start := hourStart(s.now(), s.location(ws.Timezone))
	next := start.Add(time.Hour)
	v, err := s.store.AdmitDialog(ctx, store.DialogAdmission{ChannelID: ch.ID, ContactID: m.ContactID, MessageID: m.ID,
		HourStart: start, Limit: ws.DialogsPerHourLimit, Retry: next})
	if err != nil {
		return err
	}
	if v.Admitted {
		return nil
	}
	s.log.Info("message held by the dialog limit", "message_id", m.ID, "channel_id", ch.ID,
		"dialogs", v.ThisHour, "limit", ws.DialogsPerHourLimit, "until", next)
	return queue.Snooze(next, fmt.Errorf("dialog limit: %d of %d new dialogs this hour; waits until %s",
		v.ThisHour, ws.DialogsPerHourLimit, next.Format(time.RFC3339)))
}

// DialogCounter is what a channel shows of its dialog counter, on the
// workspace's clock.
type DialogCounter struct {
	// Limit is the workspace's dialogs_per_hour_limit; 0 means none.
	Limit int `json:"limit"`
	// ThisHour counts the channel's dialogs (customers sent a message)
	// in the current hour.
	ThisHour int `json:"this_hour"`
	// PausedUntil is set while the hour's dialogs are used up: new dialogs
	// wait until then (the next hour's start).
	PausedUntil *time.Time `json:"paused_until"`
	// Waiting counts the queued messages held by the limit.
	Waiting int `json:"waiting"`
}

// DialogCounters reads the dialog counters of channels, which may belong to
// several workspaces, keyed by channel id.
func (s *Service) DialogCounters(ctx context.Context, chs []store.Channel) (map[string]DialogCounter, error) {
	now := s.now()
	workspaces := map[string]*store.Workspace{}
	out := make(map[string]DialogCounter, len(chs))
	for _, ch := range chs {
		ws, ok := workspaces[ch.WorkspaceID]
		if !ok {
			var err error
			if ws, err = s.store.GetWorkspace(ctx, store.All, ch.WorkspaceID); err != nil {
				return nil, err
			}
			workspaces[ch.WorkspaceID] = ws
		}
		start := hourStart(now, s.location(ws.Timezone))
		st, err := s.store.DialogStats(ctx, ch.ID, start)
		if err != nil {
			return nil, err
		}
		c := DialogCounter{Limit: ws.DialogsPerHourLimit, ThisHour: st.ThisHour, Waiting: st.Waiting}
		if c.Limit > 0 && c.ThisHour >= c.Limit {
			next := start.Add(time.Hour)
			c.PausedUntil = &next
		}
		out[ch.ID] = c
	}
	return out, nil
}

// sendKey is the queue key of a customer's sends on a channel.
func sendKey(channelID, contactID string) string { return "send:" + channelID + ":" + contactID }

// HeldSendKeys returns the queue keys of the send jobs the dialog counter
// holds in a workspace, for waking them when its limit changes (see
// queue.Queue.Wake with JobSend): a job with room now goes out, the others
// are held again.
func (s *Service) HeldSendKeys(ctx context.Context, workspaceID string) ([]string, error) {
	held, err := s.store.HeldDialogs(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(held))
	for i, h := range held {
		keys[i] = sendKey(h.ChannelID, h.ContactID)
	}
	return keys, nil
}
