package demo_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/app/demo"
)

// The phone shows a file the business sent with its name and caption, as
// the customer's WhatsApp would, not as a bare "[document]", and a
// template as its approved text with the parameters in place.
func TestDemoPhoneShowsFileCaptions(t *testing.T) {
	d := start(t, t.TempDir())
	send := func(body map[string]any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, d.URLs.Graph+"/v21.0/"+demo.PhoneNumberID+"/messages", bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+demo.WAToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	to := "+" + demo.CustomerWaID
	send(map[string]any{"messaging_product": "whatsapp", "to": to, "type": "document",
		"document": map[string]string{"id": "m1", "caption": "Наш прайс", "filename": "price.pdf"}})
	send(map[string]any{"messaging_product": "whatsapp", "to": to, "type": "video",
		"video": map[string]string{"id": "m2", "caption": "Как доехать"}})
	send(map[string]any{"messaging_product": "whatsapp", "to": to, "type": "audio", "audio": map[string]string{"id": "m3"}})
	send(map[string]any{"messaging_product": "whatsapp", "to": to, "type": "template", "template": map[string]any{
		"name": "order_update", "language": map[string]string{"code": "ru", "policy": "deterministic"},
		"components": []any{map[string]any{"type": "body", "parameters": []any{
			map[string]string{"type": "text", "text": "Анна"}, map[string]string{"type": "text", "text": "A-1024"}}}}}})
	var got []string
	for _, m := range d.Conversation() {
		got = append(got, m.Text)
	}
	want := []string{"[document] price.pdf\nНаш прайс", "[video]\nКак доехать", "[audio]", "Здравствуйте, Анна! Заказ A-1024 передан в доставку."}
	if len(got) != len(want) {
		t.Fatalf("the phone shows %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bubble %d: %q, want %q", i, got[i], want[i])
		}
	}
}
