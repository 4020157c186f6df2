package demo

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
)

// metaHandler serves the simulated customer's phone at / and /phone/…, and
// the Meta simulator (Graph API, media) at every other path.
func (d *Demo) metaHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.phonePage)
	mux.HandleFunc("GET /phone/messages", d.phoneMessages)
	mux.HandleFunc("POST /phone/send", d.phoneSend)
	mux.HandleFunc("POST /phone/close-window", d.phoneCloseWindow)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/", d.Meta)
	return mux
}

// PhoneMessage is one bubble on the customer's phone.
type PhoneMessage struct {
	ID   string    `json:"id"`
	Mine bool      `json:"mine"` // written by the customer
	Text string    `json:"text"`
	Time time.Time `json:"time"`
	// Clock is Time as people in Russia read it (24-hour, "18:05") in the
	// demo workspace's time zone, made here rather than by the browser,
	// whose locale may well be en-US's "6:05 PM".
	Clock string `json:"clock"`
	// Ticks of the customer's own messages: sent (the gateway took the
	// webhook), read (the business marked it read).
	Ticks string `json:"ticks,omitempty"`
}

// Conversation is the customer's WhatsApp conversation with the business
// as the phone shows it, rebuilt from what the Meta simulator delivered
// and was asked to send: the customer's messages, the business's texts
// and the read marks.
func (d *Demo) Conversation() []PhoneMessage {
	var out []PhoneMessage
	index := map[string]int{}
	for _, w := range d.Meta.Webhooks() {
		if w.Kind != "whatsapp.message" {
			continue
		}
		var p struct {
			Entry []struct {
				Changes []struct {
					Value struct {
						Messages []struct {
							ID   string `json:"id"`
							From string `json:"from"`
							Type string `json:"type"`
							Text struct {
								Body string `json:"body"`
							} `json:"text"`
						} `json:"messages"`
					} `json:"value"`
				} `json:"changes"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(w.Body, &p); err != nil {
			continue // not a message payload; the phone shows messages only
		}
		for _, e := range p.Entry {
			for _, c := range e.Changes {
				for _, m := range c.Value.Messages {
					if m.From != CustomerWaID {
						continue
					}
					ticks := ""
					if w.OK() {
						ticks = "delivered"
					}
					text := m.Text.Body
					if m.Type != "text" {
						text = "[" + m.Type + "]"
					}
					index[m.ID] = len(out)
					out = append(out, PhoneMessage{ID: m.ID, Mine: true, Text: text, Time: w.Time, Ticks: ticks})
				}
			}
		}
	}
	suffix := "/" + PhoneNumberID + "/messages"
	for _, r := range d.Meta.Requests() {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, suffix) {
			continue
		}
		if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
			continue
		}
		var b struct {
			To        string `json:"to"`
			Type      string `json:"type"`
			Status    string `json:"status"`
			MessageID string `json:"message_id"`
			Text      struct {
				Body string `json:"body"`
			} `json:"text"`
			Template struct {
				Name     string `json:"name"`
				Language struct {
					Code string `json:"code"`
				} `json:"language"`
				Components []struct {
					Type       string `json:"type"`
					Parameters []struct {
						Text string `json:"text"`
					} `json:"parameters"`
				} `json:"components"`
			} `json:"template"`
			Image    phoneMedia `json:"image"`
			Video    phoneMedia `json:"video"`
			Audio    phoneMedia `json:"audio"`
			Document phoneMedia `json:"document"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			continue
		}
		if b.Status == "read" {
			if i, ok := index[b.MessageID]; ok {
				// WhatsApp marks everything before a read message read too.
				for j := 0; j <= i; j++ {
					if out[j].Mine {
						out[j].Ticks = "read"
					}
				}
			}
			continue
		}
		if strings.TrimPrefix(b.To, "+") != CustomerWaID {
			continue
		}
		text := b.Text.Body
		switch b.Type {
		case "text":
		case "template":
			var params []string
			for _, c := range b.Template.Components {
				if strings.EqualFold(c.Type, "body") {
					for _, p := range c.Parameters {
						params = append(params, p.Text)
					}
				}
			}
			text = d.templateText(b.Template.Name, b.Template.Language.Code, params)
		case "image":
			text = b.Image.line("image")
		case "video":
			text = b.Video.line("video")
		case "audio":
			text = b.Audio.line("audio")
		case "document":
			text = b.Document.line("document")
		default:
			text = "[" + b.Type + "]"
		}
		out = append(out, PhoneMessage{Text: text, Time: r.Time})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// templateText is a template message as the customer's WhatsApp shows it:
// the approved body Meta holds, with the parameters in place.
func (d *Demo) templateText(name, language string, params []string) string {
	for _, t := range d.Meta.Templates(WabaID) {
		if t.Name != name || t.Language != language {
			continue
		}
		raw, err := json.Marshal(t.Components)
		if err != nil {
			break
		}
		if body := channel.TemplateBody(raw); body != "" {
			return channel.FillTemplate(body, params)
		}
	}
	return "[template " + name + "]"
}

// phoneMedia is the part of a business's file message the phone shows:
// what a customer's WhatsApp shows under the file.
type phoneMedia struct {
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

// line is the bubble's text for a file of kind: the kind, the file's name
// when it has one, and the caption on the next line.
func (m phoneMedia) line(kind string) string {
	s := "[" + kind + "]"
	if m.Filename != "" {
		s += " " + m.Filename
	}
	if m.Caption != "" {
		s += "\n" + m.Caption
	}
	return s
}

// Location is the demo workspace's time zone (Moscow when it names none
// the clock knows).
func (d *Demo) Location(ctx context.Context) *time.Location {
	if ws, err := d.App.Store.GetWorkspace(ctx, store.All, d.WorkspaceID); err == nil && ws.Timezone != "" {
		if loc, err := time.LoadLocation(ws.Timezone); err == nil {
			return loc
		}
	}
	if loc, err := time.LoadLocation(DemoTimezone); err == nil {
		return loc
	}
	return time.FixedZone("MSK", 3*60*60)
}

func (d *Demo) phoneMessages(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	msgs, loc := d.Conversation(), d.Location(r.Context())
	for i := range msgs {
		msgs[i].Clock = msgs[i].Time.In(loc).Format("15:04")
	}
	if err := json.NewEncoder(w).Encode(map[string]any{"messages": msgs}); err != nil {
		d.log.Debug("demo phone: write messages", "err", err)
	}
}

// phoneSend is the customer writing. It takes JSON only, so another site's
// form cannot write as the customer.
func (d *Demo) phoneSend(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		writeJSON(w, map[string]string{"error": "send JSON: {\"text\": \"…\"} / отправьте JSON"})
		return
	}
	var in struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "bad JSON: " + err.Error()})
		return
	}
	in.Text = strings.TrimSpace(in.Text)
	if in.Text == "" {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "the text is empty / текст пуст"})
		return
	}
	id, err := d.Meta.SendWhatsAppText(r.Context(), PhoneNumberID, CustomerWaID, CustomerName, in.Text)
	if err != nil && id == "" {
		w.WriteHeader(http.StatusBadGateway)
		writeJSON(w, map[string]string{"error": err.Error()})
		return
	}
	res := map[string]any{"id": id}
	if err != nil {
		// The customer did write; the gateway refused the webhook.
		res["error"] = err.Error()
	}
	writeJSON(w, res)
}

// CloseWindow makes the customer's last message look a day and an hour
// old, to the gateway and to the Meta simulator alike, so the shared chat
// and the CRM cards show the closed-window banner and the template picker
// (and a free-form reply is refused, 131047 on Meta's side) without a
// day's wait. A demo-only control: the gateway proper has no such switch.
// store.ErrNotFound when the customer has not written yet.
func (d *Demo) CloseWindow(ctx context.Context) error {
	at := store.Now().Add(-25 * time.Hour)
	if err := d.App.Store.BackdateContactInbound(ctx, d.WhatsAppID, CustomerWaID, at); err != nil {
		return err
	}
	d.Meta.BackdateWhatsAppInbound(PhoneNumberID, CustomerWaID, at)
	return nil
}

// phoneCloseWindow is the phone page's "close the 24-hour window"; JSON
// only, like phoneSend.
func (d *Demo) phoneCloseWindow(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		writeJSON(w, map[string]string{"error": "send JSON / отправьте JSON"})
		return
	}
	err := d.CloseWindow(r.Context())
	switch {
	case errors.Is(err, store.ErrNotFound):
		w.WriteHeader(http.StatusConflict)
		writeJSON(w, map[string]string{"error": "Клиент ещё не писал — окно и так закрыто / The customer has not written yet: the window is closed already"})
	case err != nil:
		d.log.Error("demo phone: close the window", "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		writeJSON(w, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, map[string]string{"notice": "Окно закрыто: обновите чат — там шаблоны / The window is closed: reload the chat to see the templates"})
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	// An error here is the browser gone; nothing is left to tell it.
	_ = json.NewEncoder(w).Encode(v)
}

func (d *Demo) phonePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := phoneTmpl.Execute(w, map[string]string{"Name": CustomerName, "Phone": "+" + CustomerWaID, "Business": DisplayPhone}); err != nil {
		d.log.Debug("demo phone: render", "err", err)
	}
}

// The page is plain HTML with a little polling script: no build step, and
// it works offline.
var phoneTmpl = template.Must(template.New("phone").Parse(`<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Телефон клиента / Customer's phone</title>
<style>
 body { margin: 0; font: 15px/1.35 system-ui, sans-serif; background: #e9edef; color: #111; display: flex; gap: 2rem; justify-content: center; padding: 1.5rem; }
 .about { max-width: 22rem; color: #444; }
 .about h1 { font-size: 1.2rem; margin: 0 0 .5rem; }
 .about .en { color: #777; }
 .phone { width: 360px; height: 700px; border: 10px solid #222; border-radius: 36px; background: #efeae2; display: flex; flex-direction: column; overflow: hidden; box-shadow: 0 8px 24px #0003; }
 .bar { background: #008069; color: #fff; padding: .8rem 1rem; }
 .bar b { display: block; }
 .bar small { opacity: .85; }
 #msgs { flex: 1; overflow-y: auto; padding: .8rem; display: flex; flex-direction: column; gap: .35rem; }
 .m { max-width: 80%; padding: .4rem .6rem; border-radius: 8px; background: #fff; align-self: flex-start; box-shadow: 0 1px 1px #0002; white-space: pre-wrap; word-wrap: break-word; }
 .m.mine { background: #d9fdd3; align-self: flex-end; }
 .meta { font-size: .72rem; color: #667781; text-align: right; margin-top: .15rem; }
 .t { letter-spacing: -3px; margin-left: .3rem; }
 .t.read { color: #53bdeb; }
 .empty { color: #667781; text-align: center; margin-top: 2rem; font-size: .9rem; }
 form { display: flex; gap: .4rem; padding: .5rem; background: #f0f2f5; }
 input { flex: 1; padding: .55rem .8rem; border: none; border-radius: 20px; font: inherit; }
 button { border: none; border-radius: 20px; background: #008069; color: #fff; padding: 0 1rem; font: inherit; cursor: pointer; }
 #err { color: #b00; font-size: .8rem; padding: 0 .6rem; }
 .demo-tools { margin-top: 1.2rem; padding-top: .8rem; border-top: 1px solid #ccc; }
 .demo-tools button { border-radius: 6px; background: #fff; color: #b35c00; border: 1px solid #b35c00; padding: .45rem .8rem; }
 #notice { color: #086; font-size: .85rem; margin-top: .4rem; }
 .phone { flex-shrink: 0; }
 /* A phone's own screen: the mock-up takes the width (a flex row would
    squeeze it to a sliver) and comes first, the explanation below it. */
 @media (max-width: 760px) {
  body { flex-direction: column; gap: 1rem; padding: .5rem; }
  .phone { order: -1; width: auto; height: 80vh; min-height: 26rem; border-width: 6px; border-radius: 20px; }
  .about { max-width: none; }
 }
</style>
</head>
<body>
<div class="about">
 <h1>Телефон клиента <span class="en">/ Customer's phone</span></h1>
 <p>Вы — клиент {{.Name}} ({{.Phone}}) и пишете в WhatsApp бизнесу {{.Business}}.
 Сообщение придёт в общий чат кабинета, в открытую линию Битрикс24 и в сделку amoCRM.</p>
 <p class="en">You are the customer {{.Name}} ({{.Phone}}) writing on WhatsApp to the business {{.Business}}.
 The message reaches the cabinet's shared chat, the Bitrix24 Open Line and the amoCRM lead.</p>
 <p>✓✓ — доставлено; <span style="color:#53bdeb">синие</span>, когда бизнес отметит сообщение прочитанным.<br>
 <span class="en">✓✓ delivered; <span style="color:#53bdeb">blue</span> once the business marks it read.</span></p>
 <div class="demo-tools">
  <p>Ответить свободным текстом WhatsApp позволяет 24 часа после последнего сообщения клиента, потом — только шаблоном.
  Чтобы не ждать сутки, закройте окно: последнее сообщение клиента станет старше 24 часов.<br>
  <span class="en">WhatsApp allows free-form replies for 24 hours after the customer's last message, then templates only.
  Rather than wait a day, close the window: the customer's last message becomes older than 24 hours.</span></p>
  <button type="button" id="close-window">Закрыть 24-часовое окно (демо) / Close the 24-hour window (demo)</button>
  <div id="notice" role="status"></div>
 </div>
</div>
<div class="phone">
 <div class="bar"><b>{{.Business}}</b><small>WhatsApp Business</small></div>
 <div id="msgs"><div class="empty">Напишите первое сообщение<br>Write the first message</div></div>
 <div id="err"></div>
 <form id="send">
  <input id="text" name="text" autocomplete="off" placeholder="Сообщение / Message" value="Здравствуйте! Заказ 4512 ещё в пути?">
  <button type="submit" title="Отправить / Send">➤</button>
 </form>
</div>
<script>
const box = document.getElementById('msgs'), err = document.getElementById('err');
let last = '';
function esc(s) { const d = document.createElement('div'); d.textContent = s; return d.innerHTML; }
async function refresh() {
  try {
    const r = await fetch('/phone/messages', {cache: 'no-store'});
    const j = await r.json();
    const html = j.messages.map(m => {
      const t = esc(m.clock);
      const ticks = m.mine ? '<span class="t ' + (m.ticks === 'read' ? 'read' : '') + '">' + (m.ticks ? '✓✓' : '✓') + '</span>' : '';
      return '<div class="m' + (m.mine ? ' mine' : '') + '" data-ticks="' + (m.ticks || '') + '">' + esc(m.text) + '<div class="meta">' + t + ticks + '</div></div>';
    }).join('');
    if (html && html !== last) { box.innerHTML = html; last = html; box.scrollTop = box.scrollHeight; }
  } catch (e) { /* the demo stopped; try again */ }
}
document.getElementById('send').addEventListener('submit', async ev => {
  ev.preventDefault();
  const input = document.getElementById('text'), text = input.value.trim();
  if (!text) { err.textContent = 'Введите текст / Type a message'; return; }
  err.textContent = '';
  const r = await fetch('/phone/send', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({text})});
  const j = await r.json();
  if (!r.ok || j.error) { err.textContent = j.error || r.statusText; }
  input.value = '';
  refresh();
});
document.getElementById('close-window').addEventListener('click', async () => {
  const notice = document.getElementById('notice');
  err.textContent = ''; notice.textContent = '';
  const r = await fetch('/phone/close-window', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});
  const j = await r.json();
  if (!r.ok || j.error) { err.textContent = j.error || r.statusText; return; }
  notice.textContent = j.notice;
});
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`))
