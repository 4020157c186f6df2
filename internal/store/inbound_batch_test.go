package store_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// Many messages in two statements leave what one upsert and one insert per
// message would: a customer's last non-empty name, the latest inbound
// time, the contact created once, every wamid stored once.
func TestStoreInboundRowsAsOneByOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := intakeStore(t, db)
		ch := newChannel(t, st)
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		at := func(min int) *time.Time { v := t0.Add(time.Duration(min) * time.Minute); return &v }
		known, err := store.UpsertContact(db.Gorm, ch, channel.Customer{ExternalID: "7701", Name: "Old"}, at(0))
		if err != nil {
			t.Fatal(err)
		}
		seen := &store.Message{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, Direction: store.Inbound, Type: "text", Text: "seen", Status: "received", ExternalID: ptr("w0")}
		if _, _, err := store.UpsertContactWithMessage(db.Gorm, ch, channel.Customer{ExternalID: "7701"}, nil, seen); err != nil {
			t.Fatal(err)
		}
		row := func(customer, name string, when *time.Time, wamid string) store.InboundRow {
			return store.InboundRow{Channel: ch, Customer: channel.Customer{ExternalID: customer, Name: name}, InboundAt: when,
				Message: &store.Message{Direction: store.Inbound, Type: "text", Text: wamid, Status: "received", ExternalID: ptr(wamid), ProviderAt: when}}
		}
		rows := []store.InboundRow{
			row("7701", "", at(1), "w1"),
			row("7701", "New", at(3), "w4"),
			row("7701", "", nil, "w0"), // stored before
			row("7702", "A", at(2), "w2"),
			row("7702", "B", at(1), "w3"), // older, but the last name given
			row("7702", "", nil, "w2"),    // the same wamid again
		}
		if err := store.StoreInboundRows(db.Gorm, rows); err != nil {
			t.Fatal(err)
		}
		wantInserted := []bool{true, true, false, true, true, false}
		wantCreated := []bool{false, false, false, true, false, false}
		for i, r := range rows {
			if r.Inserted != wantInserted[i] || r.Contact.Created != wantCreated[i] {
				t.Errorf("row %d: inserted %v created %v; want %v %v", i, r.Inserted, r.Contact.Created, wantInserted[i], wantCreated[i])
			}
			if r.Inserted && r.Message.ContactID != r.Contact.ID {
				t.Errorf("row %d: message of contact %s, row's contact %s", i, r.Message.ContactID, r.Contact.ID)
			}
		}
		if rows[0].Contact.ID != known.ID || rows[3].Contact.ID != rows[5].Contact.ID || rows[3].Contact.ID == known.ID {
			t.Errorf("contacts: %s %s %s (known %s)", rows[0].Contact.ID, rows[3].Contact.ID, rows[5].Contact.ID, known.ID)
		}
		for customer, want := range map[string]struct {
			name string
			at   time.Time
		}{"7701": {"New", *at(3)}, "7702": {"B", *at(2)}} {
			c, err := st.GetContact(t.Context(), ch.ID, customer)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != want.name || c.LastInboundAt == nil || !c.LastInboundAt.Equal(want.at) {
				t.Errorf("contact %s: name %q, last inbound %v; want %q %v", customer, c.Name, c.LastInboundAt, want.name, want.at)
			}
		}
		var texts []string
		if err := db.Gorm.Model(&store.Message{}).Where("channel_id = ?", ch.ID).Order("text").Pluck("text", &texts).Error; err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(texts, []string{"seen", "w1", "w2", "w3", "w4"}) {
			t.Errorf("stored %q", texts)
		}
	})
}

// Every column of a message goes through the multi-row insert (a column
// added to Message must be added to it too).
func TestStoreInboundRowsWritesEveryField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := intakeStore(t, db)
		ch := newChannel(t, st)
		base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		media := &store.Media{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, State: store.MediaPending, CreatedAt: base, UpdatedAt: base}
		if err := store.InsertMedia(db.Gorm, media); err != nil {
			t.Fatal(err)
		}
		m := &store.Message{}
		v := reflect.ValueOf(m).Elem()
		for i := range v.NumField() {
			s := "v" + v.Type().Field(i).Name
			at := base.Add(time.Duration(i) * time.Minute)
			switch p := v.Field(i).Addr().Interface().(type) {
			case *string:
				*p = s
			case **string:
				*p = &s
			case *bool:
				*p = true
			case *int:
				*p = 400 + i
			case **time.Time:
				*p = &at
			case *time.Time:
				// created_at and updated_at are the insert's own.
			default:
				t.Fatalf("field %s of a type this test does not fill", v.Type().Field(i).Name)
			}
		}
		m.ID, m.MediaID, m.QuotedMessageID = "", &media.ID, nil
		rows := []store.InboundRow{{Channel: ch, Customer: channel.Customer{ExternalID: "7701"}, Message: m}}
		if err := store.StoreInboundRows(db.Gorm, rows); err != nil || !rows[0].Inserted {
			t.Fatalf("insert: %v %v", rows[0].Inserted, err)
		}
		var got store.Message
		if err := db.Gorm.Where("id = ?", m.ID).First(&got).Error; err != nil {
			t.Fatal(err)
		}
		gv, wv := reflect.ValueOf(got), reflect.ValueOf(*m)
		for i := range gv.NumField() {
			name := gv.Type().Field(i).Name
			g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
			switch w := w.(type) {
			case time.Time:
				if !g.(time.Time).Equal(w) {
					t.Errorf("%s: read back %v, wrote %v", name, g, w)
				}
			case *time.Time:
				if gt := g.(*time.Time); gt == nil || !gt.Equal(*w) {
					t.Errorf("%s: read back %v, wrote %v", name, gt, *w)
				}
			default:
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s: read back %#v, wrote %#v", name, g, w)
				}
			}
		}
	})
}

func ptr(s string) *string { return &s }
