package main

import "html/template"

// The page is deliberately dependency-free: plain HTML and a little polling
// JS, so it works offline and needs no build step.
var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>metasim · Meta sandbox</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
 h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
 h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
 .ru { color: #777; font-weight: normal; }
 .forms { display: flex; gap: 2rem; flex-wrap: wrap; }
 form { border: 1px solid #ddd; border-radius: 6px; padding: .8rem 1rem; min-width: 22rem; }
 label { display: block; margin: .35rem 0 .1rem; font-size: .85rem; }
 input, textarea { width: 100%; box-sizing: border-box; padding: .3rem; font: inherit; }
 button { margin-top: .6rem; padding: .35rem .9rem; }
 .result { font-size: .85rem; margin-top: .4rem; white-space: pre-wrap; }
 table { border-collapse: collapse; width: 100%; font-size: .82rem; }
 th, td { border-bottom: 1px solid #eee; padding: .25rem .4rem; text-align: left; vertical-align: top; }
 td pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-height: 14rem; overflow: auto; }
 .bad { color: #b00; }
</style>
</head>
<body>
<h1>Meta sandbox (WhatsApp + Instagram) <span class="ru">/ Песочница Meta</span></h1>
<div>Webhooks go to <span class="ru">/ Вебхуки отправляются на</span>: <code>{{.WebhookURL}}</code></div>

<div class="forms">
<form id="wa">
 <h2>Customer writes on WhatsApp <span class="ru">/ Клиент пишет в WhatsApp</span></h2>
 <label>Phone number id <span class="ru">/ ID номера</span></label>
 <input name="phone_number_id" value="{{.PhoneNumberID}}">
 <label>Customer number (wa_id) <span class="ru">/ Номер клиента</span></label>
 <input name="from" value="79161234567">
 <label>Customer name <span class="ru">/ Имя клиента</span></label>
 <input name="name" value="Анна Смирнова">
 <label>Text <span class="ru">/ Текст</span></label>
 <textarea name="text" rows="3">Здравствуйте! Заказ 4512 ещё в пути?</textarea>
 <button>Send <span class="ru">/ Отправить</span></button>
 <div class="result"></div>
</form>

<form id="ig">
 <h2>Customer writes on Instagram <span class="ru">/ Клиент пишет в Instagram</span></h2>
 <label>Instagram account id <span class="ru">/ ID аккаунта</span></label>
 <input name="ig_user_id" value="{{.IGUserID}}">
 <label>Customer IGSID <span class="ru">/ IGSID клиента</span></label>
 <input name="from" value="1133627508796544">
 <label>Text <span class="ru">/ Текст</span></label>
 <textarea name="text" rows="3">Привет! Есть размер M?</textarea>
 <button>Send <span class="ru">/ Отправить</span></button>
 <div class="result"></div>
</form>
</div>

<h2>Graph requests from the gateway <span class="ru">/ Запросы шлюза к Graph API</span></h2>
<table><thead><tr>
 <th>Time <span class="ru">/ Время</span></th><th>Request <span class="ru">/ Запрос</span></th>
 <th>Auth</th><th>Body <span class="ru">/ Тело</span></th>
</tr></thead><tbody id="requests"></tbody></table>

<h2>Webhooks posted <span class="ru">/ Отправленные вебхуки</span></h2>
<table><thead><tr>
 <th>Time <span class="ru">/ Время</span></th><th>Kind <span class="ru">/ Тип</span></th>
 <th>Gateway answer <span class="ru">/ Ответ шлюза</span></th><th>Body <span class="ru">/ Тело</span></th>
</tr></thead><tbody id="webhooks"></tbody></table>

<script>
function wire(id, path) {
  const form = document.getElementById(id);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = form.querySelector('.result');
    const data = Object.fromEntries(new FormData(form).entries());
    try {
      const resp = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(data)});
      const res = await resp.json();
      out.className = 'result' + (resp.ok && res.delivered ? '' : ' bad');
      out.textContent = JSON.stringify(res, null, 2);
    } catch (e) {
      out.className = 'result bad';
      out.textContent = String(e);
    }
    poll();
  });
}
wire('wa', '/sim/whatsapp/inbound');
wire('ig', '/sim/instagram/inbound');

function pretty(s) {
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch (e) { return s; }
}
function cell(tr, text, pre) {
  const td = document.createElement('td');
  if (pre) { const p = document.createElement('pre'); p.textContent = text; td.appendChild(p); }
  else td.textContent = text;
  tr.appendChild(td);
  return td;
}
function render(id, rows, fn) {
  const tbody = document.getElementById(id);
  tbody.replaceChildren();
  for (const r of rows.slice().reverse().slice(0, 100)) {
    const tr = document.createElement('tr');
    fn(tr, r);
    tbody.appendChild(tr);
  }
}
async function poll() {
  try {
    const [reqs, hooks] = await Promise.all([
      fetch('/sim/requests').then(r => r.json()),
      fetch('/sim/webhooks').then(r => r.json()),
    ]);
    render('requests', reqs, (tr, r) => {
      cell(tr, new Date(r.time).toLocaleTimeString('ru-RU'));
      cell(tr, r.method + ' ' + r.path + (r.query ? '?' + r.query : ''));
      cell(tr, r.auth || '—');
      cell(tr, pretty(r.body || ''), true);
    });
    render('webhooks', hooks, (tr, h) => {
      cell(tr, new Date(h.time).toLocaleTimeString('ru-RU'));
      cell(tr, h.kind);
      const td = cell(tr, h.error ? h.error : String(h.status));
      if (h.error || h.status < 200 || h.status > 299) td.className = 'bad';
      cell(tr, pretty(h.body), true);
    });
  } catch (e) { /* simulator restarting; try again */ }
}
poll();
setInterval(poll, 1500);
</script>
</body>
</html>
`))
