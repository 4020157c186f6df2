package main

import (
	"html/template"
	"net/http"
	"time"
)

// The page is server-rendered and script-free: html/template escapes every
// value (chat text is customer input), and forms post to the control API,
// which redirects back here. The widget's frames open in a new tab (GET
// forms): they are the simulator's pages with the one script they need.
var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ts": func(u int64) string {
		if u == 0 {
			return ""
		}
		return time.Unix(u, 0).UTC().Format("2006-01-02 15:04:05Z")
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>amosim · amoCRM sandbox</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
 h1 { font-size: 1.3rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; } h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
 .ru { color: #777; font-weight: normal; }
 table { border-collapse: collapse; font-size: .85rem; } td, th { border-bottom: 1px solid #eee; padding: .2rem .5rem; text-align: left; vertical-align: top; }
 .chat { border: 1px solid #ddd; border-radius: 6px; padding: .5rem 1rem; margin: .8rem 0; }
 .msg { margin: .3rem 0; padding: .3rem .6rem; border-radius: 6px; max-width: 46rem; white-space: pre-wrap; }
 .in { background: #f1f5f9; } .out { background: #e8f7e4; margin-left: 4rem; }
 .meta { color: #777; font-size: .78rem; }
 form.inline { display: inline-flex; gap: .4rem; align-items: end; margin: .3rem .6rem .3rem 0; }
 form.cell { display: flex; flex-wrap: wrap; gap: .3rem; align-items: center; margin: 0; min-width: 24rem; }
 input, textarea, select, button { font: inherit; padding: .25rem; }
</style>
</head>
<body>
<h1>amoCRM sandbox <span class="ru">/ Песочница amoCRM</span></h1>
<div class="meta">Redirect URI <span class="ru">/ Адрес перенаправления</span>: <code>{{.Cfg.RedirectURI}}</code> ·
 disable hook <span class="ru">/ хук отключения</span>: <code>{{.Cfg.DisableURL}}</code> ·
 chat hook <span class="ru">/ хук чатов</span>: <code>{{.Cfg.HookURL}}</code> ·
 gateway (the widget's gateway_url) <span class="ru">/ шлюз (gateway_url виджета)</span>: <code>{{.Cfg.GatewayURL}}</code></div>
{{define "frameUser"}}<select name="user">{{range .}}{{if .IsActive}}<option value="{{.ID}}">#{{.ID}} {{.Name}}{{if .IsAdmin}} (admin){{end}}</option>{{end}}{{end}}</select>
 <select name="lang" title="the user's language by default / по умолчанию язык пользователя"><option value="">lang: auto / язык: авто</option><option value="ru">ru</option><option value="en">en</option></select>{{end}}
{{range .Accounts}}{{$acc := .Spec.ID}}{{$users := .Spec.Users}}
<h2>Account <span class="ru">/ Аккаунт</span> {{.Spec.Name}} · <code>{{.Spec.Domain}}</code> · id {{.Spec.ID}}</h2>
<div class="meta">amojo_id <code>{{.Spec.AmojoID}}</code> · {{if .Scope}}chat channel connected <span class="ru">/ канал чатов подключён</span>: <code>{{.Scope}}</code>{{else}}chat channel not connected <span class="ru">/ канал чатов не подключён</span>{{end}} ·
 API requests <span class="ru">/ запросов API</span>: {{.Counts.Requests}}, 429: {{.Counts.TooMany}}, 401: {{.Counts.Unauthorized}}</div>
<form class="inline" method="post" action="/sim/install"><input type="hidden" name="account" value="{{$acc}}"><button>Install the widget <span class="ru">/ Установить виджет</span></button></form>
<form class="inline" method="post" action="/sim/disable"><input type="hidden" name="account" value="{{$acc}}"><button>Disable the integration <span class="ru">/ Отключить интеграцию</span></button></form>
<form class="inline" method="post" action="/sim/unpaid"><input type="hidden" name="account" value="{{$acc}}">
 <label><input type="checkbox" name="unpaid"> unpaid <span class="ru">/ не оплачен</span></label><button>Apply <span class="ru">/ Применить</span></button></form>
<form class="inline" method="post" action="/sim/widget-token" target="_blank"><input type="hidden" name="account" value="{{$acc}}">
 <select name="user">{{range .Spec.Users}}<option value="{{.ID}}">#{{.ID}} {{.Name}}{{if .IsAdmin}} (admin){{end}}</option>{{end}}</select>
 <button>Widget token <span class="ru">/ Токен виджета</span></button></form>
<form class="inline" method="get" action="/sim/widget/settings" target="_blank"><input type="hidden" name="account" value="{{$acc}}">
 {{template "frameUser" $users}}
 <button>Open the widget's settings as this user <span class="ru">/ Открыть настройки виджета от имени пользователя</span></button></form>

<h3>Users <span class="ru">/ Пользователи</span></h3>
<table><tr><th>id</th><th>name <span class="ru">/ имя</span></th><th>admin</th><th>active <span class="ru">/ активен</span></th></tr>
{{range .Spec.Users}}<tr><td>{{.ID}}</td><td>{{.Name}}</td><td>{{.IsAdmin}}</td><td>{{.IsActive}}</td></tr>{{end}}</table>

<h3>Leads <span class="ru">/ Сделки</span></h3>
{{if .Leads}}<table><tr><th>id</th><th>name <span class="ru">/ название</span></th><th>pipeline / status <span class="ru">/ воронка / этап</span></th><th>responsible <span class="ru">/ ответственный</span></th><th>contacts <span class="ru">/ контакты</span></th><th>tags <span class="ru">/ теги</span></th><th>created <span class="ru">/ создана</span></th><th>card <span class="ru">/ карточка</span></th></tr>
{{range .Leads}}<tr><td>{{.ID}}</td><td>{{.Name}}</td><td>{{.PipelineID}} / {{.StatusID}}</td><td>{{.ResponsibleUserID}}</td><td>{{.ContactIDs}}</td><td>{{.Tags}}</td><td>{{ts .CreatedAt}}</td>
<td><form class="cell" method="get" action="/sim/widget/card" target="_blank"><input type="hidden" name="account" value="{{$acc}}"><input type="hidden" name="entity" value="leads"><input type="hidden" name="id" value="{{.ID}}">
 {{template "frameUser" $users}} <button>Open the card window <span class="ru">/ Открыть окно в карточке</span></button></form></td></tr>{{end}}</table>
{{else}}<p class="meta">No leads yet <span class="ru">/ Сделок пока нет</span></p>{{end}}

<h3>Digital pipeline <span class="ru">/ Цифровая воронка</span></h3>
<form class="inline" method="post" action="/sim/dp-action"><input type="hidden" name="account" value="{{$acc}}">
 <select name="status">{{range .Spec.Pipelines}}{{$p := .ID}}{{range .Statuses}}<option value="{{$p}}:{{.ID}}">{{$p}} / {{.ID}} {{.Name}}</option>{{end}}{{end}}</select>
 <input name="text" placeholder="text / текст"> <input name="template" size="12" placeholder="template / шаблон">
 <input name="template_params" size="12" placeholder="params / параметры"> <input name="channel" size="12" placeholder="channel / канал">
 <button>Save the action <span class="ru">/ Сохранить действие</span></button></form>
<form class="inline" method="post" action="/sim/move-lead"><input type="hidden" name="account" value="{{$acc}}">
 <input name="lead" size="10" placeholder="lead id / сделка" required> <input name="status" size="10" placeholder="status id / этап" required>
 <button>Move the lead <span class="ru">/ Переместить сделку</span></button></form>

<h3>Contacts <span class="ru">/ Контакты</span></h3>
{{if .Contacts}}<table><tr><th>id</th><th>name <span class="ru">/ имя</span></th><th>phones <span class="ru">/ телефоны</span></th><th>leads <span class="ru">/ сделки</span></th><th>card <span class="ru">/ карточка</span></th></tr>
{{range .Contacts}}<tr><td>{{.ID}}</td><td>{{.Name}}</td><td>{{range .Phones}}{{.Value}} {{end}}</td><td>{{.LeadIDs}}</td>
<td><form class="cell" method="get" action="/sim/widget/card" target="_blank"><input type="hidden" name="account" value="{{$acc}}"><input type="hidden" name="entity" value="contacts"><input type="hidden" name="id" value="{{.ID}}">
 {{template "frameUser" $users}} <button>Open the card window <span class="ru">/ Открыть окно в карточке</span></button></form></td></tr>{{end}}</table>
{{else}}<p class="meta">No contacts yet <span class="ru">/ Контактов пока нет</span></p>{{end}}

<h3>Notes <span class="ru">/ Примечания</span></h3>
{{range .Notes}}<div class="msg in"><span class="meta">#{{.ID}} {{.EntityType}} {{.EntityID}} · {{.NoteType}} · {{ts .CreatedAt}}</span>
{{.Text}}</div>{{else}}<p class="meta">No notes yet <span class="ru">/ Примечаний пока нет</span></p>{{end}}

<h3>Tasks <span class="ru">/ Задачи</span></h3>
{{range .Tasks}}<div class="msg {{if .IsCompleted}}out{{else}}in{{end}}"><span class="meta">#{{.ID}} → {{.ResponsibleUserID}} · {{.EntityType}} {{.EntityID}} · till <span class="ru">/ до</span> {{ts .CompleteTill}} ·
 {{if .IsCompleted}}completed <span class="ru">/ выполнена</span>{{if .ResultText}}: {{.ResultText}}{{end}}{{else}}open <span class="ru">/ открыта</span>{{end}}</span>
{{.Text}}</div>{{else}}<p class="meta">No tasks yet <span class="ru">/ Задач пока нет</span></p>{{end}}

<h3>Chats <span class="ru">/ Чаты</span></h3>
{{range .Chats}}<div class="chat"><b>{{.Name}}</b> <span class="meta">{{.Phone}} {{.ProfileLink}} · {{.ConversationID}}</span>
{{range .Messages}}<div class="msg {{if .Incoming}}in{{else}}out{{end}}"><span class="meta">{{ts .Time}}{{if not .Incoming}} · status <span class="ru">/ статус</span> {{.Delivery}}{{if .Error}} ({{.ErrorCode}} {{.Error}}){{end}}{{end}}</span>
{{if .Text}}{{.Text}}{{else}}[{{.Type}}] {{.FileName}}{{end}}</div>{{end}}
<form class="inline" method="post" action="/sim/manager-reply"><input type="hidden" name="account" value="{{$acc}}"><input type="hidden" name="conversation" value="{{.ConversationID}}">
 <select name="user">{{range $.Users}}<option value="{{.ID}}">{{.Name}}</option>{{end}}</select>
 <textarea name="text" rows="2" cols="50" placeholder="Answer as a manager / Ответить как менеджер"></textarea>
 <button>Send <span class="ru">/ Отправить</span></button></form></div>
{{else}}<p class="meta">No chats yet <span class="ru">/ Чатов пока нет</span></p>{{end}}
{{end}}
</body>
</html>
`))

func (c *control) page(w http.ResponseWriter, _ *http.Request) {
	accs := c.snapshot()
	var users any
	if len(accs) > 0 {
		users = accs[0].Spec.Users
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, map[string]any{"Accounts": accs, "Users": users,
		"Cfg": map[string]string{"RedirectURI": c.cfg.redirectURI, "DisableURL": c.cfg.disableURL, "HookURL": c.cfg.hookURL, "GatewayURL": c.cfg.gatewayURL}}); err != nil {
		c.log.Error("amosim page", "err", err)
	}
}
