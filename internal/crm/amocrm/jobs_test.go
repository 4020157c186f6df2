package amocrm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/queue/queuetest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// The amojo connect job keeps the channel's scope and ends in one commit:
// a run whose lease was taken keeps nothing (ErrLeaseLost; the connect
// call it made is repeated, and amojo answers it alike); the run holding
// the job keeps the scope and leaves no job.
func TestAmojoConnectEndsInTheCommitOfTheScope(t *testing.T) {
	const chanID, chanSecret = "f90ba33d-c9d9-44da-b76c-c349b0ecbe41", "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189"
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sim := amosim.New(amosim.Options{ChannelID: chanID, ChannelSecret: chanSecret})
		acc := amosim.ExampleAccount()
		if err := sim.AddAccount(acc); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(sim)
		t.Cleanup(func() { srv.Close(); sim.Close() })

		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: "30123456", Domain: strings.TrimPrefix(srv.URL, "http://"),
			WorkspaceID: ws.ID, ChatAccountID: acc.AmojoID, Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		err = st.Tx(ctx, func(tx *gorm.DB) error {
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobAmojoConnect, WorkspaceID: ws.ID, Payload: amojoConnectJob{IntegrationID: in.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		msg := messaging.New(st, channel.NewRegistry(), nil, nil, nil, log, messaging.Config{}, nil)
		s := New(Config{PublicURL: "https://gw.example", BaseURL: srv.URL, ChannelID: chanID, ChannelSecret: chanSecret},
			st, msg, routing.New(st, log), http.DefaultClient, log)
		scope := func() string {
			t.Helper()
			got, err := st.RemoteOf(ctx, in.ID, linkAmojoScope, "scope")
			if errors.Is(err, store.ErrNotFound) {
				return ""
			}
			if err != nil {
				t.Fatal(err)
			}
			return got
		}

		id := queuetest.Only(t, db, JobAmojoConnect)
		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		if err := s.handleAmojoConnect(ctx, late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if got := scope(); got != "" {
			t.Fatalf("a run without the lease kept the scope %q", got)
		}
		if err := s.handleAmojoConnect(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if got, want := scope(), chanID+"_"+acc.AmojoID; got != want {
			t.Fatalf("scope %q, want %q", got, want)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the connect job outlived the commit of the scope")
		}
	})
}

// A payment probe that finds the account paid makes the integration
// active, re-arms its parked work and ends, in one commit: a run whose
// lease was taken changes none of it (ErrLeaseLost); the run holding the
// probe does all of it and leaves no probe.
func TestPaymentProbeEndsInTheCommitOfTheResume(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sim := amosim.New(amosim.Options{})
		acc := amosim.ExampleAccount()
		if err := sim.AddAccount(acc); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(sim)
		t.Cleanup(func() { srv.Close(); sim.Close() })
		tok, err := sim.LongLivedToken(acc.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}

		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: strconv.Itoa(acc.ID), Domain: strings.TrimPrefix(srv.URL, "http://"),
			WorkspaceID: ws.ID, Secrets: store.IntegrationSecrets{AccessToken: tok}})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetIntegrationState(ctx, in.ID, store.IntegrationUnpaid, UnpaidReason); err != nil {
			t.Fatal(err)
		}
		err = st.Tx(ctx, func(tx *gorm.DB) error {
			// Work the 402 parked, put off for an hour.
			if _, err := queue.Enqueue(tx, queue.NewJob{Kind: JobAssign, WorkspaceID: ws.ID, Payload: map[string]string{},
				RunAt: store.Now().Add(time.Hour)}); err != nil {
				return err
			}
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobPaymentProbe, WorkspaceID: ws.ID, Key: PaymentProbeKey(in.ID),
				Payload: probeJob{IntegrationID: in.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		msg := messaging.New(st, channel.NewRegistry(), nil, nil, nil, log, messaging.Config{}, nil)
		s := New(Config{PublicURL: "https://gw.example", BaseURL: srv.URL, AllowPrivate: true}, st, msg, routing.New(st, log), http.DefaultClient, log)
		state := func() string {
			t.Helper()
			got, err := st.GetIntegration(ctx, store.All, in.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.State
		}
		parked := func() bool {
			t.Helper()
			var n int64
			if err := db.Gorm.Raw(`SELECT COUNT(*) FROM jobs WHERE kind = ? AND run_at > ?`, JobAssign, store.Now()).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n == 1
		}

		id := queuetest.Only(t, db, JobPaymentProbe)
		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		if err := s.handlePaymentProbe(ctx, late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if got := state(); got != store.IntegrationUnpaid || !parked() {
			t.Fatalf("a run without the lease committed: state %q, work parked %v", got, parked())
		}
		if err := s.handlePaymentProbe(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if got := state(); got != store.IntegrationActive {
			t.Fatalf("state %q, want %q", got, store.IntegrationActive)
		}
		if parked() {
			t.Fatal("the parked work was not re-armed")
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the probe outlived the commit of the resume")
		}
	})
}

// A lead the ensure-record job creates is linked in the commit that ends
// the job, while the creation's try mark before the call stays a commit
// of its own: a run whose lease was taken after its call links nothing
// (ErrLeaseLost); the run holding the job takes the lead that call made
// and leaves no job. Without a phone the lead is found through the try
// mark (the recent leads); with one, through the contact the lead brought
// (the adoption, whose commit then ends the job).
func TestEnsureRecordEndsInTheCommitOfTheLinks(t *testing.T) {
	for _, tc := range []struct{ name, phone string }{{"by try mark", ""}, {"by contact", "+79161234567"}} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				sim := amosim.New(amosim.Options{})
				acc := amosim.ExampleAccount()
				if err := sim.AddAccount(acc); err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(sim)
				t.Cleanup(func() { srv.Close(); sim.Close() })
				tok, err := sim.LongLivedToken(acc.ID, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				st, ws := storetest.Workspace(t, db)
				in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: strconv.Itoa(acc.ID), Domain: strings.TrimPrefix(srv.URL, "http://"),
					WorkspaceID: ws.ID, Secrets: store.IntegrationSecrets{AccessToken: tok}})
				if err != nil {
					t.Fatal(err)
				}
				ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
				if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
					t.Fatal(err)
				}
				if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: ModeCRM,
					CategoryID: "7000001", StageID: "61000002"}); err != nil {
					t.Fatal(err)
				}
				bs, err := st.ListBindings(ctx, in.ID)
				if err != nil || len(bs) != 1 {
					t.Fatalf("bindings %v, %v", bs, err)
				}
				b := &bs[0]
				var ct *store.Contact
				err = st.Tx(ctx, func(tx *gorm.DB) error {
					wrote := store.Now().Add(-time.Minute)
					if ct, err = store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79161234567", Name: "Анна", Phone: tc.phone}, &wrote); err != nil {
						return err
					}
					_, err = queue.Enqueue(tx, queue.NewJob{Kind: routing.JobEnsureRecord, WorkspaceID: ws.ID, Payload: map[string]string{"contact_id": ct.ID}})
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				log := slog.New(slog.NewTextHandler(io.Discard, nil))
				msg := messaging.New(st, channel.NewRegistry(), nil, nil, nil, log, messaging.Config{}, nil)
				s := New(Config{PublicURL: "https://gw.example", BaseURL: srv.URL, AllowPrivate: true}, st, msg, routing.New(st, log), http.DefaultClient, log)
				linked := func() string {
					t.Helper()
					got, err := st.RemoteOf(ctx, in.ID, linkLead, b.ID+":"+ct.ID)
					if errors.Is(err, store.ErrNotFound) {
						return ""
					}
					if err != nil {
						t.Fatal(err)
					}
					return got
				}
				delivery := func(j *queue.Job) *routing.Delivery {
					return &routing.Delivery{Integration: in, Binding: b, Channel: ch, Contact: ct, Job: j}
				}

				id := queuetest.Only(t, db, routing.JobEnsureRecord)
				late := queuetest.Hold(t, db, id, "late")
				holder := queuetest.Hold(t, db, id, "holder")
				if err := s.EnsureRecord(ctx, delivery(late), ct); !errors.Is(err, queue.ErrLeaseLost) {
					t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
				}
				if n := len(sim.Leads(acc.ID)); n != 1 {
					t.Fatalf("the run without the lease made %d leads, want 1", n)
				}
				if got := linked(); got != "" {
					t.Fatalf("a run without the lease linked lead %s", got)
				}
				if err := s.EnsureRecord(ctx, delivery(holder), ct); err != nil {
					t.Fatal(err)
				}
				leads := sim.Leads(acc.ID)
				if len(leads) != 1 {
					t.Fatalf("%d leads in the account, want the one the first call made", len(leads))
				}
				if got, want := linked(), strconv.Itoa(leads[0].ID); got != want {
					t.Fatalf("linked lead %q, want %q", got, want)
				}
				if queuetest.Exists(t, db, id) {
					t.Fatal("the ensure-record job outlived the commit of the links")
				}
			})
		})
	}
}
