package amocrm

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// An account whose subscription lapsed answers every API call with 402.
// The first 402 marks the integration unpaid (visible in the API and the
// cabinet, with the reason below) and queues a probe; the work of the
// account is parked meanwhile (routing treats an unpaid integration as
// not live: customers' messages are stored and wait, none is lost). The
// probe asks GET /api/v4/account every PaymentProbeInterval; once it
// answers, the integration is active again and the parked work resumes at
// once, with no reinstall.

// JobPaymentProbe asks an unpaid account whether it was paid.
const JobPaymentProbe = "amocrm.payment_probe"

// CodeAccountUnpaid refuses what needs the API of an unpaid account.
const CodeAccountUnpaid = "crm_account_unpaid"

// UnpaidReason is the state reason of an unpaid integration.
const UnpaidReason = "amoCRM account is not paid (HTTP 402): its work waits and resumes by itself once the account is paid (checked every 10 minutes)"

// PaymentProbeKey is the queue key of an integration's probe; tests wake
// it (queue.Wake) instead of waiting the interval.
func PaymentProbeKey(integrationID string) string { return "amocrm.paid:" + integrationID }

type probeJob struct {
	IntegrationID string `json:"integration_id"`
}

// markUnpaid is the client's OnPaymentRequired: a live integration
// becomes unpaid and gets its probe, in one transaction, once (a second
// 402 finds it unpaid already and changes nothing).
func (s *Service) markUnpaid(ctx context.Context, integrationID string) {
	in, err := s.store.GetIntegration(ctx, store.All, integrationID)
	if err != nil {
		s.log.Error("amocrm: unpaid account", "integration_id", integrationID, "err", err)
		return
	}
	changed := false
	err = s.store.Tx(ctx, func(tx *gorm.DB) error {
		ok, err := s.store.ChangeIntegrationState(tx, in.ID, []string{store.IntegrationActive, store.IntegrationHandlersMismatch},
			store.IntegrationUnpaid, UnpaidReason)
		if err != nil || !ok {
			return err
		}
		changed = true
		_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobPaymentProbe, WorkspaceID: in.WorkspaceID, Key: PaymentProbeKey(in.ID),
			Payload: probeJob{IntegrationID: in.ID}, RunAt: store.Now().Add(PaymentProbeInterval), MaxAttempts: 50})
		return err
	})
	if err != nil {
		// The 402 still parks the job that met it; the next one tries
		// to mark the account again.
		s.log.Error("amocrm: mark the account unpaid", "integration_id", in.ID, "err", err)
		return
	}
	if changed {
		s.log.Warn("amocrm account is not paid; its work waits", "integration_id", in.ID, "host", in.Domain)
		s.notify()
	}
}

// handlePaymentProbe asks an unpaid account for itself. Still 402 (or
// unreachable): again in PaymentProbeInterval, without spending an
// attempt. Answered: the integration is active again and its parked work
// resumes. An integration that became something else meanwhile
// (reinstalled, uninstalled, refused its tokens) has its own way back.
// The state's change, the re-armed work and the probe's end are one
// commit: a probe that lost its lease changes nothing, and one that ended
// has resumed everything.
func (s *Service) handlePaymentProbe(ctx context.Context, j *queue.Job) error {
	var p probeJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	in, err := s.store.GetIntegration(ctx, store.All, p.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch in.State {
	case store.IntegrationUnpaid:
	case store.IntegrationActive:
		// A retry of a probe that found the account paid but did not
		// end (its commit failed, or the integration was activated by
		// other means): the parked work still needs re-arming.
		return s.resumePaid(ctx, j, in, false)
	default:
		return nil
	}
	if _, err := s.API(in).Account(ctx); err != nil {
		if NeedsReauth(err) {
			return nil // marked needs_reauth: a reinstall brings it back
		}
		s.log.Info("amocrm account still unusable", "integration_id", in.ID, "err", err)
		return queue.Snooze(store.Now().Add(PaymentProbeInterval), err)
	}
	if err := s.resumePaid(ctx, j, in, true); err != nil {
		return err
	}
	s.log.Info("amocrm account is paid again; its work resumes", "integration_id", in.ID)
	return nil
}

// resumePaid makes the integration active (when activate says so),
// re-arms the account's parked work (routing's: mirroring, notices,
// chats; and the integration's own jobs that met the 402) and ends the
// probe j, in one transaction.
func (s *Service) resumePaid(ctx context.Context, j *queue.Job, in *store.Integration, activate bool) error {
	err := s.store.Tx(ctx, func(tx *gorm.DB) error {
		if activate {
			if _, err := s.store.ChangeIntegrationState(tx, in.ID, []string{store.IntegrationUnpaid}, store.IntegrationActive, ""); err != nil {
				return err
			}
		}
		if err := s.router.ResumeIn(ctx, tx, in.WorkspaceID); err != nil {
			return err
		}
		if err := queue.RearmIn(tx, in.WorkspaceID, JobAssign, JobDP); err != nil {
			return err
		}
		return queue.Done(tx, j)
	})
	if err != nil {
		return fmt.Errorf("amocrm: resume %s: %w", in.ID, err)
	}
	s.notify()
	return nil
}
