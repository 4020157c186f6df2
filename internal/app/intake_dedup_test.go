package app_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

// Meta redelivers a message from a new customer several times at once
// (the intake no longer looks the wamid up before inserting): every copy
// is answered 200, the message is stored once, the customer once.
func TestConcurrentRedeliveryStoredOnce(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"` + apptest.WabaID + `","changes":[{"field":"messages","value":{` +
			`"messaging_product":"whatsapp","metadata":{"display_phone_number":"77012345678","phone_number_id":"` + apptest.PhoneNumberID + `"},` +
			`"contacts":[{"profile":{"name":""},"wa_id":"79995550001"}],` +
			`"messages":[{"from":"79995550001","id":"wamid.RACE1","timestamp":"1767600000","type":"text","text":{"body":"дважды"}}]}}]}]}`)
		const n = 8
		statuses := make([]int, n)
		bodies := make([]map[string]any, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i], bodies[i] = e.PostWebhook(body)
			}()
		}
		wg.Wait()
		stored, dups := 0.0, 0.0
		for i := range n {
			if statuses[i] != http.StatusOK {
				t.Fatalf("copy %d: %d %v", i, statuses[i], bodies[i])
			}
			s, _ := bodies[i]["stored"].(float64)
			d, _ := bodies[i]["duplicates"].(float64)
			stored, dups = stored+s, dups+d
		}
		if stored != 1 || dups != n-1 {
			t.Fatalf("stored %v, duplicates %v; want 1 and %d", stored, dups, n-1)
		}
		if ms := e.Messages(ch); len(ms) != 1 {
			t.Fatalf("%d messages stored: %v", len(ms), ms)
		}
		var contacts int64
		e.App.DB.Gorm.Model(&store.Contact{}).Where("channel_id = ?", ch).Count(&contacts)
		if contacts != 1 {
			t.Fatalf("%d contacts for one customer", contacts)
		}
	})
}
