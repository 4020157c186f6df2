// The settings form's behaviour, the same in the cabinet and inside a
// CRM's iframe: the matrix's "all"/"none" buttons, the delete
// confirmation, and the question when someone leaves with unsaved
// changes (an in-page dialog for the page's own links, language switch,
// refresh and delete; the browser's own for closing or reloading).
// Served from the gateway itself: the pages' CSP allows no inline script.
(function () {
  'use strict';
  // A refused save is shown at the address it was posted to; the address
  // bar is set to the page's own (data-self), so that a reload asks for
  // the page instead of posting the form again.
  var box = document.getElementById('settings-form');
  if (box && box.getAttribute('data-self') && window.history && history.replaceState) {
    history.replaceState(null, '', box.getAttribute('data-self'));
  }
  var form = document.getElementById('settings-all');
  if (!form) {
    return;
  }
  var leaveDialog = document.getElementById('leave-dialog');
  var deleteDialog = document.getElementById('delete-dialog');

  function snapshot() {
    return new URLSearchParams(new FormData(form)).toString();
  }
  var initial = snapshot();
  // leaving is set once the page is going away on purpose (a save, or a
  // choice made in the dialog), so the browser's question stays quiet.
  var leaving = false;
  function dirty() {
    return !leaving && snapshot() !== initial;
  }

  // pending is what to do after the dialog: go (discard) and, for a
  // language switch, the language the save should come back in.
  var pending = null;
  function ask(go, lang) {
    if (!dirty()) {
      go();
      return;
    }
    pending = { go: go, lang: lang || '' };
    leaveDialog.showModal();
  }
  document.getElementById('leave-save').addEventListener('click', function () {
    leaveDialog.close();
    if (pending && pending.lang && form.elements.lang) {
      form.elements.lang.value = pending.lang;
    }
    pending = null;
    leaving = true;
    form.requestSubmit(document.getElementById('save'));
  });
  document.getElementById('leave-discard').addEventListener('click', function () {
    leaveDialog.close();
    var p = pending;
    pending = null;
    if (p) {
      p.go();
    }
  });
  document.getElementById('leave-back').addEventListener('click', function () {
    pending = null;
    leaveDialog.close();
  });

  form.addEventListener('submit', function (e) {
    var by = e.submitter;
    if (by && by.getAttribute('data-leave') && dirty()) {
      e.preventDefault();
      ask(function () {
        leaving = true;
        form.action = by.formAction;
        form.submit();
      });
      return;
    }
    leaving = true;
  });

  // Links of the page (the language switch, the cabinet's menu).
  document.addEventListener('click', function (e) {
    var a = e.target.closest ? e.target.closest('a[href]') : null;
    if (!a || a.getAttribute('href').charAt(0) === '#' || !dirty()) {
      return;
    }
    e.preventDefault();
    ask(function () {
      leaving = true;
      window.location.href = a.href;
    }, a.getAttribute('data-lang'));
  }, true);
  // Other forms of the page (the cabinet's language switch, sign-out).
  Array.prototype.forEach.call(document.querySelectorAll('form'), function (f) {
    if (f === form || f.closest('dialog')) {
      return;
    }
    f.addEventListener('submit', function (e) {
      if (!dirty()) {
        return;
      }
      e.preventDefault();
      ask(function () {
        leaving = true;
        f.submit();
      });
    });
  });

  document.getElementById('delete').addEventListener('click', function () {
    ask(function () {
      deleteDialog.showModal();
    });
  });
  document.getElementById('delete-cancel').addEventListener('click', function () {
    deleteDialog.close();
  });
  document.getElementById('delete-form').addEventListener('submit', function () {
    leaving = true;
  });

  window.addEventListener('beforeunload', function (e) {
    if (dirty()) {
      e.preventDefault();
      e.returnValue = '';
    }
  });

  // "All" raises everyone to the chosen level (never lowers), "None"
  // takes the channel away; a channel of "" is every channel.
  var rank = { none: 0, read: 1, send: 2 };
  Array.prototype.forEach.call(form.querySelectorAll('[data-bulk]'), function (b) {
    b.addEventListener('click', function () {
      var ch = b.getAttribute('data-channel');
      var level = 'send';
      if (ch) {
        var pick = form.querySelector('[data-bulk-level="' + ch + '"]');
        level = pick ? pick.value : 'send';
      }
      Array.prototype.forEach.call(form.querySelectorAll('select[name^="lvl:"]'), function (s) {
        if (ch && s.getAttribute('data-channel') !== ch) {
          return;
        }
        if (b.getAttribute('data-bulk') === 'remove') {
          s.value = 'none';
        } else if ((rank[s.value] || 0) < rank[level]) {
          // ("" is never-configured open access: raised like none.)
          s.value = level;
        }
      });
    });
  });
})();
