// The shared chat's live page: the event stream (/chat/events) says which
// customers' conversations changed, and the page fetches the list and the
// open dialog's messages again, so nothing needs a reload. The send box
// sends with fetch and stays on the page; without script the page still
// works by plain links and forms.
(function () {
  'use strict';
  var app = document.getElementById('chat-app');
  if (!app) { return; }
  var dialog = app.getAttribute('data-dialog') || '';
  var contact = app.getAttribute('data-contact') || '';
  var filter = app.getAttribute('data-filter') || 'all';
  var list = document.getElementById('chat-list');
  var log = document.getElementById('chat-log');
  var lost = document.getElementById('chat-live');

  // fetchInto replaces an element's content with a fragment, one request
  // at a time per element; a change that comes meanwhile asks once more.
  function refresher(el, url) {
    var busy = false, again = false, timer = null;
    function run() {
      timer = null;
      if (busy) { again = true; return; }
      busy = true;
      fetch(url(), { credentials: 'same-origin', headers: { 'X-Requested-With': 'fetch' } }).then(function (r) {
        if (r.redirected || !r.ok) { throw new Error('status ' + r.status); }
        return r.text();
      }).then(function (html) {
        var bottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        var top = el.scrollTop;
        el.innerHTML = html;
        el.scrollTop = bottom && el === log ? el.scrollHeight : top;
        if (el === log) { head(); }
      }).catch(function () {}).then(function () {
        busy = false;
        if (again) { again = false; soon(); }
      });
    }
    // soon coalesces a burst of changes into one fetch.
    function soon() { if (!timer) { timer = setTimeout(run, 300); } }
    return soon;
  }
  // head shows the waiting words the log fragment came with: after a send
  // the dialog waits no more, and the header says so as the list does.
  function head() {
    var m = document.getElementById('chat-log-waiting');
    var w = document.getElementById('chat-waiting');
    if (!m || !w) { return; }
    var text = m.getAttribute('data-waiting') || '';
    w.textContent = text;
    w.hidden = !text;
    var nr = document.getElementById('chat-no-reply-form');
    if (nr) { nr.hidden = m.getAttribute('data-no-reply') !== 'true'; }
  }
  var refreshList = refresher(list, function () {
    return '/chat/list?f=' + encodeURIComponent(filter) + (dialog ? '&d=' + encodeURIComponent(dialog) : '');
  });
  var refreshLog = log && dialog ? refresher(log, function () { return '/chat/dialogs/' + encodeURIComponent(dialog) + '/log'; }) : null;
  // A window that closes by the clock (chat.js says when): the list's
  // waiting words and the send box follow.
  if (refreshLog) {
    log.addEventListener('chat-stale', function () { refreshLog(); refreshList(); });
  }

  if (window.EventSource) {
    // missed: the page went without a stream, and what changed meanwhile
    // is fetched once one is open again.
    var missed = false;
    var connect = function () {
      var es = new EventSource('/chat/events');
      es.addEventListener('change', function (ev) {
        var d = {};
        try { d = JSON.parse(ev.data); } catch (e) { d = { all: true }; }
        refreshList();
        if (refreshLog && (d.all || (d.contacts || []).indexOf(contact) >= 0)) { refreshLog(); }
      });
      es.onopen = function () {
        lost.hidden = true;
        if (missed) {
          missed = false;
          refreshList();
          if (refreshLog) { refreshLog(); }
        }
      };
      // A dropped connection reconnects by itself, sending Last-Event-ID;
      // an answer that is no stream (a proxy's 502 or 503 while the
      // gateway restarts) closes the EventSource for good, and the page
      // would never hear of a message or a status again: it opens a new
      // one after a pause.
      es.onerror = function () {
        lost.hidden = es.readyState === EventSource.OPEN;
        if (es.readyState === EventSource.CLOSED) {
          missed = true;
          setTimeout(connect, 3000);
        }
      };
    };
    connect();
  }

  // The send box may be swapped by a live refresh (the customer's window
  // opened, chat.js): its form and text box are looked up when used.
  if (!document.getElementById('chat-form')) { return; }
  function insert(s) {
    var form = document.getElementById('chat-form');
    var text = form && form.querySelector('textarea[name=text]');
    if (!text) { return; }
    var a = text.selectionStart || text.value.length, b = text.selectionEnd || a;
    text.value = text.value.slice(0, a) + s + text.value.slice(b);
    text.focus();
    text.selectionStart = text.selectionEnd = a + s.length;
  }
  // The emoji row is part of the send box, which a live refresh may
  // swap: its clicks are caught on the document.
  document.addEventListener('click', function (ev) {
    var b = ev.target.closest && ev.target.closest('#chat-emoji button[data-emoji]');
    if (b) { insert(b.getAttribute('data-emoji')); }
  });
  var notice = document.getElementById('chat-live-notice');
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (form.id !== 'chat-form' || ev.defaultPrevented || !window.fetch || !window.FormData) { return; }
    var button = form.querySelector('button[type=submit]');
    ev.preventDefault();
    button.disabled = true;
    notice.hidden = false;
    notice.className = 'notice';
    notice.textContent = document.getElementById('chat-sending').textContent;
    fetch(form.action, { method: 'POST', body: new FormData(form), credentials: 'same-origin', headers: { 'X-Requested-With': 'fetch' } })
      .then(function (r) { return r.json(); })
      .then(function (res) {
        notice.textContent = res.notice || '';
        notice.className = res.ok ? 'notice' : 'notice problem';
        notice.hidden = !res.notice;
        if (res.ok) {
          form.reset();
          var tg = document.getElementById('chat-target');
          if (tg) { tg.dispatchEvent(new Event('change')); }
          if (refreshLog) { refreshLog(); }
          refreshList();
        }
      })
      .catch(function () { notice.className = 'notice problem'; notice.textContent = lost.textContent; })
      .then(function () { button.disabled = false; });
  });
})();
