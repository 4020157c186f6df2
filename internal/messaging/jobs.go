package messaging

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/netguard"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// Register adds the service's job handlers to a queue.
func (s *Service) Register(q interface {
	Handle(kind string, h queue.Handler)
}) {
	q.Handle(JobSend, s.handleSend)
	q.Handle(JobFetchMedia, s.handleFetchMedia)
	q.Handle(JobProfile, s.handleProfile)
	q.Handle(JobMarkRead, s.handleMarkRead)
}

// handleProfile names a customer the webhook did not name. A refusal
// (no consent, blocked user) leaves the contact as it is.
func (s *Service) handleProfile(ctx context.Context, j *queue.Job) error {
	var p profileJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	ct, err := s.store.ContactByID(ctx, p.ContactID)
	if err != nil {
		return queue.Permanent(fmt.Errorf("contact %s: %w", p.ContactID, err))
	}
	ch, err := s.store.GetChannel(ctx, store.All, ct.ChannelID)
	if err != nil {
		return err
	}
	prov, ok := s.registry.ByType(channel.Type(ch.Type))
	if !ok || prov.Profiles == nil || ch.State != store.ChannelActive {
		return nil
	}
	creds, err := s.store.Credentials(ch)
	if err != nil {
		return queue.Permanent(err)
	}
	prof, err := prov.Profiles.FetchProfile(ctx, creds, ct.ExternalID)
	if err != nil {
		var se *channel.SendError
		if errors.As(err, &se) && se.Outcome != channel.OutcomeRetry {
			s.log.Info("customer profile unavailable", "contact_id", ct.ID, "reason", se.Err.String())
			return nil
		}
		return err
	}
	// A name or username the contact has is kept; a new avatar replaces
	// the old (Meta's avatar links expire).
	var up store.ProfileUpdate
	if ct.Name == "" {
		up.Name = prof.Name
	}
	if ct.Username == "" {
		up.Username = prof.Username
	}
	if prof.AvatarURL != ct.AvatarURL {
		up.AvatarURL = prof.AvatarURL
	}
	if up == (store.ProfileUpdate{}) {
		return nil
	}
	return queue.Finish(ctx, s.store, j, func(st *store.Store) error {
		return st.UpdateContactProfile(ctx, ct.ID, up)
	})
}

// maxLimiterWait is how long a worker waits for the channel's token
// bucket before handing the job back to the queue for later.
const maxLimiterWait = 2 * time.Second

func (s *Service) handleSend(ctx context.Context, j *queue.Job) error {
	var p sendJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	mv, err := s.store.GetMessage(ctx, store.All, p.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return queue.Permanent(fmt.Errorf("message %s is gone", p.MessageID))
	}
	if err != nil {
		return err
	}
	m := &mv.Message
	if m.Status != string(channel.StatusQueued) || m.ExternalID != nil {
		return nil // already handled by an earlier attempt
	}
	ch, err := s.store.GetChannel(ctx, store.All, m.ChannelID)
	if err != nil {
		return err
	}
	if ch.State != store.ChannelActive {
		reason := "channel is " + ch.State
		if ch.StateReason != "" {
			reason += ": " + ch.StateReason
		}
		return s.fail(ctx, j, ch, m, channel.ProviderError{Title: "channel unavailable", Details: reason})
	}
	prov, ok := s.registry.ByType(channel.Type(ch.Type))
	if !ok {
		return queue.Permanent(fmt.Errorf("no provider for %s", ch.Type))
	}
	creds, err := s.store.Credentials(ch)
	if err != nil {
		return s.fail(ctx, j, ch, m, channel.ProviderError{Title: "credentials unreadable", Details: "the channel's token cannot be decrypted; set it again"})
	}
	// Before the rate limiter: a message held for the next hour must not
	// take a token from the messages that can go now. The gateway's own
	// automatic messages (the branch menu) are neither held nor counted.
	if !p.Automatic {
		if err := s.admitDialog(ctx, ch, m); err != nil {
			return err
		}
	}
	if r := s.limiter(ch).Reserve(); r.Delay() > maxLimiterWait {
		r.Cancel()
		return queue.RetryAfter(r.Delay(), errors.New("channel send rate limit"))
	} else if d := r.Delay(); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			r.Cancel()
			return ctx.Err()
		}
	}

	out, err := s.outbound(ctx, prov, creds, ch, mv)
	if err != nil {
		return s.sendFailure(ctx, j, ch, m, err)
	}
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	res, err := prov.Sender.Send(sendCtx, creds, out)
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.OutboundLatency.WithLabelValues(ch.Type, result).Observe(time.Since(start).Seconds())
	if err != nil {
		return s.sendFailure(ctx, j, ch, m, err)
	}
	// Meta has accepted the message: from here a retry of the job would
	// send it twice, so recording is retried in place, and if the database
	// stays away the job is dead-lettered with the wamid, not re-sent.
	// The job's completion commits with the record (one commit, not two);
	// if its lease was lost the record is still written, without it, so
	// that the run now holding the job finds the message sent.
	complete := true
	for attempt := 0; ; attempt++ {
		err = s.store.Tx(ctx, func(tx *gorm.DB) error {
			if err := store.MarkSent(tx, m, res.ExternalID); err != nil {
				return err
			}
			if err := s.statusChanged(tx, ch, m); err != nil {
				return err
			}
			if complete {
				return queue.Done(tx, j)
			}
			return nil
		})
		if err == nil {
			break
		}
		if complete && errors.Is(err, queue.ErrLeaseLost) {
			complete = false
			attempt--
			continue
		}
		if attempt == 4 || ctx.Err() != nil {
			return queue.Permanent(fmt.Errorf("sent as %s but could not record it: %w", res.ExternalID, err))
		}
		time.Sleep(time.Duration(200<<attempt) * time.Millisecond)
	}
	s.metrics.Messages.WithLabelValues(ch.Type, store.Outbound, string(channel.StatusSent)).Inc()
	s.log.Info("message sent", "message_id", m.ID, "channel_id", ch.ID, "external_id", res.ExternalID)
	return nil
}

// outbound builds the provider request from a stored message.
func (s *Service) outbound(ctx context.Context, prov *channel.Provider, creds channel.Credentials, ch *store.Channel, mv *store.MessageView) (*channel.Outbound, error) {
	m := &mv.Message
	out := &channel.Outbound{To: mv.Contact.ExternalID, Type: channel.MsgType(m.Type), Text: m.Text,
		QuotedExternalID: m.QuotedExternalID, HumanAgent: m.HumanAgent}
	if m.Template != nil {
		var t channel.Template
		if err := jsonUnmarshal(*m.Template, &t); err != nil {
			return nil, queue.Permanent(err)
		}
		out.Template, out.Text = &t, ""
	}
	if md := mv.Media; md != nil {
		out.Media = &channel.Media{MimeType: md.MimeType, Filename: md.Filename, Caption: m.Text}
		out.Text = ""
		switch {
		case md.State == store.MediaRemote:
			out.Media.URL = md.SourceURL
		case md.ProviderID != "":
			out.Media.ProviderID = md.ProviderID
		case ch.Type == string(channel.WhatsApp):
			id, err := s.upload(ctx, prov, creds, md)
			if err != nil {
				return nil, err
			}
			out.Media.ProviderID = id
		default:
			// Instagram has no upload: Meta fetches our signed link.
			out.Media.URL = s.signer.URL(md.ID)
		}
	}
	return out, nil
}

func (s *Service) upload(ctx context.Context, prov *channel.Provider, creds channel.Credentials, md *store.Media) (string, error) {
	f, err := s.files.Open(ctx, md.StorageKey)
	if err != nil {
		return "", queue.Permanent(fmt.Errorf("open upload %s: %w", md.ID, err))
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("read upload %s: %w", md.ID, err)
	}
	id, err := prov.Sender.UploadMedia(ctx, creds, md.MimeType, md.Filename, data)
	if err != nil {
		return "", err
	}
	// Meta keeps uploads 30 days; a retry of this send reuses the id.
	if err := s.store.SetMediaProviderID(ctx, md.ID, id); err != nil {
		// The upload worked; a retry would only upload again.
		s.log.Warn("media upload id not kept", "media_id", md.ID, "err", err)
	}
	return id, nil
}

// sendFailure turns a send error into the message's fate.
func (s *Service) sendFailure(ctx context.Context, j *queue.Job, ch *store.Channel, m *store.Message, err error) error {
	var se *channel.SendError
	if errors.As(err, &se) {
		switch se.Outcome {
		case channel.OutcomeFailed:
			return s.fail(ctx, j, ch, m, se.Err)
		case channel.OutcomeChannelError:
			reason := se.Err.String()
			s.log.Error("channel put into error state", "channel_id", ch.ID, "reason", reason)
			return s.fail(ctx, j, ch, m, se.Err, func(st *store.Store) error {
				return st.SetChannelState(ctx, ch.ID, store.ChannelError, reason)
			})
		}
	}
	if errors.Is(err, netguard.ErrPrivateAddress) {
		return s.fail(ctx, j, ch, m, channel.ProviderError{Title: "media link refused", Details: err.Error()})
	}
	if j.Attempts >= j.MaxAttempts {
		pe := channel.ProviderError{Title: "gave up after retries", Details: err.Error()}
		if se != nil {
			pe = se.Err
		}
		return s.fail(ctx, j, ch, m, pe)
	}
	if se != nil && se.RetryAfter > 0 {
		return queue.RetryAfter(se.RetryAfter, err)
	}
	return err
}

// fail records the message as failed, with the other writes the failure
// takes (a channel put into error state), and ends the send job j in the
// same commit.
func (s *Service) fail(ctx context.Context, j *queue.Job, ch *store.Channel, m *store.Message, pe channel.ProviderError, also ...func(st *store.Store) error) error {
	err := s.store.Tx(ctx, func(tx *gorm.DB) error {
		for _, write := range also {
			if err := write(s.store.InTx(tx)); err != nil {
				return err
			}
		}
		if err := store.MarkFailed(tx, m, pe); err != nil {
			return err
		}
		if m.Status == string(channel.StatusFailed) { // else it had moved on already (e.g. read)
			m.ErrorCode, m.ErrorTitle, m.ErrorDetail = pe.Code, pe.Title, cmp.Or(pe.Details, pe.Message)
			if err := s.statusChanged(tx, ch, m); err != nil {
				return err
			}
		}
		return queue.Done(tx, j)
	})
	if err != nil {
		return err
	}
	s.metrics.Messages.WithLabelValues(ch.Type, store.Outbound, string(channel.StatusFailed)).Inc()
	s.log.Warn("message failed", "message_id", m.ID, "channel_id", ch.ID, "code", pe.Code, "reason", pe.String())
	return nil
}

func (s *Service) handleFetchMedia(ctx context.Context, j *queue.Job) error {
	var p fetchMediaJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	md, err := s.store.GetMedia(ctx, p.MediaID)
	if errors.Is(err, store.ErrNotFound) {
		return queue.Permanent(fmt.Errorf("media %s is gone", p.MediaID))
	}
	if err != nil {
		return err
	}
	if md.State != store.MediaPending {
		return nil
	}
	ch, err := s.store.GetChannel(ctx, store.All, md.ChannelID)
	if err != nil {
		return err
	}
	prov, ok := s.registry.ByType(channel.Type(ch.Type))
	if !ok || prov.Fetcher == nil {
		return queue.Permanent(fmt.Errorf("no media fetcher for %s", ch.Type))
	}
	creds, err := s.store.Credentials(ch)
	if err != nil {
		return s.mediaFailed(ctx, j, md, "channel token cannot be decrypted")
	}
	dl, err := prov.Fetcher.FetchMedia(ctx, creds, &channel.Media{ProviderID: md.ProviderID, URL: md.SourceURL, MimeType: md.MimeType}, s.cfg.MediaMaxBytes)
	if err != nil {
		var se *channel.SendError
		switch {
		case errors.Is(err, netguard.ErrPrivateAddress), errors.Is(err, channel.ErrTooLarge):
			return s.mediaFailed(ctx, j, md, err.Error())
		case errors.As(err, &se) && se.Outcome == channel.OutcomeChannelError:
			return s.mediaFailed(ctx, j, md, se.Err.String(), func(st *store.Store) error {
				return st.SetChannelState(ctx, ch.ID, store.ChannelError, se.Err.String())
			})
		case errors.As(err, &se) && se.Outcome == channel.OutcomeFailed:
			return s.mediaFailed(ctx, j, md, se.Err.String())
		case j.Attempts >= j.MaxAttempts:
			return s.mediaFailed(ctx, j, md, err.Error())
		}
		return fmt.Errorf("fetch media %s: %w", md.ID, err)
	}
	sum := sha256.Sum256(dl.Data)
	key := md.WorkspaceID + "/" + md.ChannelID + "/" + md.ID
	if _, err := s.files.Put(ctx, key, bytes.NewReader(dl.Data)); err != nil {
		return err
	}
	mime := dl.MimeType
	if mime == "" {
		mime = md.MimeType
	}
	if mime == "" {
		mime = http.DetectContentType(dl.Data)
	}
	return queue.Finish(ctx, s.store, j, func(st *store.Store) error {
		return st.MarkMediaStored(ctx, md.ID, store.StoredFile{
			Key: key, Size: int64(len(dl.Data)), SHA256: hex.EncodeToString(sum[:]), MimeType: mime})
	})
}

// mediaFailed records why the file cannot be had, with the other writes
// the failure takes (a channel put into error state), and ends the fetch
// job j in the same commit.
func (s *Service) mediaFailed(ctx context.Context, j *queue.Job, md *store.Media, reason string, also ...func(st *store.Store) error) error {
	s.log.Warn("media download failed", "media_id", md.ID, "channel_id", md.ChannelID, "reason", reason)
	return queue.Finish(ctx, s.store, j, func(st *store.Store) error {
		for _, write := range also {
			if err := write(st); err != nil {
				return err
			}
		}
		return st.MarkMediaFailed(ctx, md.ID, reason)
	})
}

// OpenMedia returns a stored file for the signed-URL handler.
func (s *Service) OpenMedia(ctx context.Context, id string) (*store.Media, io.ReadSeekCloser, error) {
	md, err := s.store.GetMedia(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if md.State != store.MediaStored {
		return md, nil, media.ErrNotFound
	}
	f, err := s.files.Open(ctx, md.StorageKey)
	return md, f, err
}
