/* Switchboard agent inbox: the conversation LIST (left side).
 *
 * Plain browser JavaScript, no dependencies, served under `script-src 'self'`. Loaded
 * before inbox.js (the conversation pane), which it talks to only through `window.SBInbox`:
 *
 *   SBInbox.on(name, fn) / SBInbox.off(name, fn) / SBInbox.emit(name, data)
 *   SBInbox.openConversation(id, options)   set by inbox.js; the list calls it on a click
 *   SBInbox.getConversation(id)             set here; the list's summary of a conversation
 *
 *   events emitted by inbox.js:  'conversation-opened' {id}, 'conversation-closed' {id},
 *                                'frame' (every /inbox/ws frame), 'live-open' (socket (re)opened)
 *   events emitted here:         'conversation-updated' {id} (its summary changed)
 *
 * Every piece of user data reaches the DOM through textContent or attribute setters.
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ the shared event API

  var handlers = {};
  var SBInbox = window.SBInbox = window.SBInbox || {};
  SBInbox.on = function (name, fn) {
    (handlers[name] = handlers[name] || []).push(fn);
  };
  SBInbox.off = function (name, fn) {
    handlers[name] = (handlers[name] || []).filter(function (h) { return h !== fn; });
  };
  SBInbox.emit = function (name, data) {
    (handlers[name] || []).slice().forEach(function (fn) {
      try {
        fn(data);
      } catch (err) {
        if (window.console) window.console.error(err);
      }
    });
  };
  SBInbox.openConversation = SBInbox.openConversation || function () {};

  var t = (window.SB && window.SB.t) || function (text) { return text; };
  var API = '/api/v1';

  var CHANNEL_LABELS = {
    webchat: 'Web chat',
    email: 'Email',
    telegram: 'Telegram',
    slack: 'Slack',
    api: 'API'
  };

  function channelLabel(channel) {
    if (channel === 'webchat') return t('Web chat');
    if (channel === 'email') return t('Email');
    if (channel === 'telegram') return t('Telegram');
    if (channel === 'slack') return t('Slack');
    if (channel === 'api') return t('API');
    return CHANNEL_LABELS[channel] || (channel ? String(channel) : t('Unknown'));
  }

  function statusLabel(status) {
    if (status === 'open') return t('Open');
    if (status === 'pending') return t('Pending');
    if (status === 'snoozed') return t('Snoozed');
    if (status === 'closed') return t('Closed');
    if (status === 'solved') return t('Solved');
    return String(status || '');
  }

  // ------------------------------------------------------------------ state

  var state = {
    conversations: new Map(), // id -> conversation summary
    listItems: new Map(), // id -> <li>
    openId: null
  };
  var el = {};
  var csrfToken = '';

  // ------------------------------------------------------------------ helpers

  function $(id) {
    return document.getElementById(id);
  }

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setHidden(node, hidden) {
    if (node) node.hidden = !!hidden;
  }

  function parseTime(value) {
    if (!value) return null;
    var text = String(value);
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
    var date = new Date(text);
    return isNaN(date.getTime()) ? null : date;
  }

  var lang = (window.SB && window.SB.lang) || undefined;
  var zone = (window.SB && window.SB.timeZone) || undefined;
  function safeFormat(options) {
    try {
      return new Intl.DateTimeFormat(lang, Object.assign({ timeZone: zone }, options));
    } catch (err) {
      return new Intl.DateTimeFormat(undefined, options);
    }
  }
  var shortDateFormat = safeFormat({ month: 'short', day: 'numeric' });
  var weekdayFormat = safeFormat({ weekday: 'short' });
  var relativeFormat = typeof Intl.RelativeTimeFormat === 'function'
    ? new Intl.RelativeTimeFormat(lang, { numeric: 'auto', style: 'narrow' })
    : null;

  function startOfDay(date) {
    return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
  }

  function relativeTime(date) {
    if (!date) return '';
    var now = new Date();
    var seconds = Math.round((now.getTime() - date.getTime()) / 1000);
    if (seconds < 45) return t('now');
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return relativeFormat ? relativeFormat.format(-minutes, 'minute') : minutes + 'm';
    var hours = Math.round(minutes / 60);
    if (hours < 24 && startOfDay(date) === startOfDay(now)) {
      return relativeFormat ? relativeFormat.format(-hours, 'hour') : hours + 'h';
    }
    var days = Math.round((startOfDay(now) - startOfDay(date)) / 86400000);
    if (days === 1) return relativeFormat ? relativeFormat.format(-1, 'day') : t('yesterday');
    if (days < 7) return weekdayFormat.format(date);
    return shortDateFormat.format(date);
  }

  function channelClass(channel) {
    return 'channel-badge channel-' + String(channel || 'unknown').replace(/[^a-z0-9_-]/gi, '');
  }

  function conversationTitle(conv) {
    if (conv.customer_name) return String(conv.customer_name);
    return conv.customer_id != null
      ? t('Customer #{id}', { id: conv.customer_id })
      : t('Conversation #{id}', { id: conv.id });
  }

  function api(method, path, body) {
    var options = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET' && method !== 'HEAD') {
      options.headers['Content-Type'] = 'application/json';
      options.headers['X-CSRF-Token'] = csrfToken;
      options.body = JSON.stringify(body || {});
    }
    return fetch(path, options).then(function (response) {
      return response.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (err) { data = null; }
        if (response.status === 401) {
          window.location.assign('/login?next=' + encodeURIComponent('/inbox'));
          throw { status: 401, message: t('Your session has ended. Please log in again.') };
        }
        if (!response.ok) {
          var error = data && data.error;
          throw {
            status: response.status,
            code: (error && error.code) || 'http_' + response.status,
            message: (error && error.message) || t('Request failed ({status}).', { status: response.status })
          };
        }
        return data || {};
      });
    }, function () {
      throw { status: 0, code: 'network', message: t('Could not reach the server. Check your connection and try again.') };
    });
  }

  // ------------------------------------------------------------------ list

  function sortKey(conv) {
    var date = parseTime(conv.last_message_at);
    return date ? date.getTime() : -Infinity;
  }

  function compareConversations(a, b) {
    var ka = sortKey(a);
    var kb = sortKey(b);
    if (ka !== kb) return kb > ka ? 1 : -1;
    return (b.id || 0) - (a.id || 0);
  }

  function upsertConversation(conv) {
    if (!conv || conv.id == null) return;
    var previous = state.conversations.get(conv.id);
    var merged = Object.assign({}, previous || {}, conv);
    if (merged.id === state.openId) merged.unread_count = 0;
    state.conversations.set(conv.id, merged);
  }

  function renderListItem(conv) {
    var li = state.listItems.get(conv.id);
    if (!li) {
      li = make('li', 'conv');
      li.dataset.conversationId = String(conv.id);
      var button = make('button', 'conv-item');
      button.type = 'button';
      li.appendChild(button);
      state.listItems.set(conv.id, li);
    }
    var btn = li.firstChild;
    var unread = conv.id === state.openId ? 0 : Math.max(0, Number(conv.unread_count) || 0);
    btn.className = 'conv-item' + (unread > 0 ? ' has-unread' : '');
    if (conv.id === state.openId) btn.setAttribute('aria-current', 'true');
    else btn.removeAttribute('aria-current');

    while (btn.firstChild) btn.removeChild(btn.firstChild);

    var title = conversationTitle(conv);
    var avatar = make('span', 'avatar conv-avatar', (conv.channel ? channelLabel(conv.channel) : 'C').charAt(0));
    avatar.setAttribute('aria-hidden', 'true');
    btn.appendChild(avatar);

    var body = make('span', 'conv-body');
    var top = make('span', 'conv-row');
    top.appendChild(make('span', 'conv-title', conv.subject ? conv.subject : title));
    var when = parseTime(conv.last_message_at);
    var time = make('time', 'conv-time', relativeTime(when));
    if (when) {
      time.dateTime = when.toISOString();
      time.title = window.SB && window.SB.formatDateTime ? window.SB.formatDateTime(when) : when.toISOString();
      time.dataset.ts = String(when.getTime());
    }
    top.appendChild(time);
    body.appendChild(top);

    var middle = make('span', 'conv-row');
    middle.appendChild(make('span', channelClass(conv.channel), channelLabel(conv.channel)));
    if (conv.subject) middle.appendChild(make('span', 'conv-preview', title));
    if (conv.status && conv.status !== 'open') middle.appendChild(make('span', 'conv-status', statusLabel(conv.status)));
    body.appendChild(middle);

    var bottom = make('span', 'conv-row');
    var preview = conv.last_preview || (conv.last_message_at ? t('Attachment') : t('No messages yet'));
    bottom.appendChild(make('span', 'conv-preview', preview));
    if (unread > 0) {
      var badge = make('span', 'unread-badge', unread > 99 ? '99+' : String(unread));
      badge.setAttribute('aria-label', t('{n} unread', { n: unread }));
      bottom.appendChild(badge);
    }
    body.appendChild(bottom);
    btn.appendChild(body);
    return li;
  }

  function renderList() {
    var list = el.list;
    var active = document.activeElement;
    var activeId = null;
    if (active && list.contains(active)) {
      var holder = active.closest('[data-conversation-id]');
      if (holder) activeId = Number(holder.dataset.conversationId);
    }
    var sorted = Array.from(state.conversations.values()).sort(compareConversations);
    var wanted = sorted.map(renderListItem);
    // Move only what is out of place, so focus and scroll position survive live updates.
    for (var i = 0; i < wanted.length; i++) {
      if (list.children[i] !== wanted[i]) list.insertBefore(wanted[i], list.children[i] || null);
    }
    while (list.children.length > wanted.length) list.removeChild(list.lastChild);
    if (activeId != null && document.activeElement !== active) {
      var again = state.listItems.get(activeId);
      if (again) again.firstChild.focus({ preventScroll: true });
    }
    setHidden(el.listLoading, true);
    setHidden(el.listEmpty, sorted.length > 0);
    el.count.textContent = sorted.length ? String(sorted.length) : '';
    updateDocumentTitle();
  }

  function updateDocumentTitle() {
    var unread = 0;
    state.conversations.forEach(function (conv) {
      if (conv.id !== state.openId) unread += Math.max(0, Number(conv.unread_count) || 0);
    });
    document.title = (unread ? '(' + unread + ') ' : '') + t('Inbox') + ' · Switchboard';
  }

  function refreshRelativeTimes() {
    var times = el.list.querySelectorAll('time[data-ts]');
    for (var i = 0; i < times.length; i++) {
      times[i].textContent = relativeTime(new Date(Number(times[i].dataset.ts)));
    }
  }

  function loadConversations() {
    return api('GET', API + '/conversations').then(
      function (data) {
        var list = (data && Array.isArray(data.conversations)) ? data.conversations : [];
        var seen = new Set();
        list.forEach(function (conv) {
          seen.add(conv.id);
          upsertConversation(conv);
        });
        // Conversations that disappeared (closed, access removed) go away, except the open one.
        Array.from(state.conversations.keys()).forEach(function (id) {
          if (!seen.has(id) && id !== state.openId) {
            state.conversations.delete(id);
            state.listItems.delete(id);
          }
        });
        setHidden(el.listError, true);
        renderList();
        if (state.openId != null) SBInbox.emit('conversation-updated', { id: state.openId });
      },
      function (err) {
        setHidden(el.listLoading, true);
        el.listError.textContent = t('Could not load conversations: {error}', { error: err.message });
        setHidden(el.listError, false);
      }
    );
  }

  // ------------------------------------------------------------------ live

  function onMessageCreated(data) {
    var msg = data.message || null;
    var convId = data.conversation_id != null ? data.conversation_id : (msg && msg.conversation_id);
    if (convId == null) return;
    var isOpen = convId === state.openId;
    var known = state.conversations.get(convId);
    if (data.conversation) {
      upsertConversation(data.conversation);
    } else if (known && msg) {
      var patch = { id: convId, last_message_at: msg.created_at, last_preview: msg.text || known.last_preview };
      if (msg.direction === 'in' && !isOpen) patch.unread_count = (Number(known.unread_count) || 0) + 1;
      upsertConversation(patch);
    } else if (!known) {
      loadConversations();
    }
    renderList();
  }

  function onFrame(frame) {
    if (!frame || typeof frame !== 'object') return;
    var data = frame.data || {};
    if (frame.type === 'message.created') onMessageCreated(data);
    else if (frame.type === 'resync') loadConversations();
  }

  // ------------------------------------------------------------------ wiring

  SBInbox.getConversation = function (id) {
    return state.conversations.get(id) || null;
  };

  function bind() {
    el.list.addEventListener('click', function (event) {
      var holder = event.target.closest('[data-conversation-id]');
      if (!holder || !el.list.contains(holder)) return;
      var id = Number(holder.dataset.conversationId);
      if (id !== state.openId) history.pushState(null, '', '#c/' + id);
      SBInbox.openConversation(id);
    });

    el.list.addEventListener('keydown', function (event) {
      if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
      var items = Array.from(el.list.querySelectorAll('.conv-item'));
      var index = items.indexOf(document.activeElement);
      if (index < 0) return;
      event.preventDefault();
      var next = items[index + (event.key === 'ArrowDown' ? 1 : -1)];
      if (next) next.focus();
    });

    SBInbox.on('conversation-opened', function (data) {
      state.openId = data && data.id != null ? data.id : null;
      var conv = state.conversations.get(state.openId);
      if (conv) conv.unread_count = 0;
      renderList();
    });
    SBInbox.on('conversation-closed', function (data) {
      state.openId = null;
      renderList();
      var item = data && data.id != null ? state.listItems.get(data.id) : null;
      if (item && data.focus) item.firstChild.focus();
    });
    SBInbox.on('frame', onFrame);
    SBInbox.on('live-open', loadConversations);
    setInterval(refreshRelativeTimes, 30000);
  }

  function init() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    csrfToken = meta ? meta.getAttribute('content') || '' : '';
    el.list = $('conversation-list');
    el.listEmpty = $('conversation-list-empty');
    el.listLoading = $('conversation-list-loading');
    el.listError = $('conversation-list-error');
    el.count = $('conversation-count');
    if (!el.list) return;
    bind();
    loadConversations();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
