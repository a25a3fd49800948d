/* Switchboard agent inbox: the CONVERSATION pane (right side) and its live socket.
 *
 * Plain browser JavaScript, no dependencies, served under `script-src 'self'`. The list
 * (inbox-list.js, loaded first) and this pane talk through `window.SBInbox`; the customer
 * profile column (profile-panel.js) listens to 'conversation-loaded' {id, customer_id}.
 *
 * A conversation shows the customer's whole history: every message of every conversation
 * of theirs the agent may see, on every channel, in time order (GET
 * /api/v1/conversations/{id}/history), each marked with its channel; bot answers carry
 * their article and confidence. Every piece of user data (message text, names, file
 * names, subjects, tags) reaches the DOM through textContent or attribute setters, never
 * through innerHTML.
 */
(function () {
  'use strict';

  var API = '/api/v1';
  var SBInbox = window.SBInbox = window.SBInbox || { on: function () {}, emit: function () {} };
  var t = (window.SB && window.SB.t) || function (text, params) {
    return String(text).replace(/\{(\w+)\}/g, function (whole, name) {
      return params && Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole;
    });
  };
  var TYPING_THROTTLE = 2000;
  var TYPING_HIDE_AFTER = 5000;
  var PRESENCE_HEARTBEAT = 20000;
  var PRESENCE_EXPIRES = 50000;
  var ACTIVE_STATUSES = 'new,open,pending,on_hold';
  var IMAGE_TYPES = /^image\/(png|jpe?g|gif|webp)$/i;

  // ------------------------------------------------------------------ state

  var state = {
    openId: null,
    openToken: 0, // bumps on every open, so late responses for another one are dropped
    conversation: null, // GET /conversations/{id}
    customerId: null,
    messages: new Map(), // message id -> {msg, el}
    olderCursor: null,
    ticket: null,
    teammates: [],
    teammatesById: new Map(),
    canned: null, // cached list
    cannedIndex: 0,
    mentionIndex: 0,
    mentions: new Map(), // user id -> name, picked in this draft
    uploads: [], // [{id, filename}]
    uploading: 0,
    typingSentAt: 0,
    typingActive: false,
    typingConversation: null,
    typers: new Map(), // key -> {label, timer}
    viewers: new Map(), // user id -> {name, expires}
    lastHelloAnswer: 0,
    sending: false,
    readTimer: null,
    historyTimer: null
  };

  var el = {};
  var live = null; // SwitchboardLiveSocket on /inbox/ws, made in init()
  var me = { id: null, name: '', role: '' };

  // ------------------------------------------------------------------ helpers

  var $ = SB.byId; // web/static/staff.js

  var make = SB.make;

  function parseTime(value) {
    if (!value) return null;
    var text = String(value);
    // A timestamp without a zone is UTC on our server; without this, Date would read it as local.
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
    var date = new Date(text);
    return isNaN(date.getTime()) ? null : date;
  }

  function formatTime(date) {
    return window.SB && window.SB.formatTime ? window.SB.formatTime(date) : date.toLocaleTimeString();
  }

  function formatDateTime(date) {
    return window.SB && window.SB.formatDateTime ? window.SB.formatDateTime(date) : date.toLocaleString();
  }

  function formatDate(date) {
    return window.SB && window.SB.formatDate ? window.SB.formatDate(date) : date.toLocaleDateString();
  }

  function formatSize(bytes) {
    if (typeof bytes !== 'number' || !isFinite(bytes) || bytes < 0) return '';
    if (bytes < 1024) return bytes + ' B';
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0) + ' KB';
    return (bytes / (1024 * 1024)).toFixed(1) + ' MB';
  }

  function channelLabel(channel) {
    if (channel === 'webchat') return t('Web chat');
    if (channel === 'email') return t('Email');
    if (channel === 'telegram') return t('Telegram');
    if (channel === 'slack') return t('Slack');
    if (channel === 'api') return t('API');
    return channel ? String(channel) : t('Unknown');
  }

  function channelClass(channel) {
    return 'channel-badge channel-' + String(channel || 'unknown').replace(/[^a-z0-9_-]/gi, '');
  }

  var statusLabel = SB.statusLabel; // web/static/staff.js

  function authorKindLabel(kind) {
    switch (kind) {
      case 'customer': return t('Customer');
      case 'bot': return t('Bot');
      case 'system': return t('System');
      default: return t('Agent');
    }
  }

  function deliveryLabel(status) {
    switch (status) {
      case 'pending': return t('Sending…');
      case 'sent': return t('Sent');
      case 'failed': return t('Failed');
      case 'unconfirmed': return t('Unconfirmed');
      case 'not_sent': return t('Not sent');
      default: return String(status);
    }
  }

  function handoffLabel(reason) {
    switch (reason) {
      case 'customer_asked': return t('customer asked for a person');
      case 'rule': return t('inbox rule');
      case 'out_of_scope': return t('out of scope');
      case 'second_miss': return t('bot missed twice');
      case 'frustration': return t('customer frustrated');
      case 'engine_unavailable': return t('bot unavailable');
      case 'agent_replied': return t('an agent replied');
      default: return reason ? String(reason) : t('handed off');
    }
  }

  function percent(value) {
    var n = Number(value);
    return isFinite(n) ? Math.round(n * 100) + '%' : '';
  }

  function setHidden(node, hidden) {
    if (node) node.hidden = !!hidden;
  }

  function clear(node) {
    while (node && node.firstChild) node.removeChild(node.firstChild);
  }

  function isTyping(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || target.isContentEditable;
  }

  // ------------------------------------------------------------------ API

  var api = SB.api; // web/static/staff.js

  function upload(inboxId, file) {
    var form = new FormData();
    form.append('file', file, file.name);
    return api('POST', API + '/uploads?inbox_id=' + encodeURIComponent(inboxId), form);
  }

  var toastTimer = null;
  function notify(text, link) {
    var box = make('div', 'toast');
    box.setAttribute('role', 'status');
    box.appendChild(make('span', 'toast-text', text));
    if (link) {
      var a = make('a', 'toast-link', link.label);
      a.href = link.href;
      box.appendChild(a);
    }
    var close = make('button', 'toast-close', '×');
    close.type = 'button';
    close.setAttribute('aria-label', t('Dismiss'));
    close.addEventListener('click', function () { box.remove(); });
    box.appendChild(close);
    el.notifications.appendChild(box);
    while (el.notifications.children.length > 4) el.notifications.removeChild(el.notifications.firstChild);
    if (!link) {
      if (toastTimer) clearTimeout(toastTimer);
      toastTimer = setTimeout(function () { box.remove(); }, 6000);
    }
  }

  // ------------------------------------------------------------------ conversation header

  function showView(view) {
    el.app.dataset.view = view;
  }

  /* The list (web/static/inbox-list.js) keeps the conversations' summaries. */
  function summary(id) {
    return SBInbox.getConversation ? SBInbox.getConversation(id) : null;
  }

  function renderHeader() {
    var conv = state.conversation || summary(state.openId);
    var customer = el.app.dataset.customerName || '';
    var title = customer || (conv && conv.customer_id != null
      ? t('Customer #{n}', { n: conv.customer_id })
      : t('Conversation #{n}', { n: state.openId }));
    el.title.textContent = '';
    el.title.appendChild(make('span', 'conversation-title-text', title));
    if (conv && conv.channel) {
      el.title.appendChild(document.createTextNode(' '));
      el.title.appendChild(make('span', channelClass(conv.channel), channelLabel(conv.channel)));
    }
    var sub = [];
    if (conv && conv.subject) sub.push(conv.subject);
    sub.push(t('Conversation #{n}', { n: state.openId }));
    el.subtitle.textContent = sub.join(' · ');
    var status = state.ticket ? state.ticket.status : (conv && conv.status);
    el.status.textContent = status ? statusLabel(status) : '';
    el.status.className = 'chip' + (status ? ' status-' + String(status).replace(/[^a-z_-]/gi, '') : '');
    renderTypingNote(conv && conv.channel);
  }

  /* Whether the customer sees this agent typing: web chat (the widget) and Telegram
     ("typing…" in the chat) do; Slack and email have no typing indicator for a bot, so
     none is offered and the reply box says so. Teammates see it on every channel. */
  var CUSTOMER_SEES_TYPING = { webchat: true, telegram: true };
  var NO_TYPING = { slack: true, email: true };

  function renderTypingNote(channel) {
    if (!el.typingNote) {
      var actions = el.form && el.form.querySelector('.reply-actions');
      if (!actions) return;
      el.typingNote = make('span', 'reply-typing-note', '');
      el.typingNote.id = 'reply-typing-note';
      actions.insertBefore(el.typingNote, actions.querySelector('button') || null);
    }
    var text = '';
    if (CUSTOMER_SEES_TYPING[channel]) text = t('The customer sees when you are typing');
    else if (NO_TYPING[channel]) text = t('{channel} shows the customer no typing indicator', { channel: channelLabel(channel) });
    el.typingNote.textContent = text;
    el.typingNote.dataset.channel = channel || '';
    setHidden(el.typingNote, !text);
  }

  /* The bot's standing: answering, or handed off with why and its best guesses. */
  function renderBot(bot) {
    if (!bot || bot.enabled === false) {
      setHidden(el.bot, true);
      setHidden(el.handBack, true);
      return;
    }
    var handoff = bot.mode === 'human' ? bot.handoff : null;
    if (bot.mode === 'human') {
      el.bot.textContent = t('Bot handed off: {reason}', { reason: handoffLabel(handoff && handoff.reason) });
      var guesses = handoff && handoff.guesses ? handoff.guesses : [];
      el.bot.title = guesses.length
        ? t('Best guesses: {list}', {
          list: guesses.map(function (g) { return g.topic + ' (' + percent(g.confidence) + ')'; }).join(', ')
        })
        : (handoff && handoff.detail) || '';
    } else {
      el.bot.textContent = t('Bot answering');
      el.bot.title = '';
    }
    el.bot.dataset.mode = String(bot.mode);
    setHidden(el.bot, false);
    setHidden(el.handBack, bot.mode !== 'human');
    el.handBack.disabled = false;
  }

  function handBack() {
    var id = state.openId;
    if (id === null) return;
    el.handBack.disabled = true;
    api('POST', API + '/conversations/' + id + '/bot/hand-back', {}).then(function (data) {
      if (id === state.openId) renderBot(data.bot);
    }, function (err) {
      el.handBack.disabled = false;
      setReplyError(err.message);
    });
  }

  // ------------------------------------------------------------------ open / close

  function resetMessages() {
    state.messages.clear();
    state.olderCursor = null;
    clear(el.messages);
    setHidden(el.jump, true);
    setHidden(el.messagesError, true);
  }

  function resetDraft() {
    el.text.value = '';
    state.mentions.clear();
    state.uploads = [];
    renderUploads();
    closePickers();
    setReplyError(null);
    if (el.private.checked) {
      el.private.checked = false;
      updateComposerMode();
    }
  }

  function openConversation(id, options) {
    options = options || {};
    if (typeof id !== 'number' || !isFinite(id) || id <= 0) return;
    if (state.openId === id && !options.force) {
      showView('conversation');
      return;
    }
    var previous = state.openId;
    if (previous !== null && previous !== id) stopTyping();
    state.openId = id;
    state.openToken += 1;
    state.conversation = null;
    state.customerId = null;
    state.ticket = null;
    delete el.app.dataset.customerName;
    var token = state.openToken;
    clearTypers();
    clearViewers();
    resetMessages();
    resetDraft();
    el.view.dataset.state = 'open';
    setHidden(el.empty, true);
    setHidden(el.pane, false);
    setHidden(el.assist, true);
    renderTicket();
    showView('conversation');
    if (window.location.hash !== '#c/' + id) history.replaceState(null, '', '#c/' + id);
    renderHeader();
    SBInbox.emit('conversation-opened', { id: id });
    announceViewing(true);
    setHidden(el.messagesLoading, false);
    el.messages.setAttribute('aria-busy', 'true');
    setHidden(el.bot, true);
    setHidden(el.handBack, true);
    api('GET', API + '/conversations/' + id).then(function (data) {
      if (token !== state.openToken) return;
      state.conversation = data.conversation || null;
      state.customerId = state.conversation ? state.conversation.customer_id : null;
      renderHeader();
      renderBot(state.conversation && state.conversation.bot);
      SBInbox.emit('conversation-loaded', { id: id, customer_id: state.customerId, conversation: state.conversation });
      return Promise.all([loadHistory(token), loadTicket(token)]).then(function () {
        if (token !== state.openToken) return;
        setHidden(el.messagesLoading, true);
        el.messages.setAttribute('aria-busy', 'false');
        scrollToBottom();
        markRead(id);
        markMentionsRead(id);
        loadAssist(token);
        if (!options.keepFocus && window.matchMedia('(min-width: 761px)').matches) {
          el.text.focus({ preventScroll: true });
        }
      });
    }).catch(function (err) {
      if (token !== state.openToken) return;
      setHidden(el.messagesLoading, true);
      el.messages.setAttribute('aria-busy', 'false');
      el.messagesError.textContent = err.status === 404 || err.status === 403
        ? t('This conversation is not available.')
        : t('Could not load messages: {error}', { error: err.message });
      setHidden(el.messagesError, false);
    });
  }

  function closeConversation(options) {
    var id = state.openId;
    stopTyping();
    announceLeaving();
    state.openId = null;
    state.openToken += 1;
    state.conversation = null;
    state.customerId = null;
    state.ticket = null;
    clearTypers();
    clearViewers();
    resetMessages();
    el.view.dataset.state = 'empty';
    setHidden(el.pane, true);
    setHidden(el.empty, false);
    showView('list');
    if (window.location.hash) history.replaceState(null, '', window.location.pathname + window.location.search);
    SBInbox.emit('conversation-closed', { id: id, focus: !!(options && options.focus) });
  }

  function markRead(id) {
    if (state.readTimer) clearTimeout(state.readTimer);
    state.readTimer = setTimeout(function () {
      state.readTimer = null;
      if (state.openId !== id) return;
      api('POST', API + '/conversations/' + id + '/read', {}).catch(function () { /* next message retries */ });
    }, 150);
  }

  /* Opening a conversation reads the mentions in it (once per open, not per message). */
  function markMentionsRead(id) {
    api('POST', API + '/mentions/read', { conversation_id: id }).catch(function () { /* harmless */ });
  }

  // ------------------------------------------------------------------ history (every channel)

  /* The newest page (or, with `older`, the page before the oldest shown), merged in by id. */
  function loadHistory(token, older) {
    var id = state.openId;
    var url = API + '/conversations/' + id + '/history';
    if (older && state.olderCursor) url += '?before=' + encodeURIComponent(state.olderCursor);
    return api('GET', url).then(function (data) {
      if (token !== state.openToken) return;
      var stick = !older && isNearBottom();
      var keep = el.messages.scrollHeight - el.messages.scrollTop;
      (data.messages || []).forEach(putMessage);
      if (older || !state.messages.size || state.olderCursor === null) state.olderCursor = data.next_cursor || null;
      renderOlderButton();
      refreshDividers();
      if (older) el.messages.scrollTop = el.messages.scrollHeight - keep;
      else if (stick) scrollToBottom();
    });
  }

  function renderOlderButton() {
    var existing = el.messages.querySelector('.load-older');
    if (!state.olderCursor) {
      if (existing) existing.remove();
      return;
    }
    if (existing) return;
    var li = make('li', 'load-older');
    var button = make('button', 'btn btn-ghost btn-sm', t('Show earlier messages'));
    button.type = 'button';
    button.addEventListener('click', function () {
      button.disabled = true;
      loadHistory(state.openToken, true).then(function () { li.remove(); renderOlderButton(); },
        function () { button.disabled = false; });
    });
    li.appendChild(button);
    el.messages.insertBefore(li, el.messages.firstChild);
  }

  /* Reload the newest page soon (a bot answer's article, a message from another
     conversation of this customer): coalesced. */
  function refreshHistorySoon() {
    if (state.historyTimer) clearTimeout(state.historyTimer);
    var token = state.openToken;
    state.historyTimer = setTimeout(function () {
      state.historyTimer = null;
      if (token === state.openToken) loadHistory(token).catch(function () { /* next event retries */ });
    }, 400);
  }

  // ------------------------------------------------------------------ messages

  function messageClasses(msg) {
    var classes = ['msg'];
    var kind = msg.author_kind || (msg.direction === 'in' ? 'customer' : 'agent');
    if (kind === 'system') classes.push('msg--system');
    else classes.push(msg.direction === 'in' ? 'msg--in' : 'msg--out');
    classes.push('msg--' + String(kind).replace(/[^a-z_-]/gi, ''));
    if (msg.private) classes.push('msg--note');
    if (msg.deleted_at) classes.push('msg--deleted');
    if (msg.conversation_id !== state.openId) classes.push('msg--elsewhere');
    if (msg.direction === 'out' && !msg.private && msg.delivery_status) {
      classes.push('msg--' + String(msg.delivery_status).replace(/[^a-z_-]/gi, ''));
    }
    return classes.join(' ');
  }

  function authorLabel(msg) {
    var kind = msg.author_kind || (msg.direction === 'in' ? 'customer' : 'agent');
    var label = kind === 'agent' && msg.author_name ? String(msg.author_name) : authorKindLabel(kind);
    return msg.private ? t('Internal note · {author}', { author: label }) : label;
  }

  function attachmentUrl(att) {
    return API + '/attachments/' + encodeURIComponent(String(att.id));
  }

  function renderAttachments(list) {
    var ul = make('ul', 'attachments');
    list.forEach(function (att) {
      if (!att || att.id == null) return;
      var li = make('li', 'attachment');
      var url = attachmentUrl(att);
      var name = att.filename ? String(att.filename) : 'file';
      if (IMAGE_TYPES.test(String(att.content_type || ''))) {
        // Previewed from the download route (served as an attachment, nosniff): only
        // raster types a browser decodes as images, never SVG or HTML.
        var link = make('a', 'attachment-image-link');
        link.href = url;
        link.setAttribute('download', name);
        link.title = t('Download {name}', { name: name });
        var img = document.createElement('img');
        img.className = 'attachment-image';
        img.src = url;
        img.alt = name;
        img.loading = 'lazy';
        img.decoding = 'async';
        link.appendChild(img);
        li.appendChild(link);
      } else {
        var file = make('a', 'attachment-file');
        file.href = url;
        file.setAttribute('download', name);
        var ext = (name.match(/\.([A-Za-z0-9]{1,5})$/) || [null, 'file'])[1].toUpperCase();
        var icon = make('span', 'attachment-icon', ext.slice(0, 4));
        icon.setAttribute('aria-hidden', 'true');
        file.appendChild(icon);
        var info = make('span', 'attachment-info');
        info.appendChild(make('span', 'attachment-name', name));
        var size = formatSize(att.size);
        if (size) info.appendChild(make('span', 'attachment-size', size));
        file.appendChild(info);
        li.appendChild(file);
      }
      ul.appendChild(li);
    });
    return ul;
  }

  function botExplanation(bot) {
    var box = make('div', 'msg-bot-info');
    if (bot.kind === 'answer' && (bot.article_title || bot.article_id != null)) {
      box.appendChild(make('span', null, t('Answered from “{article}”', {
        article: bot.article_title || t('article #{n}', { n: bot.article_id })
      })));
    } else if (bot.kind === 'handoff') {
      box.appendChild(make('span', null, t('Handed off: {reason}', { reason: handoffLabel(bot.reason) })));
    } else {
      box.appendChild(make('span', null, String(bot.kind || '')));
    }
    if (bot.confidence != null) {
      box.appendChild(make('span', 'msg-confidence', t('confidence {n}', { n: percent(bot.confidence) })));
    }
    return box;
  }

  function fillMessage(li, msg) {
    li.className = messageClasses(msg);
    li.dataset.seq = String(msg.seq);
    li.dataset.messageId = String(msg.id);
    li.dataset.conversationId = String(msg.conversation_id);
    li.dataset.channel = msg.channel || '';
    li.dataset.direction = msg.direction || '';
    li.dataset.deliveryStatus = msg.delivery_status || '';
    clear(li);

    if (msg.author_kind !== 'system') {
      var head = make('span', 'msg-author', authorLabel(msg));
      li.appendChild(head);
    }

    var bubble = make('div', 'msg-bubble');
    // Email: the subject is part of what the customer wrote.
    if (msg.subject) bubble.appendChild(make('div', 'msg-subject', msg.subject));
    bubble.appendChild(make('div', 'msg-text', msg.text || ''));
    if (Array.isArray(msg.attachments) && msg.attachments.length) {
      bubble.appendChild(renderAttachments(msg.attachments));
    }
    if (msg.bot) bubble.appendChild(botExplanation(msg.bot));
    li.appendChild(bubble);

    var meta = make('div', 'msg-meta');
    if (msg.channel) {
      var badge = make('span', channelClass(msg.channel), channelLabel(msg.channel));
      meta.appendChild(badge);
    }
    if (msg.conversation_id !== state.openId) {
      var other = make('a', 'msg-elsewhere', t('Conversation #{n}', { n: msg.conversation_id }));
      other.href = '#c/' + msg.conversation_id;
      meta.appendChild(other);
    }
    var created = parseTime(msg.created_at);
    if (created) {
      var time = make('time', 'msg-time', formatTime(created));
      time.dateTime = created.toISOString();
      time.title = formatDateTime(created);
      meta.appendChild(time);
    }
    var edited = parseTime(msg.edited_at);
    if (msg.deleted_at) {
      meta.appendChild(make('span', 'msg-flag msg-flag--deleted', t('deleted by the customer')));
    } else if (edited) {
      var flag = make('span', 'msg-flag', t('edited'));
      flag.title = formatDateTime(edited);
      meta.appendChild(flag);
    }
    if (msg.automatic) meta.appendChild(make('span', 'msg-flag', t('automatic mail')));
    var status = msg.delivery_status;
    if (msg.direction === 'out' && !msg.private && status && status !== 'received') {
      var chip = make('span', 'delivery delivery--' + String(status).replace(/[^a-z_-]/gi, ''), deliveryLabel(status));
      chip.dataset.status = status;
      meta.appendChild(chip);
    }
    li.appendChild(meta);

    if (msg.direction === 'out' && !msg.private && (status === 'failed' || status === 'unconfirmed')) {
      var prefix = status === 'failed' ? t('Not delivered') : t('Delivery not confirmed');
      li.appendChild(make('p', 'msg-error', prefix + (msg.delivery_error ? ': ' + msg.delivery_error : '.')));
    }
  }

  function orderKey(msg) {
    var date = parseTime(msg.created_at);
    return [date ? date.getTime() : 0, Number(msg.id) || 0];
  }

  function before(a, b) {
    return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  }

  /* Insert or update one message of this customer's history. True when it was new. */
  function putMessage(msg) {
    if (!msg || msg.id == null) return false;
    var existing = state.messages.get(msg.id);
    if (existing) {
      // The live "sent" update can overtake the POST's own answer ("pending"): a
      // settled delivery status never goes back to pending.
      if (msg.delivery_status === 'pending' && existing.msg.delivery_status &&
          existing.msg.delivery_status !== 'pending') {
        msg = Object.assign({}, msg, {
          delivery_status: existing.msg.delivery_status,
          delivery_error: existing.msg.delivery_error
        });
      }
      var merged = Object.assign({}, existing.msg);
      Object.keys(msg).forEach(function (key) {
        if (msg[key] !== undefined && !(msg[key] === null && (key === 'bot' || key === 'channel' || key === 'author_name'))) merged[key] = msg[key];
      });
      existing.msg = merged;
      fillMessage(existing.el, existing.msg);
      return false;
    }
    if (!msg.channel) {
      var conv = msg.conversation_id === state.openId ? state.conversation : summary(msg.conversation_id);
      if (conv && conv.channel) msg = Object.assign({}, msg, { channel: conv.channel });
    }
    if (!msg.author_name && msg.author_user_id != null && state.teammatesById.has(msg.author_user_id)) {
      msg = Object.assign({}, msg, { author_name: state.teammatesById.get(msg.author_user_id).name });
    }
    var li = document.createElement('li');
    fillMessage(li, msg);
    var key = orderKey(msg);
    var after = null;
    var children = el.messages.children;
    for (var i = children.length - 1; i >= 0; i--) {
      var entry = state.messages.get(Number(children[i].dataset.messageId));
      if (entry && before(key, orderKey(entry.msg))) after = children[i];
      else break;
    }
    el.messages.insertBefore(li, after);
    state.messages.set(msg.id, { msg: msg, el: li });
    return true;
  }

  function updateMessage(msg) {
    if (!msg || msg.id == null) return;
    if (state.messages.has(msg.id)) putMessage(msg);
  }

  function refreshDividers() {
    var lastDay = null;
    var children = el.messages.children;
    for (var i = 0; i < children.length; i++) {
      var li = children[i];
      var entry = state.messages.get(Number(li.dataset.messageId));
      var date = entry ? parseTime(entry.msg.created_at) : null;
      var key = date ? formatDate(date) : lastDay;
      if (date && key !== lastDay) li.dataset.day = key;
      else delete li.dataset.day;
      lastDay = key;
    }
  }

  function isNearBottom() {
    var box = el.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToBottom() {
    el.messages.scrollTop = el.messages.scrollHeight;
    setHidden(el.jump, true);
  }

  function appendLive(msg) {
    var stick = isNearBottom() || (msg && msg.direction === 'out' && msg.author_kind === 'agent');
    var added = putMessage(msg);
    if (!added) return false;
    refreshDividers();
    if (stick) scrollToBottom();
    else setHidden(el.jump, false);
    return true;
  }

  // ------------------------------------------------------------------ ticket controls

  function loadTeammates() {
    return api('GET', API + '/teammates').then(function (data) {
      state.teammates = data.teammates || [];
      state.teammatesById = new Map(state.teammates.map(function (p) { return [p.id, p]; }));
      renderTicket();
    }, function () { /* the assignee list stays short; retried on the next open */ });
  }

  function loadTicket(token) {
    var id = state.openId;
    return api('GET', API + '/tickets?conversation_id=' + id + '&status=' + ACTIVE_STATUSES + '&limit=1').then(function (data) {
      if (token !== state.openToken) return;
      state.ticket = (data.tickets && data.tickets[0]) || null;
      renderTicket();
      renderHeader();
    }, function () {
      if (token !== state.openToken) return;
      state.ticket = null;
      renderTicket();
    });
  }

  function option(value, label, selected) {
    var node = make('option', null, label);
    node.value = String(value);
    if (selected) node.selected = true;
    return node;
  }

  function renderTicket() {
    var ticket = state.ticket;
    setHidden(el.ticketNone, !!ticket || state.openId == null);
    setHidden(el.ticketFields, !ticket);
    if (!ticket) return;
    el.ticketRef.textContent = t('Ticket #{n}', { n: ticket.id });
    if (ticket.reason) el.ticketRef.title = t('Opened because: {reason}', { reason: ticket.reason });
    clear(el.ticketStatus);
    el.ticketStatus.appendChild(option(ticket.status, statusLabel(ticket.status), true));
    (ticket.allowed_statuses || []).forEach(function (s) {
      if (s !== ticket.status) el.ticketStatus.appendChild(option(s, statusLabel(s), false));
    });
    el.ticketPriority.value = ticket.priority;
    clear(el.ticketAssignee);
    el.ticketAssignee.appendChild(option('', t('Unassigned'), ticket.assignee_id == null));
    var known = false;
    state.teammates.forEach(function (p) {
      if (p.id === ticket.assignee_id) known = true;
      el.ticketAssignee.appendChild(option(p.id, p.name, p.id === ticket.assignee_id));
    });
    if (ticket.assignee_id != null && !known) {
      el.ticketAssignee.appendChild(option(ticket.assignee_id, t('User #{n}', { n: ticket.assignee_id }), true));
    }
    el.assignMe.disabled = ticket.assignee_id === me.id;
    el.solve.disabled = (ticket.allowed_statuses || []).indexOf('solved') < 0;
    clear(el.ticketTags);
    (ticket.tags || []).forEach(function (tag) {
      var li = make('li', 'tag');
      li.appendChild(make('span', null, tag));
      var remove = make('button', 'tag-remove', '×');
      remove.type = 'button';
      remove.setAttribute('aria-label', t('Remove tag {tag}', { tag: tag }));
      remove.addEventListener('click', function () {
        changeTicket({ tags: (state.ticket.tags || []).filter(function (x) { return x !== tag; }) });
      });
      li.appendChild(remove);
      el.ticketTags.appendChild(li);
    });
  }

  function setTicketError(message) {
    el.ticketError.textContent = message || '';
    setHidden(el.ticketError, !message);
  }

  function afterTicket(data) {
    if (data && data.ticket && state.ticket && data.ticket.id === state.ticket.id) {
      state.ticket = data.ticket;
    } else if (data && data.ticket && (data.ticket.conversation_ids || []).indexOf(state.openId) >= 0) {
      state.ticket = data.ticket;
    }
    setTicketError(null);
    renderTicket();
    renderHeader();
    return data;
  }

  function changeTicket(changes) {
    if (!state.ticket) return Promise.resolve(null);
    return api('PATCH', API + '/tickets/' + state.ticket.id, changes).then(afterTicket, function (err) {
      setTicketError(err.message);
      renderTicket(); // the controls go back to what the ticket really is
    });
  }

  function assignToMe() {
    if (!state.ticket || state.ticket.assignee_id === me.id) return;
    var ticketId = state.ticket.id;
    var request = state.ticket.assignee_id == null
      ? api('POST', API + '/tickets/' + ticketId + '/claim', {})
      : api('PATCH', API + '/tickets/' + ticketId, { assignee_id: me.id });
    request.then(afterTicket, function (err) {
      // 409: someone claimed it first; the message names them. Show who has it now.
      setTicketError(err.status === 409 ? t('Already taken: {error}', { error: err.message }) : err.message);
      loadTicket(state.openToken);
    });
  }

  function solve() {
    if (!state.ticket || el.solve.disabled) return;
    changeTicket({ status: 'solved' }).then(function (data) {
      if (data) notify(t('Ticket #{n} solved.', { n: data.ticket.id }));
    });
  }

  function createTicket() {
    if (state.openId == null) return;
    api('POST', API + '/tickets', { conversation_id: state.openId }).then(function (data) {
      state.ticket = data.ticket;
      renderTicket();
      renderHeader();
    }, function (err) { setTicketError(err.message); });
  }

  function openMerge() {
    if (!state.ticket || state.customerId == null) return;
    setHidden(el.mergeError, true);
    clear(el.mergeTarget);
    el.mergeConfirm.disabled = true;
    api('GET', API + '/tickets?customer_id=' + state.customerId + '&status=' + ACTIVE_STATUSES + '&limit=50').then(function (data) {
      var others = (data.tickets || []).filter(function (x) { return x.id !== state.ticket.id; });
      if (!others.length) {
        el.mergeTarget.appendChild(option('', t('This customer has no other open ticket'), true));
      }
      others.forEach(function (x) {
        el.mergeTarget.appendChild(option(x.id, '#' + x.id + ' · ' + (x.subject || statusLabel(x.status)), false));
      });
      el.mergeConfirm.disabled = !others.length;
    }, function (err) {
      el.mergeError.textContent = err.message;
      setHidden(el.mergeError, false);
    });
    el.mergeDialog.showModal();
  }

  function confirmMerge() {
    var target = Number(el.mergeTarget.value);
    if (!state.ticket || !target) return;
    var merged = state.ticket.id;
    el.mergeConfirm.disabled = true;
    api('POST', API + '/tickets/' + target + '/merge', { other_id: merged }).then(function (data) {
      el.mergeDialog.close();
      state.ticket = data.ticket;
      renderTicket();
      renderHeader();
      notify(t('Ticket #{a} merged into #{b}.', { a: merged, b: data.ticket.id }));
    }, function (err) {
      el.mergeConfirm.disabled = false;
      el.mergeError.textContent = err.message;
      setHidden(el.mergeError, false);
    });
  }

  function onTicketEvent(data) {
    var ticket = data && data.ticket;
    if (!ticket || state.openId == null) return;
    var mine = state.ticket && ticket.id === state.ticket.id;
    var covers = (ticket.conversation_ids || []).indexOf(state.openId) >= 0;
    if (!mine && !covers) return;
    var active = ACTIVE_STATUSES.split(',').indexOf(ticket.status) >= 0;
    if (mine || active) state.ticket = ticket;
    renderTicket();
    renderHeader();
  }

  // ------------------------------------------------------------------ agent assist

  function loadAssist(token) {
    var id = state.openId;
    api('GET', API + '/conversations/' + id + '/assist').then(function (data) {
      if (token !== state.openToken) return;
      var list = data.suggestions || [];
      clear(el.assistList);
      list.forEach(function (s) {
        var li = make('li', 'assist-item');
        var text = make('div', 'assist-text');
        text.appendChild(make('strong', 'assist-question', s.question));
        text.appendChild(make('p', 'assist-answer', s.answer));
        li.appendChild(text);
        var insert = make('button', 'btn btn-sm', t('Insert'));
        insert.type = 'button';
        insert.setAttribute('aria-label', t('Insert the answer to “{q}”', { q: s.question }));
        insert.addEventListener('click', function () {
          insertText(s.answer);
          el.text.focus();
        });
        li.appendChild(insert);
        el.assistList.appendChild(li);
      });
      setHidden(el.assist, !list.length);
    }, function () { setHidden(el.assist, true); });
  }

  // ------------------------------------------------------------------ composer

  function setReplyError(message) {
    el.replyError.textContent = message || '';
    setHidden(el.replyError, !message);
  }

  function autoGrow() {
    var box = el.text;
    box.style.height = 'auto';
    box.style.height = Math.min(box.scrollHeight, 240) + 'px';
  }

  /* Put text at the cursor (replacing a "/shortcut" being typed, if any). */
  function insertText(text, replaceFrom) {
    var box = el.text;
    var start = replaceFrom != null ? replaceFrom : box.selectionStart;
    var end = box.selectionEnd;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    var caret = start + text.length;
    box.setSelectionRange(caret, caret);
    autoGrow();
  }

  function updateComposerMode() {
    var note = el.private.checked;
    el.form.classList.toggle('is-note', note);
    el.send.textContent = note ? t('Add note') : t('Send');
    el.text.placeholder = note
      ? t('Write an internal note — only your team sees it (@ to mention)')
      : t('Write a reply… (Enter to send, Shift+Enter for a new line)');
    if (note) stopTyping();
    else hideMentionPicker();
  }

  function toggleNote() {
    el.private.checked = !el.private.checked;
    updateComposerMode();
    el.text.focus();
  }

  function sendReply() {
    if (state.sending || state.openId == null) return;
    if (state.uploading) {
      setReplyError(t('Wait for the attachments to finish uploading.'));
      return;
    }
    var text = el.text.value;
    if (!text.trim() && !state.uploads.length) {
      setReplyError(t('Write a message first.'));
      el.text.focus();
      return;
    }
    var id = state.openId;
    var isNote = el.private.checked;
    var attachments = state.uploads.map(function (u) { return u.id; });
    var body = { text: text, attachments: attachments };
    var url = API + '/conversations/' + id + '/messages';
    if (isNote) {
      url = API + '/conversations/' + id + '/notes';
      body.mentions = [];
      state.mentions.forEach(function (name, userId) {
        if (text.indexOf('@' + name) >= 0) body.mentions.push(userId);
      });
    } else {
      body.private = false;
    }
    state.sending = true;
    el.send.disabled = true;
    el.send.setAttribute('aria-busy', 'true');
    setReplyError(null);
    stopTyping();
    closePickers();
    api('POST', url, body).then(
      function (data) {
        // Only clear what was sent: the agent may have kept typing meanwhile.
        if (el.text.value === text) el.text.value = '';
        state.mentions.clear();
        state.uploads = [];
        renderUploads();
        autoGrow();
        if (data && data.message && state.openId === id) appendLive(Object.assign({ author_name: me.name }, data.message));
      },
      function (err) {
        setReplyError(err.message || t('The message could not be sent.'));
      }
    ).then(function () {
      state.sending = false;
      el.send.disabled = false;
      el.send.removeAttribute('aria-busy');
      if (state.openId === id) el.text.focus({ preventScroll: true });
    });
  }

  // Attachments: uploaded at once, sent with the reply or note by id.
  function renderUploads() {
    clear(el.uploads);
    state.uploads.forEach(function (u, index) {
      var li = make('li', 'chip upload-chip');
      li.appendChild(make('span', null, u.filename));
      var remove = make('button', 'tag-remove', '×');
      remove.type = 'button';
      remove.setAttribute('aria-label', t('Remove {name}', { name: u.filename }));
      remove.addEventListener('click', function () {
        state.uploads.splice(index, 1);
        renderUploads();
      });
      li.appendChild(remove);
      el.uploads.appendChild(li);
    });
    if (state.uploading) el.uploads.appendChild(make('li', 'upload-progress', t('Uploading…')));
  }

  function addFiles(files) {
    var conv = state.conversation;
    if (!conv) return;
    var id = state.openId;
    Array.prototype.forEach.call(files, function (file) {
      state.uploading += 1;
      renderUploads();
      upload(conv.inbox_id, file).then(function (data) {
        if (state.openId === id) state.uploads.push({ id: data.attachment_id, filename: data.filename });
      }, function (err) {
        setReplyError(t('Could not attach {name}: {error}', { name: file.name, error: err.message }));
      }).then(function () {
        state.uploading -= 1;
        renderUploads();
      });
    });
    el.file.value = '';
  }

  // Canned replies: a picker opened by "/" at the start of the box, the button or "c".
  function loadCanned() {
    return api('GET', API + '/canned-replies').then(function (data) {
      state.canned = data.canned_replies || [];
      return state.canned;
    });
  }

  function cannedMatches(query) {
    var q = String(query || '').toLowerCase();
    return (state.canned || []).filter(function (c) {
      return !q || c.shortcut.indexOf(q) >= 0 || c.title.toLowerCase().indexOf(q) >= 0;
    }).slice(0, 20);
  }

  function renderCanned(query) {
    var list = cannedMatches(query);
    clear(el.cannedList);
    if (state.cannedIndex >= list.length) state.cannedIndex = Math.max(0, list.length - 1);
    list.forEach(function (c, index) {
      var li = make('li', 'picker-item');
      li.id = 'canned-option-' + c.id;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', index === state.cannedIndex ? 'true' : 'false');
      li.appendChild(make('span', 'picker-key', '/' + c.shortcut));
      li.appendChild(make('span', 'picker-title', c.title));
      li.appendChild(make('span', 'picker-preview', c.body));
      li.addEventListener('mousedown', function (event) { event.preventDefault(); });
      li.addEventListener('click', function () { pickCanned(c); });
      el.cannedList.appendChild(li);
    });
    if (!list.length) {
      var empty = make('li', 'picker-empty', state.canned && state.canned.length
        ? t('No canned reply matches.') : t('No canned replies yet. Admins add them in the admin console.'));
      empty.setAttribute('role', 'option');
      empty.setAttribute('aria-disabled', 'true');
      el.cannedList.appendChild(empty);
    }
    syncCombobox();
    return list;
  }

  function slashQuery() {
    var match = /^\/([a-z0-9_-]*)$/i.exec(el.text.value.slice(0, el.text.selectionStart));
    return match && el.text.value.indexOf('\n') < 0 ? match[1] : null;
  }

  function openCanned(fromButton) {
    state.cannedIndex = 0;
    var show = function () {
      setHidden(el.canned, false);
      el.cannedButton.setAttribute('aria-expanded', 'true');
      if (fromButton) {
        el.cannedSearch.value = '';
        setHidden(el.cannedSearch, false);
        renderCanned('');
        el.cannedSearch.focus();
      } else {
        setHidden(el.cannedSearch, true);
        renderCanned(slashQuery());
      }
      syncCombobox();
    };
    if (state.canned) {
      show();
      // Admins may have changed them since: refresh what is shown.
      loadCanned().then(function () {
        if (cannedOpen()) renderCanned(el.cannedSearch.hidden ? slashQuery() : el.cannedSearch.value);
      }, function () { /* the cached list stays */ });
    } else {
      loadCanned().then(show, function (err) { setReplyError(err.message); });
    }
  }

  function closeCanned() {
    setHidden(el.canned, true);
    el.cannedButton.setAttribute('aria-expanded', 'false');
    syncCombobox();
  }

  function cannedOpen() {
    return !el.canned.hidden;
  }

  function pickCanned(c) {
    var id = state.openId;
    var fromSlash = el.cannedSearch.hidden && slashQuery() !== null;
    closeCanned();
    api('GET', API + '/canned-replies/' + c.id + '/render?conversation_id=' + id).then(function (data) {
      if (state.openId !== id) return;
      if (fromSlash) {
        var caret = el.text.selectionStart;
        el.text.setSelectionRange(0, caret);
        insertText(data.text, 0);
      } else {
        insertText(data.text);
      }
      el.text.focus();
    }, function (err) { setReplyError(err.message); });
  }

  // @mentions in internal notes: suggestions from the teammates list.
  function mentionQuery() {
    if (!el.private.checked) return null;
    var before = el.text.value.slice(0, el.text.selectionStart);
    var match = /(^|\s)@([^\s@]{0,30})$/.exec(before);
    return match ? { query: match[2], start: before.length - match[2].length - 1 } : null;
  }

  function mentionMatches(query) {
    var q = query.toLowerCase();
    return state.teammates.filter(function (p) {
      if (p.id === me.id) return false;
      var name = String(p.name).toLowerCase();
      return !q || name.indexOf(q) === 0 || name.indexOf(' ' + q) >= 0;
    }).slice(0, 8);
  }

  function renderMentionPicker() {
    var found = mentionQuery();
    if (!found) {
      hideMentionPicker();
      return [];
    }
    var list = mentionMatches(found.query);
    clear(el.mentionPicker);
    if (!list.length) {
      hideMentionPicker();
      return [];
    }
    if (state.mentionIndex >= list.length) state.mentionIndex = 0;
    list.forEach(function (p, index) {
      var li = make('li', 'picker-item');
      li.id = 'mention-option-' + p.id;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', index === state.mentionIndex ? 'true' : 'false');
      li.appendChild(make('span', 'picker-title', p.name));
      li.appendChild(make('span', 'picker-preview', p.role));
      li.addEventListener('mousedown', function (event) { event.preventDefault(); });
      li.addEventListener('click', function () { pickMention(p); });
      el.mentionPicker.appendChild(li);
    });
    setHidden(el.mentionPicker, false);
    syncCombobox();
    return list;
  }

  function hideMentionPicker() {
    setHidden(el.mentionPicker, true);
    state.mentionIndex = 0;
    syncCombobox();
  }

  /* The pickers follow the WAI-ARIA combobox pattern: the focused field is the combobox
     (aria-expanded, aria-controls naming the listbox, aria-activedescendant the
     highlighted option; ↑/↓ move, Enter or Tab picks, Escape closes). The canned search
     field always is one. The reply box becomes one only while "/" or "@" shows a picker
     and is a plain multi-line text box again once it closes. */
  function syncCombobox() {
    var open = cannedOpen() ? 'canned' : (!el.mentionPicker.hidden ? 'mention' : null);
    var list = open === 'canned' ? el.cannedList : (open === 'mention' ? el.mentionPicker : null);
    var active = list ? list.querySelector('[role="option"][aria-selected="true"]') : null;
    var searchOwns = open === 'canned' && !el.cannedSearch.hidden;
    var textOwns = open === 'mention' || (open === 'canned' && el.cannedSearch.hidden);
    el.cannedSearch.setAttribute('aria-expanded', searchOwns ? 'true' : 'false');
    if (searchOwns && active) el.cannedSearch.setAttribute('aria-activedescendant', active.id);
    else el.cannedSearch.removeAttribute('aria-activedescendant');
    if (textOwns) {
      el.text.setAttribute('role', 'combobox');
      el.text.setAttribute('aria-expanded', 'true');
      el.text.setAttribute('aria-controls', list.id);
      if (active) el.text.setAttribute('aria-activedescendant', active.id);
      else el.text.removeAttribute('aria-activedescendant');
    } else {
      el.text.removeAttribute('role');
      el.text.removeAttribute('aria-expanded');
      el.text.removeAttribute('aria-controls');
      el.text.removeAttribute('aria-activedescendant');
    }
    if (active && active.scrollIntoView) active.scrollIntoView({ block: 'nearest' });
  }

  function pickMention(person) {
    var found = mentionQuery();
    if (!found) return;
    el.text.setSelectionRange(found.start, el.text.selectionStart);
    insertText('@' + person.name + ' ', found.start);
    state.mentions.set(person.id, person.name);
    hideMentionPicker();
    el.text.focus();
  }

  function closePickers() {
    closeCanned();
    hideMentionPicker();
  }

  /* Arrow keys, Enter/Tab and Escape inside an open picker. True when handled. */
  function pickerKey(event) {
    var open = cannedOpen() ? 'canned' : (!el.mentionPicker.hidden ? 'mention' : null);
    if (!open || event.isComposing || event.keyCode === 229) return false; // an IME's keys are its own
    var list = open === 'canned'
      ? cannedMatches(el.cannedSearch.hidden ? slashQuery() : el.cannedSearch.value)
      : mentionMatches((mentionQuery() || { query: '' }).query);
    var indexKey = open === 'canned' ? 'cannedIndex' : 'mentionIndex';
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      var step = event.key === 'ArrowDown' ? 1 : -1;
      state[indexKey] = list.length ? (state[indexKey] + step + list.length) % list.length : 0;
      if (open === 'canned') renderCanned(el.cannedSearch.hidden ? slashQuery() : el.cannedSearch.value);
      else renderMentionPicker();
      return true;
    }
    if ((event.key === 'Enter' || event.key === 'Tab') && list.length) {
      event.preventDefault();
      if (open === 'canned') pickCanned(list[state[indexKey]]);
      else pickMention(list[state[indexKey]]);
      return true;
    }
    if (event.key === 'Escape') {
      event.preventDefault();
      closePickers();
      el.text.focus();
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------------ typing (outgoing)

  function sendFrame(frame) {
    return live ? live.send(frame) : false;
  }

  /* The customer sees "… is typing" where the channel can show it (web chat, Telegram); teammates
     viewing the conversation see it too. Internal notes are never announced. */
  function noteTyping() {
    if (state.openId == null || el.private.checked || !el.text.value) return;
    var now = Date.now();
    if (state.typingActive && state.typingConversation === state.openId && now - state.typingSentAt < TYPING_THROTTLE) return;
    if (sendFrame({ type: 'typing', conversation_id: state.openId, typing: true })) {
      state.typingSentAt = now;
      state.typingActive = true;
      state.typingConversation = state.openId;
    }
  }

  function stopTyping() {
    if (!state.typingActive) return;
    sendFrame({ type: 'typing', conversation_id: state.typingConversation, typing: false });
    state.typingActive = false;
    state.typingSentAt = 0;
    state.typingConversation = null;
  }

  // ------------------------------------------------------------------ typing (incoming) and presence

  function clearTypers() {
    state.typers.forEach(function (entry) { clearTimeout(entry.timer); });
    state.typers.clear();
    renderTypers();
    renderPresence();
  }

  function renderTypers() {
    var customer = state.typers.get('customer');
    el.typing.textContent = customer ? t('The customer is typing…') : '';
    setHidden(el.typing, !customer);
  }

  function onTyping(data) {
    if (!data || data.conversation_id !== state.openId) return;
    var key;
    var label;
    if (data.side === 'customer') {
      key = 'customer';
      label = t('Customer');
    } else {
      var name = data.name ? String(data.name) : '';
      if (!name || name === me.name) return; // our own echo
      key = 'agent:' + name;
      label = name;
    }
    var entry = state.typers.get(key);
    if (entry) clearTimeout(entry.timer);
    if (!data.typing) {
      state.typers.delete(key);
    } else {
      state.typers.set(key, {
        label: label,
        timer: setTimeout(function () {
          state.typers.delete(key);
          renderTypers();
          renderPresence();
        }, TYPING_HIDE_AFTER)
      });
    }
    renderTypers();
    renderPresence();
  }

  // Collision detection (web/collision.py): who else has this conversation open.
  function announceViewing(hello) {
    if (state.openId == null) return;
    sendFrame({ type: 'viewing', conversation_id: state.openId, hello: !!hello });
  }

  function announceLeaving() {
    sendFrame({ type: 'viewing', conversation_id: null });
  }

  function clearViewers() {
    state.viewers.clear();
    renderPresence();
  }

  function renderPresence() {
    var parts = [];
    var typingNames = new Set();
    state.typers.forEach(function (entry, key) {
      if (key !== 'customer') {
        typingNames.add(entry.label);
        parts.push(t('{name} is typing…', { name: entry.label }));
      }
    });
    var now = Date.now();
    state.viewers.forEach(function (viewer, id) {
      if (viewer.expires < now) state.viewers.delete(id);
      else if (!typingNames.has(viewer.name)) parts.push(t('{name} is viewing', { name: viewer.name }));
    });
    el.presence.textContent = parts.join(' · ');
    setHidden(el.presence, !parts.length);
  }

  function onPresence(data) {
    if (!data || data.user_id === me.id) return;
    if (data.conversation_id !== state.openId) {
      // They moved to another conversation (their "left" may still be on its way).
      if (data.state === 'viewing' && state.viewers.delete(data.user_id)) renderPresence();
      return;
    }
    if (data.state === 'left') {
      state.viewers.delete(data.user_id);
    } else {
      state.viewers.set(data.user_id, { name: String(data.name || ''), expires: Date.now() + PRESENCE_EXPIRES });
      // A newcomer asks who is here: answer (at most every two seconds).
      if (data.hello && Date.now() - state.lastHelloAnswer > 2000) {
        state.lastHelloAnswer = Date.now();
        announceViewing(false);
      }
    }
    renderPresence();
  }

  function onMention(data) {
    if (!data) return;
    var excerpt = String(data.excerpt || '');
    if (excerpt.length > 140) excerpt = excerpt.slice(0, 139) + '…';
    notify(t('{name} mentioned you: {text}', { name: data.author_name, text: excerpt }), {
      label: t('Open conversation #{n}', { n: data.conversation_id }),
      href: '#c/' + data.conversation_id
    });
  }

  // ------------------------------------------------------------------ live socket

  function setConnection(kind) {
    var pill = el.connection;
    if (!pill) return;
    pill.classList.remove('is-live', 'is-reconnecting', 'is-connecting');
    if (kind === 'live') {
      pill.classList.add('is-live');
      pill.textContent = t('Live');
    } else if (kind === 'reconnecting') {
      pill.classList.add('is-reconnecting');
      pill.textContent = t('Reconnecting…');
    } else {
      pill.classList.add('is-connecting');
      pill.textContent = t('Connecting…');
    }
    pill.dataset.state = kind;
  }

  function createLiveSocket() {
    return window.SwitchboardLiveSocket({
      url: function () {
        return (window.location.protocol === 'https:' ? 'wss' : 'ws') + '://' + window.location.host + '/inbox/ws';
      },
      onOpen: function () {
        setConnection('live');
        announceViewing(true);
        // Whatever happened while we were away (or before the first connect): catch up.
        resync();
      },
      onFrame: handleFrame,
      onClose: function () {
        state.typingActive = false;
        setConnection('reconnecting');
      }
    });
  }

  function reconnectNow() {
    if (live) live.reconnectNow();
  }

  function resync() {
    SBInbox.emit('live-open');
    if (state.openId != null && state.conversation) {
      var id = state.openId;
      var token = state.openToken;
      loadHistory(token).then(function () {
        if (token === state.openToken) markRead(id);
      }, function () { /* shown on the next successful load */ });
      loadTicket(token);
    }
  }

  function handleFrame(frame) {
    if (!frame || typeof frame !== 'object') return;
    SBInbox.emit('frame', frame); // the list's share of the frame
    var data = frame.data || {};
    switch (frame.type) {
      case 'message.created':
        onMessageCreated(data);
        break;
      case 'message.updated':
        updateMessage(data.message);
        break;
      case 'conversation.typing':
        onTyping(data);
        break;
      case 'conversation.presence':
        onPresence(data);
        break;
      case 'mention.created':
        onMention(data);
        break;
      case 'bot.state_changed':
        if (data.conversation_id === state.openId) renderBot(data.bot);
        break;
      case 'ticket.created':
      case 'ticket.updated':
      case 'ticket.merged':
        onTicketEvent(data);
        break;
      case 'resync':
        resync();
        break;
      default:
        break; // pong, error and anything newer: nothing to do
    }
  }

  function onMessageCreated(data) {
    var msg = data.message || null;
    var convId = data.conversation_id != null ? data.conversation_id : (msg && msg.conversation_id);
    if (convId == null || !msg || state.openId == null) return;
    var conv = data.conversation || {};
    var sameCustomer = convId === state.openId ||
      (state.customerId != null && conv.customer_id === state.customerId);
    if (!sameCustomer) return;
    if (convId === state.openId && (msg.author_kind === 'customer' || msg.direction === 'in')) {
      // Whoever typed that message is no longer typing it.
      var entry = state.typers.get('customer');
      if (entry) {
        clearTimeout(entry.timer);
        state.typers.delete('customer');
        renderTypers();
      }
    }
    appendLive(Object.assign({ channel: conv.channel }, msg));
    if (msg.author_kind === 'bot') refreshHistorySoon(); // its article and confidence
    if (convId === state.openId && msg.direction === 'in') {
      markRead(convId);
      loadAssist(state.openToken);
    }
  }

  // ------------------------------------------------------------------ keyboard shortcuts

  function adjacentConversation(step) {
    if (SBInbox.openAdjacent) {
      SBInbox.openAdjacent(step);
      return;
    }
    var items = Array.prototype.slice.call(document.querySelectorAll('#conversation-list [data-conversation-id]'));
    var ids = items.map(function (node) { return Number(node.dataset.conversationId); });
    var index = ids.indexOf(state.openId);
    var next = ids[index < 0 ? 0 : index + step];
    if (next != null) {
      history.pushState(null, '', '#c/' + next);
      openConversation(next);
    }
  }

  function showShortcuts() {
    if (!el.shortcuts.open) el.shortcuts.showModal();
  }

  function onKeydown(event) {
    if (event.defaultPrevented) return;
    if (event.target === el.text && (event.ctrlKey || event.metaKey) && event.key === 'Enter') {
      event.preventDefault();
      sendReply();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (document.querySelector('dialog[open]')) return;
    if (event.key === '?') {
      event.preventDefault();
      showShortcuts();
      return;
    }
    if (state.openId == null) return;
    switch (event.key) {
      case 'r':
        event.preventDefault();
        if (el.private.checked) toggleNote();
        el.text.focus();
        break;
      case 'n':
        event.preventDefault();
        toggleNote();
        break;
      case 'j':
        event.preventDefault();
        adjacentConversation(1);
        break;
      case 'k':
        event.preventDefault();
        adjacentConversation(-1);
        break;
      case 'a':
        event.preventDefault();
        assignToMe();
        break;
      case 's':
        event.preventDefault();
        solve();
        break;
      case 'c':
        event.preventDefault();
        openCanned(true);
        break;
      case 'p':
        event.preventDefault();
        SBInbox.emit('toggle-profile');
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ routing (URL hash)

  function idFromHash() {
    var match = /^#c\/(\d{1,12})$/.exec(window.location.hash);
    return match ? Number(match[1]) : null;
  }

  function onHashChange() {
    var id = idFromHash();
    if (id != null) openConversation(id);
    else if (!window.location.hash && state.openId != null) closeConversation();
  }

  // ------------------------------------------------------------------ wiring

  function bind() {
    el.form.addEventListener('submit', function (event) {
      event.preventDefault();
      sendReply();
    });

    el.text.addEventListener('keydown', function (event) {
      if (pickerKey(event)) return;
      if (event.key === 'Enter' && !event.shiftKey && !event.ctrlKey && !event.metaKey &&
          !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        sendReply();
      }
    });

    el.text.addEventListener('input', function () {
      autoGrow();
      if (!el.replyError.hidden && el.text.value.trim()) setReplyError(null);
      if (slashQuery() !== null) {
        if (!cannedOpen()) openCanned(false);
        else renderCanned(slashQuery());
      } else if (cannedOpen() && el.cannedSearch.hidden) {
        closeCanned();
      }
      renderMentionPicker();
      if (el.text.value) noteTyping();
      else stopTyping();
    });

    el.text.addEventListener('blur', function () {
      stopTyping();
      setTimeout(function () {
        if (document.activeElement !== el.text && document.activeElement !== el.cannedSearch) closePickers();
      }, 150);
    });
    el.cannedSearch.addEventListener('input', function () {
      state.cannedIndex = 0;
      renderCanned(el.cannedSearch.value);
    });
    el.cannedSearch.addEventListener('keydown', pickerKey);
    el.cannedButton.addEventListener('click', function () {
      if (cannedOpen()) closeCanned();
      else openCanned(true);
    });
    el.file.addEventListener('change', function () { addFiles(el.file.files); });
    el.private.addEventListener('change', updateComposerMode);
    el.handBack.addEventListener('click', handBack);

    el.ticketStatus.addEventListener('change', function () { changeTicket({ status: el.ticketStatus.value }); });
    el.ticketPriority.addEventListener('change', function () { changeTicket({ priority: el.ticketPriority.value }); });
    el.ticketAssignee.addEventListener('change', function () {
      var value = el.ticketAssignee.value;
      if (value === String(me.id) && state.ticket && state.ticket.assignee_id == null) assignToMe();
      else changeTicket({ assignee_id: value ? Number(value) : null });
    });
    el.assignMe.addEventListener('click', assignToMe);
    el.solve.addEventListener('click', solve);
    el.ticketCreate.addEventListener('click', createTicket);
    el.tagInput.addEventListener('keydown', function (event) {
      if (event.key !== 'Enter') return;
      event.preventDefault();
      var tag = el.tagInput.value.trim();
      if (!tag || !state.ticket) return;
      var tags = (state.ticket.tags || []).slice();
      if (tags.indexOf(tag) < 0) tags.push(tag);
      changeTicket({ tags: tags }).then(function () { el.tagInput.value = ''; });
    });
    el.merge.addEventListener('click', openMerge);
    el.mergeConfirm.addEventListener('click', confirmMerge);
    el.mergeCancel.addEventListener('click', function () { el.mergeDialog.close(); });
    el.shortcutsButton.addEventListener('click', showShortcuts);

    el.back.addEventListener('click', function () {
      closeConversation({ focus: true });
    });

    el.jump.addEventListener('click', function () {
      scrollToBottom();
      el.text.focus({ preventScroll: true });
    });

    el.messages.addEventListener('scroll', function () {
      if (!el.jump.hidden && isNearBottom()) setHidden(el.jump, true);
    });

    document.addEventListener('keydown', onKeydown);
    window.addEventListener('hashchange', onHashChange);
    window.addEventListener('popstate', onHashChange);
    window.addEventListener('online', reconnectNow);
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') {
        reconnectNow();
        if (state.openId != null) markRead(state.openId);
      }
    });
    window.addEventListener('beforeunload', function () {
      stopTyping();
      announceLeaving();
    });
    setInterval(function () {
      announceViewing(false); // heartbeat: others forget a page whose heartbeats stop
      renderPresence();
    }, PRESENCE_HEARTBEAT);
  }

  function init() {
    el.app = $('app') || document.body;
    me.name = el.app.dataset.userName || '';
    me.id = Number(el.app.dataset.userId) || null;
    [
      ['view', 'conversation-view'], ['empty', 'empty-state'], ['pane', 'conversation-pane'],
      ['title', 'conversation-title'], ['subtitle', 'conversation-subtitle'],
      ['status', 'conversation-status'], ['bot', 'conversation-bot'], ['handBack', 'hand-back'],
      ['messages', 'messages'], ['messagesLoading', 'messages-loading'],
      ['messagesError', 'messages-error'], ['jump', 'jump-latest'], ['typing', 'typing-indicator'],
      ['presence', 'presence'], ['form', 'reply-form'], ['text', 'reply-text'],
      ['private', 'reply-private'], ['send', 'reply-send'], ['replyError', 'reply-error'],
      ['back', 'back-to-list'], ['connection', 'connection-status'], ['file', 'reply-file'],
      ['uploads', 'reply-attachments'], ['canned', 'canned-picker'], ['cannedList', 'canned-list'],
      ['cannedSearch', 'canned-search'], ['cannedButton', 'canned-button'],
      ['mentionPicker', 'mention-picker'], ['assist', 'assist'], ['assistList', 'assist-list'],
      ['ticketNone', 'ticket-none'], ['ticketFields', 'ticket-fields'], ['ticketRef', 'ticket-ref'],
      ['ticketStatus', 'ticket-status'], ['ticketPriority', 'ticket-priority'],
      ['ticketAssignee', 'ticket-assignee'], ['assignMe', 'ticket-assign-me'],
      ['ticketTags', 'ticket-tags'], ['tagInput', 'ticket-tag-input'], ['merge', 'ticket-merge'],
      ['solve', 'ticket-solve'], ['ticketCreate', 'ticket-create'], ['ticketError', 'ticket-error'],
      ['mergeDialog', 'merge-dialog'], ['mergeTarget', 'merge-target'],
      ['mergeConfirm', 'merge-confirm'], ['mergeCancel', 'merge-cancel'], ['mergeError', 'merge-error'],
      ['shortcuts', 'shortcuts-dialog'], ['shortcutsButton', 'shortcuts-button'],
      ['notifications', 'notifications']
    ].forEach(function (pair) { el[pair[0]] = $(pair[1]); });
    if (!el.messages || !el.form) return;
    if (el.cannedSearch) {
      el.cannedSearch.setAttribute('role', 'combobox');
      el.cannedSearch.setAttribute('aria-controls', 'canned-list');
      el.cannedSearch.setAttribute('aria-autocomplete', 'list');
      el.cannedSearch.setAttribute('aria-expanded', 'false');
    }
    SBInbox.openConversation = function (id, options) {
      openConversation(id, options);
    };
    SBInbox.getOpenConversation = function () {
      return state.conversation;
    };

    SBInbox.on('customer-loaded', function (data) {
      if (!data || !data.customer || data.customer.id !== state.customerId) return;
      if (data.customer.name) el.app.dataset.customerName = data.customer.name;
      else delete el.app.dataset.customerName;
      renderHeader();
    });

    live = createLiveSocket();
    bind();
    setConnection('connecting');
    loadTeammates();
    // Mentions that arrived while this agent was away (read once the conversation is opened).
    api('GET', API + '/mentions?unread=1&limit=3').then(function (data) {
      (data.mentions || []).slice().reverse().forEach(function (m) {
        onMention({ author_name: m.author_name || t('Someone'), excerpt: m.message.text, conversation_id: m.conversation_id });
      });
    }, function () { /* live ones still arrive */ });
    var initial = idFromHash();
    if (initial != null) openConversation(initial, { keepFocus: true });
    live.start();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
