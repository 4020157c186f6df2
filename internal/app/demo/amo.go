package demo

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// amoHandler serves the demo's amoCRM view at /sim/ (the account's leads,
// each with amoCRM's chat and a link to the widget's card window) and the
// amoCRM simulator at every other path.
//
// cmd/amosim has a fuller console of the simulator's state; it is a
// command's page and cannot be mounted here. This view is what a manager
// sees: the lead, the chat, the answer box.
func (d *Demo) amoHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sim", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/sim/", http.StatusFound) })
	mux.HandleFunc("GET /sim/{$}", d.amoPage)
	mux.HandleFunc("POST /sim/reply", d.amoReply)
	mux.HandleFunc("GET /sim/card", d.amoCard)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/", d.Amo)
	return mux
}

type amoLeadView struct {
	ID      int
	Name    string
	Status  string
	Manager string
	Chat    *amosim.Chat
}

func (d *Demo) amoLeads() []amoLeadView {
	spec := amosim.ExampleAccount()
	statuses, users := map[int]string{}, map[int]string{}
	for _, p := range spec.Pipelines {
		for _, s := range p.Statuses {
			statuses[s.ID] = p.Name + " · " + s.Name
		}
	}
	for _, u := range spec.Users {
		users[u.ID] = u.Name
	}
	chats := d.Amo.Chats(d.AmoAccountID)
	contacts := map[int]amosim.Contact{}
	for _, c := range d.Amo.Contacts(d.AmoAccountID) {
		contacts[c.ID] = c
	}
	var out []amoLeadView
	for _, l := range d.Amo.Leads(d.AmoAccountID) {
		v := amoLeadView{ID: l.ID, Name: l.Name, Status: statuses[l.StatusID], Manager: users[l.ResponsibleUserID]}
		// amoCRM shows a chat on the lead of its contact: matched here by
		// the contact's phone.
		if len(l.ContactIDs) > 0 {
			for _, ph := range contacts[l.ContactIDs[0]].Phones {
				for i := range chats {
					if chats[i].Phone == ph.Value {
						v.Chat = &chats[i]
					}
				}
			}
		}
		out = append(out, v)
	}
	return out
}

func (d *Demo) amoPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := amoTmpl.Execute(w, map[string]any{"Leads": d.amoLeads(), "Manager": AmoManager}); err != nil {
		d.log.Debug("demo amocrm: render", "err", err)
	}
}

// amoReply is the manager answering in amoCRM's chat: amojo posts the
// signed hook to the gateway. JSON only, so another site cannot post it.
func (d *Demo) amoReply(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		writeJSON(w, map[string]string{"error": "send JSON / отправьте JSON"})
		return
	}
	var in struct {
		Conversation string `json:"conversation"`
		Text         string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "bad JSON: " + err.Error()})
		return
	}
	if in.Text = strings.TrimSpace(in.Text); in.Text == "" || in.Conversation == "" {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "the text is empty / текст пуст"})
		return
	}
	_, hd, err := d.Amo.ManagerReply(r.Context(), d.AmoAccountID, in.Conversation, AmoManager, in.Text)
	if err == nil && hd.Status != http.StatusOK {
		err = fmt.Errorf("the gateway answered amojo's hook with %d", hd.Status)
	}
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		writeJSON(w, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, map[string]string{"ok": "sent"})
}

// amoCard opens the widget's card window on a lead as amoCRM does: the
// widget's script trades the manager's disposable token for a ticket.
func (d *Demo) amoCard(w http.ResponseWriter, r *http.Request) {
	lead, err := strconv.Atoi(r.URL.Query().Get("lead"))
	if err != nil || lead <= 0 {
		http.Error(w, "lead must be a lead's id / lead — номер сделки", http.StatusBadRequest)
		return
	}
	tok, _, err := d.Amo.DisposableToken(d.AmoAccountID, AmoManager, d.URLs.Gateway)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, d.URLs.Gateway+"/amocrm/widget/ticket",
		strings.NewReader(url.Values{"purpose": {"card"}}.Encode()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", d.URLs.Amo)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := d.hc.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var got struct {
		Ticket string `json:"ticket"`
	}
	if err == nil {
		err = json.Unmarshal(raw, &got)
	}
	if err != nil || got.Ticket == "" {
		http.Error(w, fmt.Sprintf("the gateway gave no ticket: %d %s", resp.StatusCode, raw), http.StatusBadGateway)
		return
	}
	lang := "ru"
	if strings.HasPrefix(r.Header.Get("Accept-Language"), "en") {
		lang = "en"
	}
	http.Redirect(w, r, d.URLs.Gateway+"/amocrm/card?"+url.Values{"ticket": {got.Ticket}, "entity": {"leads"},
		"id": {strconv.Itoa(lead)}, "lang": {lang}}.Encode(), http.StatusSeeOther)
}

var amoTmpl = template.Must(template.New("amo").Funcs(template.FuncMap{
	// The simulated amoCRM shows the workspace's clock, as the phone page
	// and the cabinet do (amoCRM shows its account's zone).
	"clock": func(unix int64) string {
		t := time.Unix(unix, 0)
		if loc, err := time.LoadLocation(DemoTimezone); err == nil {
			t = t.In(loc)
		}
		return t.Format("15:04")
	},
}).Parse(`<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>amoCRM (симулятор) / amoCRM (simulated)</title>
<style>
 body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: #f5f7fa; color: #263238; }
 header { background: #1b2d45; color: #fff; padding: .7rem 1.2rem; }
 header small { opacity: .7; }
 main { padding: 1rem 1.2rem; display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1rem; }
 .lead { background: #fff; border-radius: 6px; box-shadow: 0 1px 3px #0002; padding: .8rem 1rem; }
 .lead h2 { font-size: 1rem; margin: 0 0 .2rem; }
 .muted, .en { color: #78909c; }
 .chat { border-top: 1px solid #eceff1; margin-top: .6rem; padding-top: .6rem; display: flex; flex-direction: column; gap: .3rem; }
 .m { max-width: 80%; padding: .35rem .6rem; border-radius: 6px; background: #eceff1; align-self: flex-start; white-space: pre-wrap; }
 .m.out { background: #d6eaff; align-self: flex-end; }
 .meta { font-size: .72rem; color: #78909c; text-align: right; }
 .t { letter-spacing: -3px; margin-left: .3rem; }
 .t.read { color: #1e88e5; }
 .t.failed { letter-spacing: 0; color: #c62828; }
 .why { font-size: .72rem; color: #c62828; margin-top: .2rem; }
 form { display: flex; gap: .4rem; margin-top: .6rem; }
 input { flex: 1; padding: .4rem .6rem; border: 1px solid #cfd8dc; border-radius: 4px; font: inherit; }
 button, a.btn { background: #4c8bf7; color: #fff; border: none; border-radius: 4px; padding: .4rem .8rem; font: inherit; cursor: pointer; text-decoration: none; }
 .err { color: #c62828; font-size: .8rem; }
 .empty { padding: 2rem 1.2rem; color: #78909c; }
</style>
</head>
<body>
<header><b>amoCRM</b> <small>— симулятор / simulated · Иван Менеджеров (manager)</small></header>
{{if not .Leads}}<div class="empty">Сделок пока нет: напишите как клиент на странице телефона.<br><span class="en">No leads yet: write as the customer on the phone page.</span></div>{{end}}
<main>
{{range .Leads}}
<section class="lead" id="lead-{{.ID}}">
 <h2>{{.Name}}</h2>
 <div class="muted">{{.Status}} · {{.Manager}}</div>
 <p><a class="btn" href="/sim/card?lead={{.ID}}">Окно виджета / Widget's card window</a></p>
 {{with .Chat}}
 <div class="chat">
  <div class="muted">Чат amoCRM с {{.Name}} {{.Phone}} <span class="en">/ amoCRM's chat</span></div>
  {{range .Messages}}
  <div class="m{{if not .Incoming}} out{{end}}">{{.Text}}<div class="meta">{{clock .Time}}{{if not .Incoming}}{{if lt .Delivery 0}}<span class="t failed" data-delivery="{{.Delivery}}">⚠ не доставлено / not delivered</span></div><div class="why">{{or .Error "—"}}</div></div>{{else}}<span class="t{{if eq .Delivery 2}} read{{end}}" data-delivery="{{.Delivery}}">{{if ge .Delivery 1}}✓✓{{else}}✓{{end}}</span></div></div>{{end}}{{else}}</div></div>{{end}}
  {{end}}
  <form class="reply" data-conversation="{{.ConversationID}}">
   <input name="text" autocomplete="off" placeholder="Ответ клиенту / Answer the customer">
   <button>Отправить / Send</button>
  </form>
  <div class="err"></div>
 </div>
 {{end}}
</section>
{{end}}
</main>
<script>
document.querySelectorAll('form.reply').forEach(f => f.addEventListener('submit', async ev => {
  ev.preventDefault();
  const text = f.text.value.trim(), err = f.nextElementSibling;
  if (!text) { err.textContent = 'Введите текст / Type a message'; return; }
  const r = await fetch('/sim/reply', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({conversation: f.dataset.conversation, text})});
  const j = await r.json();
  if (!r.ok) { err.textContent = j.error || r.statusText; return; }
  location.reload();
}));
// New messages and ticks appear without a reload button, unless someone
// is typing.
setInterval(() => {
  if (![...document.querySelectorAll('input')].some(i => i.value)) location.reload();
}, 2000);
</script>
</body>
</html>
`))
