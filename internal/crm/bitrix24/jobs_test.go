package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/metrics"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/queue/queuetest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// A deleted Open Line's event drops the line's bindings and ends its job
// in one commit: a run whose lease was taken drops nothing
// (ErrLeaseLost); the run holding the job drops them and leaves no job.
func TestLineDeletedEventEndsInTheCommitOfTheUnbinding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: "member-1", Domain: "p1.example", WorkspaceID: ws.ID,
			Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: ModeOpenLines, LineID: "107"}); err != nil {
			t.Fatal(err)
		}
		err = st.Tx(ctx, func(tx *gorm.DB) error {
			ev := &store.CRMEvent{IntegrationID: in.ID, Kind: "ONIMCONNECTORLINEDELETE", DedupKey: "line-107", Payload: `{"data":"107"}`}
			if _, err := store.InsertCRMEvent(tx, ev); err != nil {
				return err
			}
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobEvent, WorkspaceID: ws.ID, Payload: eventJob{EventID: ev.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		msg := messaging.New(st, channel.NewRegistry(), nil, nil, nil, log, messaging.Config{}, nil)
		s := New(Config{PublicURL: "https://gw.example"}, st, msg, routing.New(st, log),
			media.NewSigner(bytes.Repeat([]byte{6}, 32), "https://gw.example", time.Hour), http.DefaultClient, log)
		bound := func() int {
			t.Helper()
			bs, err := st.ListBindings(ctx, in.ID)
			if err != nil {
				t.Fatal(err)
			}
			return len(bs)
		}

		id := queuetest.Only(t, db, JobEvent)
		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		if err := s.handleEvent(ctx, late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if n := bound(); n != 1 {
			t.Fatalf("a run without the lease committed: %d bindings left, want 1", n)
		}
		if err := s.handleEvent(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if n := bound(); n != 0 {
			t.Fatalf("%d bindings of the deleted line left", n)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the event's job outlived the commit of the unbinding")
		}
	})
}

// An operator's reply from an Open Lines chat is stored for sending and
// its event's job ends in the same commit: a run whose lease was taken
// stores nothing (ErrLeaseLost); the run holding the job stores the reply
// once and leaves no job.
func TestOperatorMessageEndsInTheCommitOfTheSend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: "member-1", Domain: "p1.example", WorkspaceID: ws.ID,
			Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: ModeOpenLines, LineID: "1"}); err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		msg := messaging.New(st, channel.NewRegistry(), nil, nil, metrics.New(), log, messaging.Config{}, nil)
		s := New(Config{PublicURL: "https://gw.example"}, st, msg, routing.New(st, log),
			media.NewSigner(bytes.Repeat([]byte{6}, 32), "https://gw.example", time.Hour), http.DefaultClient, log)
		var ct *store.Contact
		err = st.Tx(ctx, func(tx *gorm.DB) error {
			// The customer wrote a minute ago: the window is open.
			wrote := store.Now().Add(-time.Minute)
			if ct, err = store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79161234567", Phone: "+79161234567"}, &wrote); err != nil {
				return err
			}
			payload, err := json.Marshal(map[string]any{"data": map[string]any{"CONNECTOR": s.ConnectorID(channel.WhatsApp), "LINE": "1",
				"MESSAGES": []any{map[string]any{"im": map[string]any{"chat_id": "11", "message_id": "901"},
					"message": map[string]any{"text": "Добрый день", "user_id": "5"}, "chat": map[string]any{"id": ct.ID}}}}})
			if err != nil {
				return err
			}
			ev := &store.CRMEvent{IntegrationID: in.ID, Kind: "ONIMCONNECTORMESSAGEADD", DedupKey: "msg-901", Payload: string(payload)}
			if _, err := store.InsertCRMEvent(tx, ev); err != nil {
				return err
			}
			_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobEvent, WorkspaceID: ws.ID, Payload: eventJob{EventID: ev.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sent := func() int64 {
			t.Helper()
			var n int64
			if err := db.Gorm.Raw(`SELECT COUNT(*) FROM messages WHERE direction = ? AND contact_id = ?`, store.Outbound, ct.ID).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}

		id := queuetest.Only(t, db, JobEvent)
		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		if err := s.handleEvent(ctx, late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if n := sent(); n != 0 {
			t.Fatalf("a run without the lease committed: %d replies stored, want 0", n)
		}
		if err := s.handleEvent(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if n := sent(); n != 1 {
			t.Fatalf("%d replies stored, want 1", n)
		}
		if _, err := st.LocalOf(ctx, in.ID, routing.LinkOutbound, "11:901"); err != nil {
			t.Fatalf("the reply is not linked to its Open Lines message: %v", err)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the event's job outlived the commit of the reply")
		}
	})
}

// A record the ensure-record job creates is linked in the commit that
// ends the job, while the creation's try mark before the call stays a
// commit of its own: a run whose lease was taken after its call links
// nothing (ErrLeaseLost); the run holding the job finds the lead that
// call made (by its ORIGIN_ID, since the mark says the call was made),
// links it without making a second, and leaves no job.
func TestEnsureRecordEndsInTheCommitOfTheLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sim := b24sim.New(b24sim.Options{})
		srv := httptest.NewServer(sim)
		t.Cleanup(func() { srv.Close(); sim.Close() })
		sim.SetBaseURL(srv.URL)
		portal := sim.AddPortal(b24sim.PortalOptions{MemberID: testMemberID})
		access, refresh := sim.InstallTokens(testMemberID)

		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: testMemberID, Domain: "p1.example",
			ClientEndpoint: sim.ClientEndpoint(), WorkspaceID: ws.ID, Expiry: time.Now().Add(time.Hour),
			Secrets: store.IntegrationSecrets{AccessToken: access, RefreshToken: refresh}})
		if err != nil {
			t.Fatal(err)
		}
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: ModeCRM, Entity: "lead"}); err != nil {
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
			if ct, err = store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79161234567", Name: "Анна"}, &wrote); err != nil {
				return err
			}
			_, err = queue.Enqueue(tx, queue.NewJob{Kind: routing.JobEnsureRecord, WorkspaceID: ws.ID, Payload: map[string]string{"contact_id": ct.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		msg := messaging.New(st, channel.NewRegistry(), nil, nil, metrics.New(), log, messaging.Config{}, nil)
		s := New(Config{PublicURL: "https://gw.example", AllowPrivate: true}, st, msg, routing.New(st, log),
			media.NewSigner(bytes.Repeat([]byte{6}, 32), "https://gw.example", time.Hour), http.DefaultClient, log)
		linked := func() string {
			t.Helper()
			got, err := st.RemoteOf(ctx, in.ID, linkCRMLead, b.ID+":"+ct.ID)
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
		if n := len(portal.Leads()); n != 1 {
			t.Fatalf("the run without the lease made %d leads, want 1", n)
		}
		if got := linked(); got != "" {
			t.Fatalf("a run without the lease linked lead %s", got)
		}
		if err := s.EnsureRecord(ctx, delivery(holder), ct); err != nil {
			t.Fatal(err)
		}
		leads := portal.Leads()
		if len(leads) != 1 {
			t.Fatalf("%d leads in the portal, want the one the first call made", len(leads))
		}
		if got, want := linked(), fmt.Sprint(leads[0]["ID"]); got != want {
			t.Fatalf("linked lead %q, want %q", got, want)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the ensure-record job outlived the commit of the links")
		}
	})
}

// An operator's message of several files is several sends, and its
// event's job does not end in the last one's commit: the first send links
// the message as sent, so a last send rolled back with a lost lease would
// be skipped by the run holding the job and never reach the customer. A
// run whose lease was taken stores both sends; the holder stores none
// again.
func TestOperatorFilesAllSentWhenTheLeaseIsLost(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write(append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte(r.URL.Path), 64)...))
		}))
		t.Cleanup(files.Close)
		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: "member-1", Domain: "p1.example", WorkspaceID: ws.ID,
			ClientEndpoint: files.URL + "/rest/", Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: ModeOpenLines, LineID: "1"}); err != nil {
			t.Fatal(err)
		}
		dir, err := media.NewLocalStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		msg := messaging.New(st, channel.NewRegistry(), dir, nil, metrics.New(), log, messaging.Config{}, nil)
		s := New(Config{PublicURL: "https://gw.example", AllowPrivate: true}, st, msg, routing.New(st, log),
			media.NewSigner(bytes.Repeat([]byte{6}, 32), "https://gw.example", time.Hour), http.DefaultClient, log)
		var ct *store.Contact
		err = st.Tx(ctx, func(tx *gorm.DB) error {
			wrote := store.Now().Add(-time.Minute)
			if ct, err = store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79161234567", Phone: "+79161234567"}, &wrote); err != nil {
				return err
			}
			payload, err := json.Marshal(map[string]any{"data": map[string]any{"CONNECTOR": s.ConnectorID(channel.WhatsApp), "LINE": "1",
				"MESSAGES": []any{map[string]any{"im": map[string]any{"chat_id": "11", "message_id": "902"},
					"message": map[string]any{"text": "Счёт и акт", "user_id": "5", "files": []any{
						map[string]any{"name": "a.jpg", "link": files.URL + "/a.jpg"}, map[string]any{"name": "b.jpg", "link": files.URL + "/b.jpg"}}},
					"chat": map[string]any{"id": ct.ID}}}}})
			if err != nil {
				return err
			}
			ev := &store.CRMEvent{IntegrationID: in.ID, Kind: "ONIMCONNECTORMESSAGEADD", DedupKey: "msg-902", Payload: string(payload)}
			if _, err := store.InsertCRMEvent(tx, ev); err != nil {
				return err
			}
			_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobEvent, WorkspaceID: ws.ID, Payload: eventJob{EventID: ev.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sent := func() int64 {
			t.Helper()
			var n int64
			if err := db.Gorm.Raw(`SELECT COUNT(*) FROM messages WHERE direction = ? AND contact_id = ?`, store.Outbound, ct.ID).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}

		id := queuetest.Only(t, db, JobEvent)
		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		lateErr := s.handleEvent(ctx, late)
		if err := s.handleEvent(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if n := sent(); n != 2 {
			t.Fatalf("%d of the 2 files stored for sending (the run without the lease: %v)", n, lateErr)
		}
	})
}
