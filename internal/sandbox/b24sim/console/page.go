package console

import "html/template"

// The page is deliberately dependency-free: plain HTML and a little polling
// JS, so it works offline and needs no build step. All dynamic text is set
// with textContent, never innerHTML, since transcripts carry customer input.
var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>b24sim · Bitrix24 sandbox</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
 h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
 h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
 .ru { color: #777; font-weight: normal; }
 .line { border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; margin: 1rem 0; }
 .msg { margin: .35rem 0; padding: .35rem .6rem; border-radius: 6px; max-width: 46rem; white-space: pre-wrap; }
 .in { background: #f1f5f9; }
 .out { background: #e8f7e4; margin-left: 4rem; }
 .system { background: #fff8e1; margin-left: 2rem; font-style: italic; }
 .meta { color: #777; font-size: .78rem; }
 .msg blockquote { margin: .2rem 0; padding-left: .5rem; border-left: 3px solid #cbd5e1; color: #555; }
 form { display: flex; gap: .5rem; flex-wrap: wrap; align-items: end; margin-top: .6rem; }
 label { font-size: .8rem; display: block; }
 input, textarea { font: inherit; padding: .3rem; }
 textarea { width: 28rem; }
 .bad { color: #b00; }
 .result { font-size: .85rem; }
 table { border-collapse: collapse; font-size: .82rem; }
 td { border-bottom: 1px solid #eee; padding: .2rem .5rem; }
</style>
</head>
<body>
<h1>Bitrix24 sandbox <span class="ru">/ Песочница Битрикс24</span></h1>
<div>Portal <span class="ru">/ Портал</span>: <code>{{.Domain}}</code>, member_id <code>{{.MemberID}}</code></div>

<form id="install">
 <div><label>Install handler URL <span class="ru">/ Адрес обработчика установки</span></label>
 <input name="url" size="50" value="{{.InstallURL}}" placeholder="http://127.0.0.1:8080/bitrix24/install"></div>
 <button>Post ONAPPINSTALL <span class="ru">/ Отправить ONAPPINSTALL</span></button>
 <span class="result"></span>
</form>

<h2>Open the app as a portal user <span class="ru">/ Открыть приложение как пользователь портала</span></h2>
<p class="meta">Posts to the app's iframe from this browser, in a new tab, as Bitrix24 does (a fresh AUTH_ID of the user).
<span class="ru">Открывает iframe приложения в новой вкладке этого браузера, как Битрикс24 (со свежим AUTH_ID пользователя).</span></p>
<form method="post" action="/sim/open" target="_blank" id="open-app">
 <input type="hidden" name="placement" value="DEFAULT">
 <div><label>App page URL <span class="ru">/ Адрес страницы приложения</span></label>
 <input name="handler" size="40" value="{{.AppURL}}"></div>
 <div><label>User <span class="ru">/ Пользователь</span></label>
 <select name="user">{{range .Users}}<option value="{{.ID}}">#{{.ID}} {{.Name}}</option>{{end}}</select></div>
 <div><label>Language <span class="ru">/ Язык</span></label><select name="lang"><option value="ru">ru</option><option value="en">en</option></select></div>
 <button>Open the app page <span class="ru">/ Открыть страницу приложения</span></button>
</form>
<form method="post" action="/sim/open" target="_blank" id="open-tab">
 <div><label>CRM card <span class="ru">/ Карточка CRM</span></label>
 <select name="placement"><option value="CRM_DEAL_DETAIL_TAB">deal / сделка</option><option value="CRM_LEAD_DETAIL_TAB">lead / лид</option><option value="CRM_CONTACT_DETAIL_TAB">contact / контакт</option></select></div>
 <div><label>Record id <span class="ru">/ Номер записи</span></label><input name="id" size="8" value="{{.DealID}}"></div>
 <div><label>User <span class="ru">/ Пользователь</span></label>
 <select name="user">{{range .Users}}<option value="{{.ID}}">#{{.ID}} {{.Name}}</option>{{end}}</select></div>
 <div><label>Language <span class="ru">/ Язык</span></label><select name="lang"><option value="ru">ru</option><option value="en">en</option></select></div>
 <button>Open the card tab <span class="ru">/ Открыть вкладку карточки</span></button>
</form>

<div id="lines"></div>

<h2>Events posted to the app <span class="ru">/ События, отправленные приложению</span></h2>
<table><tbody id="deliveries"></tbody></table>

<script>
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
async function postJSON(path, data) {
  const resp = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(data)});
  return [resp, await resp.json()];
}
document.getElementById('install').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const out = ev.target.querySelector('.result');
  try {
    const [resp, res] = await postJSON('/sim/install', {url: ev.target.url.value});
    out.className = 'result' + (resp.ok && !res.error && res.status < 300 ? '' : ' bad');
    out.textContent = res.error || ('HTTP ' + res.status);
  } catch (e) { out.className = 'result bad'; out.textContent = String(e); }
});

// Reply forms keep their typed text across polls: only transcripts are redrawn.
const forms = {};
function replyForm(line) {
  if (forms[line.id]) return forms[line.id];
  const f = el('form');
  f.innerHTML = '<div><label>Chat (customer) <span class="ru">/ Чат (клиент)</span></label><input name="chat" size="18"></div>' +
    '<div><label>Reply as operator <span class="ru">/ Ответ оператора</span></label><textarea name="text" rows="2"></textarea></div>' +
    '<button>Send <span class="ru">/ Отправить</span></button><span class="result"></span>';
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = f.querySelector('.result');
    try {
      const [resp, res] = await postJSON('/sim/operator-reply', {line: line.id, chat: f.chat.value, text: f.text.value});
      out.className = 'result' + (resp.ok && res.delivered ? '' : ' bad');
      out.textContent = resp.ok ? (res.delivered ? 'delivered / доставлено' : res.error) : res.error;
      if (resp.ok) f.text.value = '';
    } catch (e) { out.className = 'result bad'; out.textContent = String(e); }
    poll();
  });
  forms[line.id] = f;
  return f;
}

// The portal's time zone: Bitrix24 shows times in it, not in the browser's.
const tz = {{.TimeZone}};

// bb builds what Bitrix24's chat shows for a message's BB-code: [b] [i] [u]
// [s] and [quote] as styles, [br] as a line break, [url] and [url=…] as
// links (http and https only); anything else stays text. DOM nodes only,
// never innerHTML: the text carries customer input.
function bb(text) {
  const root = el('div');
  const stack = [root];
  const top = () => stack[stack.length - 1];
  const tags = {b: 'b', i: 'i', u: 'u', s: 's', quote: 'blockquote', url: 'a'};
  const re = /\[(\/?)(b|i|u|s|br|quote|url)(?:=([^\]]*))?\]/gi;
  let last = 0, m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) top().appendChild(document.createTextNode(text.slice(last, m.index)));
    last = re.lastIndex;
    const tag = m[2].toLowerCase();
    if (tag === 'br') { top().appendChild(document.createElement('br')); continue; }
    if (m[1]) {
      for (let i = stack.length - 1; i > 0; i--) {
        if (stack[i].dataset.bb !== tag) continue;
        const a = stack[i];
        if (tag === 'url' && !a.href && /^https?:\/\//i.test(a.textContent)) a.href = a.textContent;
        stack.length = i;
        break;
      }
      continue;
    }
    const node = document.createElement(tags[tag]);
    node.dataset.bb = tag;
    if (tag === 'url') {
      node.target = '_blank'; node.rel = 'noopener';
      if (/^https?:\/\//i.test(m[3] || '')) node.href = m[3];
    }
    top().appendChild(node);
    stack.push(node);
  }
  if (last < text.length) top().appendChild(document.createTextNode(text.slice(last)));
  return root;
}

async function poll() {
  try {
    const [lines, deliveries] = await Promise.all([
      fetch('/sim/lines').then(r => r.json()),
      fetch('/sim/deliveries').then(r => r.json()),
    ]);
    const root = document.getElementById('lines');
    for (const line of lines) {
      let box = document.getElementById('line-' + line.id);
      if (!box) {
        box = el('div', 'line');
        box.id = 'line-' + line.id;
        box.appendChild(el('h2'));
        box.appendChild(el('div', 'transcript'));
        box.appendChild(replyForm(line));
        root.appendChild(box);
      }
      box.querySelector('h2').textContent = 'Open Line ' + line.id + ' · ' + line.name + (line.active ? '' : ' (inactive / неактивна)');
      const tr = box.querySelector('.transcript');
      tr.replaceChildren();
      if (line.messages.length === 0) tr.appendChild(el('div', 'meta', 'No messages yet / Сообщений пока нет'));
      for (const m of line.messages) {
        const d = el('div', 'msg ' + m.direction);
        const flags = [m.edited && 'edited/изменено', m.deleted && 'deleted/удалено', m.delivered && 'delivered/доставлено', m.read && 'read/прочитано'].filter(Boolean).join(', ');
        d.appendChild(el('div', 'meta', new Date(m.time).toLocaleTimeString('ru-RU', {timeZone: tz}) + ' · ' + m.author + ' · chat ' + m.chat +
          ' · im ' + m.im_chat_id + '/' + m.im_message_id + (flags ? ' · ' + flags : '')));
        d.appendChild(bb(m.text));
        for (const f of (m.files || [])) {
          const a = el('a', '', '📎 ' + f.name);
          a.href = f.url; a.target = '_blank'; a.rel = 'noopener';
          d.appendChild(el('div')).appendChild(a);
        }
        d.addEventListener('click', () => { replyForm(line).chat.value = m.chat; });
        tr.appendChild(d);
      }
      const f = replyForm(line);
      if (!f.chat.value && line.dialogs.length > 0) f.chat.value = line.dialogs[line.dialogs.length - 1].chat;
    }
    const tbody = document.getElementById('deliveries');
    tbody.replaceChildren();
    for (const d of deliveries.slice().reverse().slice(0, 50)) {
      const row = el('tr');
      row.appendChild(el('td', '', new Date(d.time).toLocaleTimeString('ru-RU', {timeZone: tz})));
      row.appendChild(el('td', '', d.event));
      row.appendChild(el('td', '', d.handler));
      row.appendChild(el('td', d.error || d.status < 200 || d.status > 299 ? 'bad' : '', d.error || String(d.status)));
      tbody.appendChild(row);
    }
  } catch (e) { /* simulator restarting; try again */ }
}
poll();
setInterval(poll, 1500);
</script>
</body>
</html>
`))
