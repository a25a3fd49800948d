/* Switchboard agent inbox: the LIST side (views, filters, saved views, counts, unread,
 * search, and the live conversation list).
 *
 * Plain browser JavaScript, no dependencies, served under `script-src 'self'`. Loaded
 * before inbox.js (the conversation pane), which it talks to only through `window.SBInbox`:
 *
 *   SBInbox.on(name, fn) / SBInbox.off(name, fn) / SBInbox.emit(name, data)
 *   SBInbox.openConversation(id, options)   set by inbox.js; the list calls it on a click
 *   SBInbox.getConversation(id)             set here; the list's summary of a conversation
 *   SBInbox.openAdjacent(step)              set here; open the next (1) / previous (-1) one
 *
 *   events emitted by inbox.js:  'conversation-opened' {id}, 'conversation-closed' {id},
 *                                'frame' (every /inbox/ws frame), 'live-open' (socket (re)opened)
 *   events emitted here:         'conversation-updated' {id} (its summary changed)
 *
 * The list shows one view (built-in or saved) narrowed by filters, a page at a time
 * (GET /api/v1/inbox/conversations with a cursor). Live frames move conversations in and
 * out of it without a reload: a message for a listed conversation moves it to the top
 * (and counts as unread unless it is open); one for a conversation not listed, or a ticket
 * change, asks the server whether it now belongs here (`ids=`), since only the server
 * knows the view's rules and the agent's access. Counts per view refresh shortly after.
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
  var COUNTS_DELAY = 1200; // counts refresh this long after the last live change
  var SEARCH_DELAY = 250;
  var STORE_KEY = 'sb.inbox.view';
  var BUILTIN = ['mine', 'unassigned', 'my_queues', 'all'];

  function channelLabel(channel) {
    switch (channel) {
      case 'webchat': return t('Web chat');
      case 'email': return t('Email');
      case 'telegram': return 'Telegram';
      case 'slack': return 'Slack';
      case 'api': return 'API';
      default: return channel ? String(channel) : t('Unknown');
    }
  }

  var statusLabel = SB.statusLabel; // web/static/staff.js

  function priorityLabel(priority) {
    switch (priority) {
      case 'urgent': return t('Urgent');
      case 'high': return t('High');
      case 'low': return t('Low');
      default: return t('Normal');
    }
  }

  function viewLabel(key) {
    switch (key) {
      case 'mine': return t('Mine');
      case 'unassigned': return t('Unassigned');
      case 'my_queues': return t('My queues');
      default: return t('All');
    }
  }

  // ------------------------------------------------------------------ state

  var state = {
    conversations: new Map(), // id -> list item (summary)
    listItems: new Map(), // id -> <li>
    openId: null,
    // What the list shows: a built-in view, or a saved one (its id), plus filters.
    view: 'all',
    savedId: null,
    filters: { status: '', priority: '', channel: '', tag: '' },
    savedViews: [], // [{id, name, filters}]
    nextCursor: null,
    loadToken: 0, // bumps on every (re)load, so a late answer for another view is dropped
    counts: null,
    countsTimer: null,
    search: { query: '', token: 0, timer: null, groups: {} }
  };
  var el = {};

  // ------------------------------------------------------------------ helpers

  var $ = SB.byId; // web/static/staff.js

  var make = SB.make;

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

  function fullTime(date) {
    return window.SB && window.SB.formatDateTime ? window.SB.formatDateTime(date) : date.toISOString();
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

  var api = SB.api;

  // ------------------------------------------------------------------ the query

  function currentQuery() {
    var params = new URLSearchParams();
    params.set('view', state.view);
    ['status', 'priority', 'channel', 'tag'].forEach(function (key) {
      var value = state.filters[key];
      if (value) params.set(key, value);
    });
    return params;
  }

  function filtersFromSaved(saved) {
    var f = saved.filters || {};
    function first(list) { return Array.isArray(list) && list.length ? String(list[0]) : ''; }
    return {
      view: BUILTIN.indexOf(f.view) >= 0 ? f.view : 'all',
      filters: { status: first(f.status), priority: first(f.priority), channel: first(f.channel), tag: first(f.tag) }
    };
  }

  function filtersAsJson() {
    var out = { view: state.view };
    ['status', 'priority', 'channel', 'tag'].forEach(function (key) {
      out[key] = state.filters[key] ? [state.filters[key]] : [];
    });
    return out;
  }

  function remember() {
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify({
        view: state.view, savedId: state.savedId, filters: state.filters
      }));
    } catch (err) { /* private mode: not remembered */ }
  }

  function recall() {
    try {
      var raw = JSON.parse(window.localStorage.getItem(STORE_KEY) || 'null');
      if (!raw || typeof raw !== 'object') return;
      if (BUILTIN.indexOf(raw.view) >= 0) state.view = raw.view;
      if (typeof raw.savedId === 'number') state.savedId = raw.savedId;
      if (raw.filters && typeof raw.filters === 'object') {
        ['status', 'priority', 'channel', 'tag'].forEach(function (key) {
          if (typeof raw.filters[key] === 'string') state.filters[key] = raw.filters[key].slice(0, 50);
        });
      }
    } catch (err) { /* ignore */ }
  }

  // ------------------------------------------------------------------ list rendering

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

  function removeConversation(id) {
    state.conversations.delete(id);
    state.listItems.delete(id);
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
    var avatar = make('span', 'avatar conv-avatar', (title || 'C').charAt(0).toUpperCase());
    avatar.setAttribute('aria-hidden', 'true');
    btn.appendChild(avatar);

    var body = make('span', 'conv-body');
    var top = make('span', 'conv-row');
    top.appendChild(make('span', 'conv-title', conv.subject ? conv.subject : title));
    var when = parseTime(conv.last_message_at);
    var time = make('time', 'conv-time', relativeTime(when));
    if (when) {
      time.dateTime = when.toISOString();
      time.title = fullTime(when);
      time.dataset.ts = String(when.getTime());
    }
    top.appendChild(time);
    body.appendChild(top);

    var middle = make('span', 'conv-row conv-meta');
    middle.appendChild(make('span', channelClass(conv.channel), channelLabel(conv.channel)));
    if (conv.subject) middle.appendChild(make('span', 'conv-preview', title));
    var ticket = conv.ticket;
    if (ticket) {
      if (ticket.priority === 'high' || ticket.priority === 'urgent') {
        middle.appendChild(make('span', 'conv-priority conv-priority-' + ticket.priority, priorityLabel(ticket.priority)));
      }
      if (ticket.status && ticket.status !== 'open') {
        middle.appendChild(make('span', 'conv-status', statusLabel(ticket.status)));
      }
    } else if (conv.status && conv.status !== 'open') {
      middle.appendChild(make('span', 'conv-status', statusLabel(conv.status)));
    }
    body.appendChild(middle);

    var bottom = make('span', 'conv-row');
    var preview = conv.last_preview || (conv.last_message_at ? t('Attachment') : t('No messages yet'));
    bottom.appendChild(make('span', 'conv-preview', preview));
    if (unread > 0) {
      var badge = make('span', 'unread-badge', unread > 99 ? '99+' : String(unread));
      badge.setAttribute('aria-label', t('{n} unread', { n: unread }));
      badge.title = t('{n} unread', { n: unread });
      bottom.appendChild(badge);
    }
    body.appendChild(bottom);
    btn.appendChild(body);
    return li;
  }

  function sortedConversations() {
    return Array.from(state.conversations.values()).sort(compareConversations);
  }

  function renderList() {
    var list = el.list;
    var active = document.activeElement;
    var activeId = null;
    if (active && list.contains(active)) {
      var holder = active.closest('[data-conversation-id]');
      if (holder) activeId = Number(holder.dataset.conversationId);
    }
    var sorted = sortedConversations();
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
    setHidden(el.more, !state.nextCursor);
    el.count.textContent = sorted.length ? String(sorted.length) + (state.nextCursor ? '+' : '') : '';
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

  // ------------------------------------------------------------------ loading

  /* The first page of the current view; replaces the list (keeps the open conversation). */
  function loadConversations() {
    var token = ++state.loadToken;
    return api('GET', API + '/inbox/conversations?' + currentQuery().toString()).then(
      function (data) {
        if (token !== state.loadToken) return;
        var list = (data && Array.isArray(data.conversations)) ? data.conversations : [];
        var seen = new Set();
        list.forEach(function (conv) {
          seen.add(conv.id);
          upsertConversation(conv);
        });
        Array.from(state.conversations.keys()).forEach(function (id) {
          if (!seen.has(id)) removeConversation(id);
        });
        state.nextCursor = data.next_cursor || null;
        setHidden(el.listError, true);
        renderList();
        if (state.openId != null) SBInbox.emit('conversation-updated', { id: state.openId });
      },
      function (err) {
        if (token !== state.loadToken) return;
        setHidden(el.listLoading, true);
        el.listError.textContent = t('Could not load conversations: {error}', { error: err.message });
        setHidden(el.listError, false);
      }
    );
  }

  function loadMore() {
    if (!state.nextCursor) return;
    var token = state.loadToken;
    var params = currentQuery();
    params.set('cursor', state.nextCursor);
    el.more.disabled = true;
    api('GET', API + '/inbox/conversations?' + params.toString()).then(function (data) {
      if (token !== state.loadToken) return;
      (data.conversations || []).forEach(upsertConversation);
      state.nextCursor = data.next_cursor || null;
      renderList();
    }, function (err) {
      el.listError.textContent = t('Could not load conversations: {error}', { error: err.message });
      setHidden(el.listError, false);
    }).then(function () {
      el.more.disabled = false;
    });
  }

  /* Ask the server whether these conversations belong in the current view now; put in
     those that do, take out those that no longer do. */
  var recheckQueue = new Set();
  var recheckTimer = null;
  function recheck(ids) {
    ids.forEach(function (id) { if (typeof id === 'number') recheckQueue.add(id); });
    if (recheckTimer) return;
    recheckTimer = setTimeout(function () {
      recheckTimer = null;
      var batch = Array.from(recheckQueue).slice(0, 50);
      batch.forEach(function (id) { recheckQueue.delete(id); });
      if (!batch.length) return;
      var token = state.loadToken;
      var params = currentQuery();
      params.set('ids', batch.join(','));
      api('GET', API + '/inbox/conversations?' + params.toString()).then(function (data) {
        if (token !== state.loadToken) return;
        var inView = new Set();
        (data.conversations || []).forEach(function (conv) {
          inView.add(conv.id);
          upsertConversation(conv);
        });
        batch.forEach(function (id) {
          // The open conversation stays listed while it is open, so it does not vanish
          // under the agent (it goes at the next reload).
          if (!inView.has(id) && id !== state.openId) removeConversation(id);
        });
        renderList();
        if (state.openId != null && batch.indexOf(state.openId) >= 0) {
          SBInbox.emit('conversation-updated', { id: state.openId });
        }
      }, function () { /* the next reload catches up */ });
      if (recheckQueue.size) recheck([]);
    }, 150);
  }

  // ------------------------------------------------------------------ views and counts

  function formatCount(n, cap) {
    if (typeof n !== 'number') return '';
    return n >= cap ? (cap - 1) + '+' : String(n);
  }

  function renderCounts() {
    var counts = state.counts;
    var cap = (counts && counts.cap) || 1000;
    var nodes = document.querySelectorAll('[data-count]');
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var entry = counts && counts.counts ? counts.counts[node.dataset.count] : null;
      while (node.firstChild) node.removeChild(node.firstChild);
      if (!entry) continue;
      var total = make('span', 'view-total', formatCount(entry.total, cap));
      total.setAttribute('aria-label', t('{n} conversations', { n: formatCount(entry.total, cap) }));
      node.appendChild(total);
      if (entry.unread > 0) {
        // Past the cap the server counted unread among the first `cap` only: a lower bound.
        var unreadText = entry.total >= cap ? Math.min(entry.unread, cap - 1) + '+' : formatCount(entry.unread, cap);
        var unread = make('span', 'view-unread', unreadText);
        unread.setAttribute('aria-label', t('{n} with unread messages', { n: unreadText }));
        unread.title = t('{n} with unread messages', { n: unreadText });
        node.appendChild(unread);
      }
    }
  }

  function loadCounts() {
    return api('GET', API + '/inbox/counts').then(function (data) {
      state.counts = data;
      renderCounts();
    }, function () { /* counts stay as they were */ });
  }

  function scheduleCounts() {
    if (state.countsTimer) clearTimeout(state.countsTimer);
    state.countsTimer = setTimeout(function () {
      state.countsTimer = null;
      loadCounts();
    }, COUNTS_DELAY);
  }

  function renderViews() {
    var buttons = el.views.querySelectorAll('.view-button');
    for (var i = 0; i < buttons.length; i++) {
      var on = state.savedId == null && buttons[i].dataset.view === state.view;
      buttons[i].setAttribute('aria-pressed', on ? 'true' : 'false');
    }
    var list = el.saved;
    while (list.firstChild) list.removeChild(list.firstChild);
    state.savedViews.forEach(function (view) {
      var li = make('li');
      var button = make('button', 'view-button saved-view');
      button.type = 'button';
      button.dataset.savedId = String(view.id);
      button.setAttribute('aria-pressed', state.savedId === view.id ? 'true' : 'false');
      button.appendChild(make('span', 'view-name', view.name));
      var count = make('span', 'view-count');
      count.dataset.count = 'saved:' + view.id;
      button.appendChild(count);
      li.appendChild(button);
      list.appendChild(li);
    });
    if (!state.savedViews.length) {
      list.appendChild(make('li', 'saved-empty', t('None yet: set filters, then “Save as view…”.')));
    }
    setHidden(el.savedActions, state.savedId == null);
    var saved = savedById(state.savedId);
    el.listTitle.textContent = saved ? saved.name : viewLabel(state.view);
    renderFilters();
    renderCounts();
  }

  function renderFilters() {
    el.fStatus.value = state.filters.status;
    el.fPriority.value = state.filters.priority;
    el.fChannel.value = state.filters.channel;
    el.fTag.value = state.filters.tag;
    var active = ['status', 'priority', 'channel', 'tag'].filter(function (k) { return state.filters[k]; }).length;
    el.filterSummary.textContent = active ? t('{n} on', { n: active }) : '';
  }

  function savedById(id) {
    for (var i = 0; i < state.savedViews.length; i++) {
      if (state.savedViews[i].id === id) return state.savedViews[i];
    }
    return null;
  }

  function selectBuiltin(view) {
    state.view = view;
    state.savedId = null;
    afterSelection();
  }

  function selectSaved(id) {
    var saved = savedById(id);
    if (!saved) return;
    var parsed = filtersFromSaved(saved);
    state.savedId = id;
    state.view = parsed.view;
    state.filters = parsed.filters;
    afterSelection();
  }

  function afterSelection() {
    remember();
    renderViews();
    state.nextCursor = null;
    setHidden(el.listLoading, false);
    loadConversations();
  }

  function loadSavedViews() {
    return api('GET', API + '/inbox/views').then(function (data) {
      state.savedViews = Array.isArray(data.views) ? data.views : [];
      if (state.savedId != null && !savedById(state.savedId)) state.savedId = null;
      renderViews();
    }, function () { renderViews(); });
  }

  function showViewError(message) {
    el.viewError.textContent = message || '';
    setHidden(el.viewError, !message);
  }

  var formMode = 'create';
  function openViewForm(mode) {
    formMode = mode;
    var saved = savedById(state.savedId);
    el.viewName.value = mode === 'rename' && saved ? saved.name : '';
    el.viewFormSubmit.textContent = mode === 'rename' ? t('Rename') : t('Save');
    setHidden(el.viewForm, false);
    showViewError('');
    el.viewName.focus();
  }

  function closeViewForm() {
    setHidden(el.viewForm, true);
    el.viewName.value = '';
  }

  function submitViewForm() {
    var name = el.viewName.value.trim();
    if (!name) {
      showViewError(t('Give the view a name.'));
      el.viewName.focus();
      return;
    }
    var request = formMode === 'rename' && state.savedId != null
      ? api('PATCH', API + '/inbox/views/' + state.savedId, { name: name })
      : api('POST', API + '/inbox/views', { name: name, filters: filtersAsJson() });
    el.viewFormSubmit.disabled = true;
    request.then(function (data) {
      closeViewForm();
      showViewError('');
      var view = data.view;
      var known = savedById(view.id);
      if (known) Object.assign(known, view);
      else state.savedViews.push(view);
      state.savedId = view.id;
      remember();
      renderViews();
      loadCounts();
    }, function (err) {
      showViewError(err.code === 'name_taken' ? t('You already have a view with that name.') : err.message);
    }).then(function () {
      el.viewFormSubmit.disabled = false;
    });
  }

  function updateSavedView() {
    if (state.savedId == null) return;
    api('PATCH', API + '/inbox/views/' + state.savedId, { filters: filtersAsJson() }).then(function (data) {
      var known = savedById(data.view.id);
      if (known) Object.assign(known, data.view);
      showViewError('');
      renderViews();
      loadCounts();
    }, function (err) { showViewError(err.message); });
  }

  function deleteSavedView() {
    var saved = savedById(state.savedId);
    if (!saved) return;
    if (!window.confirm(t('Delete the view “{name}”?', { name: saved.name }))) return;
    api('DELETE', API + '/inbox/views/' + saved.id).then(function () {
      state.savedViews = state.savedViews.filter(function (v) { return v.id !== saved.id; });
      state.savedId = null;
      remember();
      renderViews();
      loadConversations();
    }, function (err) { showViewError(err.message); });
  }

  function onFilterChange() {
    state.filters = {
      status: el.fStatus.value,
      priority: el.fPriority.value,
      channel: el.fChannel.value,
      tag: el.fTag.value.trim().toLowerCase().slice(0, 50)
    };
    remember();
    renderFilters();
    state.nextCursor = null;
    loadConversations();
  }

  // ------------------------------------------------------------------ search

  function setSearchMode(on) {
    setHidden(el.searchResults, !on);
    setHidden(el.listSide, on);
  }

  function clearSearch() {
    state.search.query = '';
    state.search.token += 1;
    el.search.value = '';
    setSearchMode(false);
  }

  function scheduleSearch() {
    if (state.search.timer) clearTimeout(state.search.timer);
    state.search.timer = setTimeout(function () {
      state.search.timer = null;
      runSearch(el.search.value.trim());
    }, SEARCH_DELAY);
  }

  function runSearch(query) {
    if (query === state.search.query && !el.searchResults.hidden) return;
    state.search.query = query;
    var token = ++state.search.token;
    if (!query) {
      setSearchMode(false);
      return;
    }
    setSearchMode(true);
    el.searchStatus.textContent = t('Searching…');
    api('GET', API + '/search?q=' + encodeURIComponent(query)).then(function (data) {
      if (token !== state.search.token) return;
      state.search.groups = data.results || {};
      renderSearch();
    }, function (err) {
      if (token !== state.search.token) return;
      while (el.searchGroups.firstChild) el.searchGroups.removeChild(el.searchGroups.firstChild);
      el.searchStatus.textContent = err.code === 'query_empty'
        ? t('Type letters or digits to search.')
        : t('Search failed: {error}', { error: err.message });
    });
  }

  function searchMore(kind) {
    var group = state.search.groups[kind];
    if (!group || !group.next_cursor) return;
    var token = state.search.token;
    var url = API + '/search?q=' + encodeURIComponent(state.search.query) + '&kind=' + kind +
      '&cursor=' + encodeURIComponent(group.next_cursor);
    api('GET', url).then(function (data) {
      if (token !== state.search.token) return;
      var more = data.results && data.results[kind];
      if (!more) return;
      group.items = group.items.concat(more.items || []);
      group.next_cursor = more.next_cursor;
      group.truncated = more.truncated;
      renderSearch();
    }, function () { /* keep what is shown */ });
  }

  function resultButton(kind, item, parts) {
    var li = make('li', 'search-item');
    var button = make('button', 'search-hit');
    button.type = 'button';
    button.dataset.kind = kind;
    button.dataset.id = String(item.id);
    if (item.conversation_id != null) button.dataset.conversationId = String(item.conversation_id);
    parts.forEach(function (part) {
      if (part) button.appendChild(part);
    });
    li.appendChild(button);
    return li;
  }

  function renderSearch() {
    var groups = state.search.groups;
    var box = el.searchGroups;
    while (box.firstChild) box.removeChild(box.firstChild);
    var total = 0;
    var truncated = false;
    var spec = [
      ['messages', t('Messages')],
      ['customers', t('Customers')],
      ['tickets', t('Tickets')]
    ];
    spec.forEach(function (entry) {
      var kind = entry[0];
      var group = groups[kind];
      if (group && group.truncated) truncated = true;
      if (!group || !group.items || !group.items.length) return;
      total += group.items.length;
      var section = make('section', 'search-group');
      var headingId = 'search-group-' + kind;
      var heading = make('h3', 'search-group-title', entry[1]);
      heading.id = headingId;
      section.appendChild(heading);
      var ul = make('ul', 'search-list');
      ul.setAttribute('aria-labelledby', headingId);
      group.items.forEach(function (item) {
        if (kind === 'messages') {
          var when = parseTime(item.created_at);
          var top = make('span', 'search-hit-top');
          top.appendChild(make('span', 'search-hit-title', item.customer_name || t('Customer #{id}', { id: item.customer_id })));
          if (when) {
            var time = make('time', 'search-hit-time', relativeTime(when));
            time.dateTime = when.toISOString();
            time.title = fullTime(when);
            top.appendChild(time);
          }
          var meta = make('span', 'search-hit-meta');
          meta.appendChild(make('span', channelClass(item.channel), channelLabel(item.channel)));
          if (item.private) meta.appendChild(make('span', 'conv-status', t('Internal note')));
          else if (item.direction === 'out') meta.appendChild(make('span', 'conv-status', t('Reply')));
          ul.appendChild(resultButton(kind, item, [top, meta, make('span', 'search-snippet', item.snippet || '')]));
        } else if (kind === 'customers') {
          var contact = [item.email, item.phone].filter(Boolean).join(' · ');
          ul.appendChild(resultButton(kind, item, [
            make('span', 'search-hit-title', item.name || item.email || t('Customer #{id}', { id: item.id })),
            contact ? make('span', 'search-snippet', contact) : null
          ]));
        } else {
          var ticketMeta = make('span', 'search-hit-meta');
          ticketMeta.appendChild(make('span', 'conv-status', statusLabel(item.status)));
          ticketMeta.appendChild(make('span', 'conv-status', priorityLabel(item.priority)));
          ul.appendChild(resultButton(kind, item, [
            make('span', 'search-hit-title', t('Ticket #{id}', { id: item.id }) + (item.subject ? ' · ' + item.subject : '')),
            ticketMeta
          ]));
        }
      });
      section.appendChild(ul);
      if (group.next_cursor) {
        var more = make('button', 'btn btn-ghost btn-sm list-more', t('More results'));
        more.type = 'button';
        more.dataset.more = kind;
        section.appendChild(more);
      }
      box.appendChild(section);
    });
    var status = total
      ? t('Results for “{q}”', { q: state.search.query })
      : t('Nothing found for “{q}”.', { q: state.search.query });
    // The server stops a page after 20,000 rows of very common words: say so.
    if (truncated) status += ' ' + t('Only part was searched: add a word to narrow it, or ask for more results.');
    el.searchStatus.textContent = status;
  }

  function openFromSearch(button) {
    var kind = button.dataset.kind;
    var conversationId = button.dataset.conversationId ? Number(button.dataset.conversationId) : null;
    if (kind === 'customers') {
      var customerId = Number(button.dataset.id);
      api('GET', API + '/customers/' + customerId).then(function (data) {
        var customer = data.customer || data;
        var conversations = customer.conversations || data.conversations || [];
        if (conversations.length) openById(Number(conversations[0].id));
        else el.searchStatus.textContent = t('This customer has no conversation you can open.');
      }, function (err) {
        el.searchStatus.textContent = err.message;
      });
      return;
    }
    if (conversationId) openById(conversationId);
  }

  function openById(id) {
    if (id !== state.openId) history.pushState(null, '', '#c/' + id);
    SBInbox.openConversation(id);
  }

  // ------------------------------------------------------------------ live

  function onMessageCreated(data) {
    var msg = data.message || null;
    var convId = data.conversation_id != null ? data.conversation_id : (msg && msg.conversation_id);
    if (convId == null) return;
    var isOpen = convId === state.openId;
    var known = state.conversations.get(convId);
    if (known) {
      var patch = { id: convId };
      var summary = data.conversation || {};
      ['last_message_at', 'last_preview', 'last_seq', 'status', 'subject'].forEach(function (key) {
        if (summary[key] !== undefined) patch[key] = summary[key];
      });
      if (msg) {
        if (!patch.last_message_at) patch.last_message_at = msg.created_at;
        if (!patch.last_preview && msg.text) patch.last_preview = msg.text;
        if (msg.direction === 'in' && !isOpen) patch.unread_count = (Number(known.unread_count) || 0) + 1;
      }
      upsertConversation(patch);
      renderList();
    } else {
      recheck([convId]);
    }
    scheduleCounts();
  }

  function onTicket(data) {
    var ticket = data.ticket || {};
    var ids = Array.isArray(ticket.conversation_ids) ? ticket.conversation_ids : [];
    if (ids.length) recheck(ids.slice(0, 50));
    scheduleCounts();
  }

  function onFrame(frame) {
    if (!frame || typeof frame !== 'object') return;
    var data = frame.data || {};
    switch (frame.type) {
      case 'message.created':
        onMessageCreated(data);
        break;
      case 'ticket.created':
      case 'ticket.updated':
      case 'ticket.merged':
        onTicket(data);
        break;
      case 'resync':
        resync();
        break;
      default:
        break;
    }
  }

  function resync() {
    loadConversations();
    loadCounts();
  }

  // ------------------------------------------------------------------ wiring

  SBInbox.getConversation = function (id) {
    return state.conversations.get(id) || null;
  };

  SBInbox.openAdjacent = function (step) {
    var ids = sortedConversations().map(function (c) { return c.id; });
    if (!ids.length) return;
    var index = ids.indexOf(state.openId);
    var next = index < 0 ? ids[0] : ids[index + step];
    if (next != null) openById(next);
  };

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === 'input' || tag === 'textarea' || tag === 'select' || target.isContentEditable;
  }

  function bind() {
    el.list.addEventListener('click', function (event) {
      var holder = event.target.closest('[data-conversation-id]');
      if (!holder || !el.list.contains(holder)) return;
      openById(Number(holder.dataset.conversationId));
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

    el.views.addEventListener('click', function (event) {
      var button = event.target.closest('.view-button');
      if (button) selectBuiltin(button.dataset.view);
    });
    el.saved.addEventListener('click', function (event) {
      var button = event.target.closest('[data-saved-id]');
      if (button) selectSaved(Number(button.dataset.savedId));
    });
    [el.fStatus, el.fPriority, el.fChannel].forEach(function (select) {
      select.addEventListener('change', onFilterChange);
    });
    el.fTag.addEventListener('change', onFilterChange);
    el.fTag.addEventListener('keydown', function (event) {
      if (event.key === 'Enter') {
        event.preventDefault();
        onFilterChange();
      }
    });
    el.filterClear.addEventListener('click', function () {
      state.filters = { status: '', priority: '', channel: '', tag: '' };
      renderFilters();
      onFilterChange();
    });
    el.viewSave.addEventListener('click', function () { openViewForm('create'); });
    el.viewRename.addEventListener('click', function () { openViewForm('rename'); });
    el.viewUpdate.addEventListener('click', updateSavedView);
    el.viewDelete.addEventListener('click', deleteSavedView);
    el.viewForm.addEventListener('submit', function (event) {
      event.preventDefault();
      submitViewForm();
    });
    el.viewFormCancel.addEventListener('click', closeViewForm);
    el.more.addEventListener('click', loadMore);

    el.searchForm.addEventListener('submit', function (event) {
      event.preventDefault();
      runSearch(el.search.value.trim());
    });
    el.search.addEventListener('input', scheduleSearch);
    el.search.addEventListener('keydown', function (event) {
      if (event.key === 'Escape') {
        event.preventDefault();
        clearSearch();
        var first = el.list.querySelector('.conv-item');
        if (first) first.focus();
      }
    });
    el.searchResults.addEventListener('click', function (event) {
      var more = event.target.closest('[data-more]');
      if (more) {
        searchMore(more.dataset.more);
        return;
      }
      var hit = event.target.closest('.search-hit');
      if (hit) openFromSearch(hit);
    });
    document.addEventListener('keydown', function (event) {
      if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.defaultPrevented || isTyping(event.target) || document.querySelector('dialog[open]')) return;
      event.preventDefault();
      el.search.focus();
      el.search.select();
    });

    SBInbox.on('conversation-opened', function (data) {
      state.openId = data && data.id != null ? data.id : null;
      var conv = state.conversations.get(state.openId);
      if (conv) conv.unread_count = 0;
      renderList();
      scheduleCounts();
    });
    SBInbox.on('conversation-closed', function (data) {
      state.openId = null;
      renderList();
      var item = data && data.id != null ? state.listItems.get(data.id) : null;
      if (item && data.focus) item.firstChild.focus();
    });
    SBInbox.on('frame', onFrame);
    SBInbox.on('live-open', resync);
    setInterval(refreshRelativeTimes, 30000);
  }

  function init() {
    el.list = $('conversation-list');
    if (!el.list) return;
    el.listEmpty = $('conversation-list-empty');
    el.listLoading = $('conversation-list-loading');
    el.listError = $('conversation-list-error');
    el.count = $('conversation-count');
    el.listTitle = $('list-title');
    el.more = $('list-more');
    el.listSide = $('list-side');
    el.views = $('view-list');
    el.saved = $('saved-view-list');
    el.savedActions = $('saved-actions');
    el.fStatus = $('filter-status');
    el.fPriority = $('filter-priority');
    el.fChannel = $('filter-channel');
    el.fTag = $('filter-tag');
    el.filterSummary = $('filter-summary');
    el.filterClear = $('filter-clear');
    el.viewSave = $('view-save');
    el.viewForm = $('view-form');
    el.viewName = $('view-name');
    el.viewFormSubmit = $('view-form-submit');
    el.viewFormCancel = $('view-form-cancel');
    el.viewUpdate = $('view-update');
    el.viewRename = $('view-rename');
    el.viewDelete = $('view-delete');
    el.viewError = $('view-error');
    el.searchForm = $('inbox-search');
    el.search = $('search-input');
    el.searchResults = $('search-results');
    el.searchStatus = $('search-status');
    el.searchGroups = $('search-groups');
    recall();
    bind();
    renderViews();
    loadSavedViews();
    loadConversations();
    loadCounts();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
