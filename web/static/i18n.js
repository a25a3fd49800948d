/* Switchboard's interface language and time zone, for every staff page's scripts.
 *
 *   SB.t('Send')                          -> the string in the user's language
 *   SB.t('{n} unread', {n: 3})            -> placeholders filled in
 *   SB.formatTime(iso) / SB.formatDateTime(iso) / SB.formatDate(iso)
 *                                         -> in the user's time zone and language
 *   SB.formatDuration(seconds)            -> "3 h 05 min", "45 s", negative as "-…"
 *
 * The catalog comes from the page (<script type="application/json" id="sb-i18n">, see
 * web/i18n.py); the time zone from <html data-timezone>. English strings are the keys,
 * and a string with no translation is shown in English.
 */
(function () {
  'use strict';
  var catalog = {};
  var node = document.getElementById('sb-i18n');
  if (node) {
    try { catalog = JSON.parse(node.textContent || '{}') || {}; } catch (e) { catalog = {}; }
  }
  var root = document.documentElement;
  var lang = root.lang || 'en';
  var timeZone = root.getAttribute('data-timezone') || 'UTC';
  try {
    new Intl.DateTimeFormat(lang, { timeZone: timeZone });
  } catch (e) {
    timeZone = 'UTC'; // a zone this browser does not know: UTC rather than a wrong local time
  }

  function t(text, params) {
    var out = Object.prototype.hasOwnProperty.call(catalog, text) ? catalog[text] : text;
    if (params) {
      out = out.replace(/\{(\w+)\}/g, function (whole, name) {
        return Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole;
      });
    }
    return out;
  }

  var formats = {};
  function formatter(kind) {
    if (!formats[kind]) {
      var options = { timeZone: timeZone };
      if (kind !== 'date') { options.hour = '2-digit'; options.minute = '2-digit'; }
      if (kind !== 'time') { options.year = 'numeric'; options.month = 'short'; options.day = 'numeric'; }
      formats[kind] = new Intl.DateTimeFormat(lang, options);
    }
    return formats[kind];
  }
  function format(kind, value) {
    if (value === null || value === undefined || value === '') return '';
    var date = value instanceof Date ? value : new Date(value);
    return isNaN(date.getTime()) ? '' : formatter(kind).format(date);
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return '';
    var sign = seconds < 0 ? '-' : '';
    var s = Math.round(Math.abs(seconds));
    if (s < 60) return sign + t('{n} s', { n: s });
    var minutes = Math.floor(s / 60);
    if (minutes < 60) return sign + t('{n} min', { n: minutes });
    var hours = Math.floor(minutes / 60);
    var rest = String(minutes % 60).padStart(2, '0');
    if (hours < 48) return sign + t('{h} h {m} min', { h: hours, m: rest });
    return sign + t('{d} d {h} h', { d: Math.floor(hours / 24), h: hours % 24 });
  }

  window.SB = Object.assign(window.SB || {}, {
    t: t,
    lang: lang,
    timeZone: timeZone,
    formatTime: function (v) { return format('time', v); },
    formatDate: function (v) { return format('date', v); },
    formatDateTime: function (v) { return format('datetime', v); },
    formatDuration: formatDuration
  });
})();
