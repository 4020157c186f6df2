// amosim's stand-in for the widget's script (web/amocrm-widget/script.js):
// from the account's origin, trade the disposable token for a ticket at the
// gateway (POST /amocrm/widget/ticket, X-Auth-Token, purpose) and frame the
// gateway's page with it. fetch, not a server-side call, so the browser
// enforces the gateway's CORS answer as it does in amoCRM.
(function () {
  'use strict';
  var box = document.getElementById('widget');
  if (!box) {
    return; // the page shows why there is no widget
  }
  var d = box.dataset;
  var token = d.token;
  box.removeAttribute('data-token'); // single use, like amoCRM's
  var gateway = d.gateway;
  var trace = document.getElementById('trace');

  // Every message in both languages, Russian first.
  var texts = {
    unreachable: [
      'Шлюз ' + gateway + ' недоступен: запущен ли он, верен ли -gateway-url?',
      'The gateway at ' + gateway + ' is not reachable: is it running, is -gateway-url right?'],
    cors: [
      'Шлюз ответил, но не разрешил этот адрес (CORS): запустите его с SWITCHBOARD_AMOCRM_BASE_URL=' + location.origin +
        ' и SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true и откройте симулятор по этому же адресу.',
      'The gateway answered but did not allow this origin (CORS): run it with SWITCHBOARD_AMOCRM_BASE_URL=' + location.origin +
        ' and SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true, and open the simulator at that same address.'],
    not_connected: [
      'Аккаунт не подключён к Switchboard: сначала установите виджет на странице /sim/.',
      'The account is not connected to Switchboard: install the widget on the /sim/ page first.'],
    token: [
      'Шлюз отверг токен виджета: у симулятора и шлюза должны совпадать client id и secret, а хост адреса перенаправления — быть хостом шлюза.',
      "The gateway refused the widget's token: the simulator and the gateway must share the client id and secret, and the redirect URI's host must be the gateway's."],
    failed: ['Шлюз не выдал билет', 'The gateway gave no ticket'],
    framed: [
      'Если фрейм пуст, заголовок frame-ancestors шлюза не называет ' + location.origin + '.',
      "If the frame is blank, the gateway's frame-ancestors does not name " + location.origin + '.']
  };

  function note(line) {
    var p = document.createElement('div');
    p.textContent = line;
    trace.appendChild(p);
  }

  function show(key, detail) {
    var t = texts[key];
    box.textContent = '';
    var m = document.createElement('div');
    m.className = 'message error';
    m.id = 'widget-error';
    m.setAttribute('data-error', key);
    [t[0], t[1]].forEach(function (line) {
      var p = document.createElement('p');
      p.textContent = detail ? line + ' (' + detail + ')' : line;
      m.appendChild(p);
    });
    box.appendChild(m);
  }

  function frame(ticket) {
    var q = new URLSearchParams();
    q.set('ticket', ticket);
    var path = '/amocrm/settings?';
    if (d.purpose === 'card') {
      path = '/amocrm/card?';
      q.set('entity', d.entity);
      q.set('id', d.id);
    }
    q.set('lang', d.lang);
    var f = document.createElement('iframe');
    f.src = gateway + path + q.toString();
    f.setAttribute('allow', 'clipboard-write');
    note('iframe ' + gateway + path.slice(0, -1) + ' · ' + texts.framed[0] + ' / ' + texts.framed[1]);
    box.textContent = '';
    box.appendChild(f);
  }

  var url = gateway + '/amocrm/widget/ticket';
  fetch(url, {
    method: 'POST',
    headers: { 'X-Auth-Token': token, 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' },
    body: new URLSearchParams({ purpose: d.purpose }).toString(),
    credentials: 'omit',
    cache: 'no-store'
  }).then(function (resp) {
    note('POST ' + url + ' → ' + resp.status);
    return resp.text().then(function (body) {
      var data = {};
      try {
        data = JSON.parse(body);
      } catch (e) {
        data = {};
      }
      var err = (data && data.error) || {};
      if (resp.ok && data && data.ticket) {
        frame(String(data.ticket));
      } else if (resp.status === 404 && err.code === 'account_unknown') {
        show('not_connected');
      } else if (resp.status === 401) {
        show('token', err.code || 'HTTP 401');
      } else {
        show('failed', 'HTTP ' + resp.status + (err.code ? ' ' + err.code + ': ' + (err.message || '') : ''));
      }
    });
  }, function () {
    // A refused CORS answer and a dead host look the same to fetch; an
    // opaque request tells them apart: it succeeds if anything answered.
    note('POST ' + url + ' → network error / ошибка сети');
    fetch(gateway + '/', { mode: 'no-cors', credentials: 'omit', cache: 'no-store' }).then(function () {
      show('cors');
    }, function () {
      show('unreachable');
    });
  });
})();
