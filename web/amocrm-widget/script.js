// Switchboard widget for amoCRM / Kommo.
//
// The widget holds no business logic: the lead and contact card column and
// the advanced settings page are iframes of the Switchboard gateway's own
// pages, so the widget archive only changes when the places it appears in
// change. An iframe carries no amoCRM credentials, so the widget first asks
// the gateway for a short-lived one-time ticket with $authorizedAjax (which
// adds amoCRM's disposable token, X-Auth-Token, a JWT the gateway verifies
// with the integration's client secret) and puts only the ticket into the
// iframe's address. No secret ever lives in this file.
define(['jquery'], function ($) {
  'use strict';

  // Replaced by `switchboard amocrm-widget pack --gateway-url …`; the
  // widget's own gateway_url setting wins over it when an admin sets one.
  var DEFAULT_GATEWAY = 'https://switchboard.example.com';

  var CARD_ENTITIES = { lcard: 'leads', ccard: 'contacts' };

  return function () {
    var self = this;

    // gateway is the base URL of the Switchboard gateway without a trailing
    // slash: the widget setting if filled, else the one packed in.
    function gateway() {
      var s = self.get_settings() || {};
      var url = $.trim(String(s.gateway_url || '')) || DEFAULT_GATEWAY;
      return url.replace(/\/+$/, '');
    }

    function lang() {
      var l = (self.system() || {}).lang || (typeof APP !== 'undefined' && APP.lang_id) || 'ru';
      return String(l).indexOf('ru') === 0 ? 'ru' : 'en';
    }

    function area() {
      return String((self.system() || {}).area || '');
    }

    function code() {
      return String((self.get_settings() || {}).widget_code || 'switchboard');
    }

    // cardURL is the gateway's chat window for one lead or contact.
    function cardURL(base, ticket, entity, id) {
      return base + '/amocrm/card?' + $.param({ ticket: ticket, entity: entity, id: id, lang: lang() });
    }

    // settingsURL is the gateway's settings page (items 1-7).
    function settingsURL(base, ticket) {
      return base + '/amocrm/settings?' + $.param({ ticket: ticket, lang: lang() });
    }

    // ticket exchanges amoCRM's disposable token for a one-time ticket the
    // iframe may carry in its address; purpose is "card" or "settings".
    function ticket(purpose, done, fail) {
      var req = self.$authorizedAjax({
        url: gateway() + '/amocrm/widget/ticket',
        type: 'POST',
        dataType: 'json',
        data: { purpose: purpose }
      });
      req.done(function (resp) {
        if (resp && resp.ticket) {
          done(String(resp.ticket));
        } else {
          fail();
        }
      }).fail(fail);
    }

    function iframe(src, height) {
      return $('<iframe/>', {
        src: src,
        frameborder: 0,
        allow: 'clipboard-write',
        css: { width: '100%', height: height, border: 0 }
      });
    }

    function message($where, key) {
      var parts = key.split('.');
      $where.empty().append($('<div/>', { 'class': 'switchboard-message', text: (self.i18n(parts[0]) || {})[parts[1]] || key }));
    }

    function renderCard() {
      var entity = CARD_ENTITIES[area()];
      var card = (typeof APP !== 'undefined' && APP.data && APP.data.current_card) || {};
      var id = card.id;
      self.render_template({
        caption: { class_name: 'switchboard-caption', html: self.i18n('card').title },
        body: '',
        render: '<div class="switchboard-card" id="' + code() + '_card"></div>'
      });
      var $box = $('#' + code() + '_card');
      if (!id) {
        message($box, 'card.no_record');
        return;
      }
      message($box, 'card.loading');
      ticket('card', function (t) {
        $box.empty().append(iframe(cardURL(gateway(), t, entity, id), '520px'));
      }, function () {
        message($box, 'card.error');
      });
    }

    function renderSettingsPage() {
      var $page = $('#work-area-' + code());
      message($page, 'page.loading');
      ticket('settings', function (t) {
        $page.empty().append(iframe(settingsURL(gateway(), t), 'calc(100vh - 120px)'));
      }, function () {
        message($page, 'page.error');
      });
    }

    this.callbacks = {
      render: function () {
        if (CARD_ENTITIES[area()]) {
          renderCard();
        }
        return true;
      },
      init: function () {
        return true;
      },
      bind_actions: function () {
        return true;
      },
      // settings is the install/settings modal: amoCRM draws the
      // gateway_url field itself; nothing else to add there.
      settings: function ($modal) {
        return true;
      },
      onSave: function () {
        return true;
      },
      destroy: function () {
        $('#' + code() + '_card').remove();
        return true;
      },
      advancedSettings: function () {
        renderSettingsPage();
        return true;
      },
      // dpSettings: the action's fields (channel, text, template…) come
      // from manifest dp.settings; amoCRM draws them and posts each run
      // to dp.webhook_url with no signature. The hidden "key" field is how
      // the gateway knows a run is this account's: the widget fetches the
      // account's key with $authorizedAjax (admins only) and fills it in.
      dpSettings: function () {
        var $key = $('[class*="' + code() + '"] input[name="key"]').add('.digital-pipeline__edit-forms input[name="key"]').first();
        if (!$key.length) {
          return true;
        }
        $key.closest('.widget_settings_block__item_field, .digital-pipeline__field').hide();
        self.$authorizedAjax({
          url: gateway() + '/amocrm/widget/dp-key',
          type: 'POST',
          dataType: 'json'
        }).done(function (resp) {
          if (resp && resp.key) {
            $key.val(String(resp.key)).trigger('change');
          }
        }).fail(function () {
          $key.after($('<div/>', { 'class': 'switchboard-message', text: (self.i18n('dp') || {}).key_error || 'dp.key_error' }));
          $key.closest('.widget_settings_block__item_field, .digital-pipeline__field').show();
        });
        return true;
      },
      // The list areas are not among the locations; amoCRM still calls
      // these if a list action is added later, and a missing one would throw.
      'leads:selected': function () {
        return true;
      },
      'contacts:selected': function () {
        return true;
      }
    };
    return this;
  };
});
