package amocrm

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The escalation task counts whole minutes to the nearest: the timer of a
// 300-second delay fires a moment after it, and says 5 minutes, not 6.
func TestTaskTextMinutes(t *testing.T) {
	s := &Service{}
	d := &routing.Delivery{Binding: &store.ChannelBinding{Name: "WhatsApp Продажи"}, Channel: &store.Channel{Name: "Продажи"}}
	dv := &store.DialogView{Contact: &store.Contact{Name: "Анна", Phone: "+79161234567"}}
	cases := []struct {
		waited time.Duration
		lang   string
		want   string
	}{
		{5*time.Minute + 300*time.Millisecond, "ru", "Клиент Анна (+79161234567) ждёт ответа 5 мин. в канале «WhatsApp Продажи»"},
		{5*time.Minute + 300*time.Millisecond, "en", "Customer Анна (+79161234567) has been waiting 5 min for an answer in channel “WhatsApp Продажи”"},
		{4*time.Minute + 59*time.Second, "ru", "ждёт ответа 5 мин."},
		{30 * time.Second, "en", "waiting 1 min"},
		{10 * time.Second, "ru", "ждёт ответа 1 мин."},
		{90*time.Minute + 10*time.Second, "ru", "ждёт ответа 90 мин."},
	}
	for _, c := range cases {
		got := s.taskText(d, routing.Notice{Kind: routing.NoticeEscalation, Dialog: dv, Waited: c.waited}, c.lang)
		if !strings.Contains(got, c.want) {
			t.Errorf("%v %s: %q, want %q", c.waited, c.lang, got, c.want)
		}
	}
}
