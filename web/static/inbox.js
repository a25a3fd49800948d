/* Switchboard agent inbox.
 *
 * Plain browser JavaScript, no dependencies. Served under `script-src 'self'`.
 * Every piece of user data (message text, names, file names, subjects) reaches the DOM
 * through textContent or attribute setters, never through innerHTML.
 */
(function () {
  'use strict';

  var API = '/api/v1';
  // The list (inbox-list.js, loaded first) and this pane talk through this tiny event API.
  var SBInbox = window.SBInbox = window.SBInbox || { on: function () {}, emit: function () {} };
  var TYPING_THROTTLE = 2000;
  var TYPING_HIDE_AFTER = 5000;
  var PAGE_HINT = 50; // a message page shorter than this is taken as the last one
  var MAX_PAGES = 100;

  var CHANNEL_LABELS = {
    webchat: 'Web chat',
    email: 'Email',
    telegram: 'Telegram',
    slack: 'Slack',
    api: 'API'
  };
  var AUTHOR_LABELS = {
    customer: 'Customer',
    bot: 'Bot',
    agent: 'Agent',
    system: 'System'
  };
  var DELIVERY_LABELS = {
    pending: 'Sending…',
    sent: 'Sent',
    failed: 'Failed',
    unconfirmed: 'Unconfirmed',
    not_sent: 'Not sent'
  };

  // ------------------------------------------------------------------ state

  var state = {
    openId: null,
    openToken: 0, // bumps on every open, so late responses for another one are dropped
    messagesBySeq: new Map(), // seq -> {msg, el}
    seqById: new Map(), // message id -> seq
    lastSeq: 0,
    typingSentAt: 0,
    typingActive: false,
    typingConversation: null,
    typers: new Map(), // key -> {label, timer}
    sending: false,
    readTimer: null
  };

  var el = {};
  var live = null; // SwitchboardLiveSocket on /inbox/ws, made in init()
  var csrfToken = '';
  var ownName = '';

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

  function parseTime(value) {
    if (!value) return null;
    var text = String(value);
    // A timestamp without a zone is UTC on our server; without this, Date would read it as local.
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
    var date = new Date(text);
    return isNaN(date.getTime()) ? null : date;
  }

  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  var fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  var dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
  var dayYearFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', day: 'numeric' });

  function startOfDay(date) {
    return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
  }

  function dayLabel(date) {
    var today = startOfDay(new Date());
    var day = startOfDay(date);
    if (day === today) return 'Today';
    if (day === today - 86400000) return 'Yesterday';
    if (date.getFullYear() === new Date().getFullYear()) return dayFormat.format(date);
    return dayYearFormat.format(date);
  }

  function formatSize(bytes) {
    if (typeof bytes !== 'number' || !isFinite(bytes) || bytes < 0) return '';
    if (bytes < 1024) return bytes + ' B';
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0) + ' KB';
    return (bytes / (1024 * 1024)).toFixed(1) + ' MB';
  }

  function channelLabel(channel) {
    return CHANNEL_LABELS[channel] || (channel ? String(channel) : 'Unknown');
  }

  function channelClass(channel) {
    return 'channel-badge channel-' + String(channel || 'unknown').replace(/[^a-z0-9_-]/gi, '');
  }

  function conversationTitle(conv) {
    return conv.customer_id != null ? 'Customer #' + conv.customer_id : 'Conversation #' + conv.id;
  }

  function setHidden(node, hidden) {
    if (node) node.hidden = !!hidden;
  }

  // ------------------------------------------------------------------ API

  function ApiError(code, message, status) {
    this.code = code;
    this.message = message;
    this.status = status || 0;
  }

  function api(method, path, body) {
    var options = {
      method: method,
      credentials: 'same-origin',
      headers: { Accept: 'application/json' }
    };
    if (method !== 'GET' && method !== 'HEAD') {
      options.headers['Content-Type'] = 'application/json';
      options.headers['X-CSRF-Token'] = csrfToken;
      options.body = JSON.stringify(body || {});
    }
    return fetch(path, options).then(
      function (response) {
        return response.text().then(function (raw) {
          var data = null;
          if (raw) {
            try {
              data = JSON.parse(raw);
            } catch (err) {
              data = null;
            }
          }
          if (response.status === 401) {
            goToLogin();
            throw new ApiError('unauthenticated', 'Your session has ended. Please log in again.', 401);
          }
          if (!response.ok) {
            var error = data && data.error;
            throw new ApiError(
              (error && error.code) || 'http_' + response.status,
              (error && error.message) || 'Request failed (' + response.status + ').',
              response.status
            );
          }
          return data || {};
        });
      },
      function () {
        throw new ApiError('network', 'Could not reach the server. Check your connection and try again.', 0);
      }
    );
  }

  function goToLogin() {
    if (goToLogin.done) return;
    goToLogin.done = true;
    window.location.assign('/login?next=' + encodeURIComponent('/inbox'));
  }

  // ------------------------------------------------------------------ conversation view

  function showView(view) {
    el.app.dataset.view = view;
  }

  /* The list (web/static/inbox-list.js) keeps the conversations' summaries. */
  function summary(id) {
    return window.SBInbox && window.SBInbox.getConversation ? window.SBInbox.getConversation(id) : null;
  }

  function renderHeader() {
    var conv = summary(state.openId);
    var title = conv ? conversationTitle(conv) : 'Conversation #' + state.openId;
    el.title.textContent = '';
    el.title.appendChild(make('span', 'conversation-title-text', title));
    if (conv && conv.channel) {
      el.title.appendChild(document.createTextNode(' '));
      el.title.appendChild(make('span', channelClass(conv.channel), channelLabel(conv.channel)));
    }
    var sub = [];
    if (conv && conv.subject) sub.push(conv.subject);
    sub.push('Conversation #' + state.openId);
    el.subtitle.textContent = sub.join(' · ');
    el.status.textContent = conv && conv.status ? conv.status : '';
    el.status.className = 'chip' + (conv && conv.status ? ' status-' + String(conv.status).replace(/[^a-z_-]/gi, '') : '');
  }

  /* The bot's standing in the open conversation: answering, or handed off with why and
     its best guesses; an agent can hand a handed-off conversation back. */
  var HANDOFF_LABELS = {
    customer_asked: 'customer asked for a person',
    rule: 'inbox rule',
    out_of_scope: 'out of scope',
    second_miss: 'bot missed twice',
    frustration: 'customer frustrated',
    engine_unavailable: 'bot unavailable',
    agent_replied: 'an agent replied'
  };

  function renderBot(bot) {
    if (!bot || bot.enabled === false) {
      setHidden(el.bot, true);
      setHidden(el.handBack, true);
      return;
    }
    var handoff = bot.mode === 'human' ? bot.handoff : null;
    if (bot.mode === 'human') {
      var reason = handoff ? HANDOFF_LABELS[handoff.reason] || handoff.reason : 'handed off';
      el.bot.textContent = 'Bot handed off: ' + reason;
      var guesses = handoff && handoff.guesses ? handoff.guesses : [];
      el.bot.title = guesses.length
        ? 'Best guesses: ' + guesses.map(function (g) {
          return g.topic + ' (' + Math.round(Number(g.confidence) * 100) + '%)';
        }).join(', ')
        : (handoff && handoff.detail) || '';
    } else {
      el.bot.textContent = 'Bot answering';
      el.bot.title = '';
    }
    el.bot.dataset.mode = String(bot.mode);
    setHidden(el.bot, false);
    setHidden(el.handBack, bot.mode !== 'human');
    el.handBack.disabled = false;
  }

  function loadBot(id, token) {
    setHidden(el.bot, true);
    setHidden(el.handBack, true);
    api('GET', API + '/conversations/' + id).then(function (data) {
      if (token === state.openToken) renderBot(data.conversation && data.conversation.bot);
    }, function () { /* the chip stays hidden; the conversation itself still loads */ });
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

  function resetMessages() {
    state.messagesBySeq.clear();
    state.seqById.clear();
    state.lastSeq = 0;
    while (el.messages.firstChild) el.messages.removeChild(el.messages.firstChild);
    setHidden(el.jump, true);
    setHidden(el.messagesError, true);
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
    var token = state.openToken;
    clearTypers();
    resetMessages();
    el.view.dataset.state = 'open';
    setHidden(el.empty, true);
    setHidden(el.pane, false);
    setHidden(el.replyError, true);
    showView('conversation');
    if (window.location.hash !== '#c/' + id) {
      history.replaceState(null, '', '#c/' + id);
    }
    renderHeader();
    SBInbox.emit('conversation-opened', { id: id });
    loadBot(id, token);
    setHidden(el.messagesLoading, false);
    el.messages.setAttribute('aria-busy', 'true');
    loadMessages(id, 0, token).then(
      function () {
        if (token !== state.openToken) return;
        setHidden(el.messagesLoading, true);
        el.messages.setAttribute('aria-busy', 'false');
        scrollToBottom();
        markRead(id);
        if (!options.keepFocus && window.matchMedia('(min-width: 761px)').matches) {
          el.text.focus({ preventScroll: true });
        }
      },
      function (err) {
        if (token !== state.openToken) return;
        setHidden(el.messagesLoading, true);
        el.messages.setAttribute('aria-busy', 'false');
        el.messagesError.textContent = err.status === 404 || err.status === 403
          ? 'This conversation is not available.'
          : 'Could not load messages: ' + err.message;
        setHidden(el.messagesError, false);
      }
    );
  }

  function closeConversation(options) {
    var id = state.openId;
    stopTyping();
    state.openId = null;
    state.openToken += 1;
    clearTypers();
    resetMessages();
    el.view.dataset.state = 'empty';
    setHidden(el.pane, true);
    setHidden(el.empty, false);
    showView('list');
    if (window.location.hash) history.replaceState(null, '', window.location.pathname + window.location.search);
    SBInbox.emit('conversation-closed', { id: id, focus: !!(options && options.focus) });
  }

  /* Fetch every message after `afterSeq`, page by page, and merge them in. */
  function loadMessages(id, afterSeq, token) {
    var pages = 0;
    function page(after) {
      return api('GET', API + '/conversations/' + id + '/messages?after_seq=' + after).then(function (data) {
        if (token !== state.openToken) return;
        var batch = (data && Array.isArray(data.messages)) ? data.messages : [];
        var stick = isNearBottom();
        var highest = after;
        batch.forEach(function (msg) {
          putMessage(msg);
          if (typeof msg.seq === 'number' && msg.seq > highest) highest = msg.seq;
        });
        refreshDividers();
        if (stick) scrollToBottom();
        pages += 1;
        if (batch.length >= PAGE_HINT && highest > after && pages < MAX_PAGES) return page(highest);
      });
    }
    return page(afterSeq);
  }

  function markRead(id) {
    if (state.readTimer) clearTimeout(state.readTimer);
    state.readTimer = setTimeout(function () {
      state.readTimer = null;
      if (state.openId !== id) return;
      api('POST', API + '/conversations/' + id + '/read', {}).catch(function () { /* next message retries */ });
    }, 150);
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
    if (msg.direction === 'out' && !msg.private && msg.delivery_status) {
      classes.push('msg--' + String(msg.delivery_status).replace(/[^a-z_-]/gi, ''));
    }
    return classes.join(' ');
  }

  function authorLabel(msg) {
    var kind = msg.author_kind || (msg.direction === 'in' ? 'customer' : 'agent');
    var label = AUTHOR_LABELS[kind] || 'Agent';
    return msg.private ? 'Internal note · ' + label : label;
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
      if (/^image\/(png|jpe?g|gif|webp)$/i.test(String(att.content_type || ''))) {
        var link = make('a', 'attachment-image-link');
        link.href = url;
        link.setAttribute('download', name);
        link.title = 'Download ' + name;
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

  function fillMessage(li, msg) {
    li.className = messageClasses(msg);
    li.dataset.seq = String(msg.seq);
    li.dataset.messageId = String(msg.id);
    li.dataset.direction = msg.direction || '';
    li.dataset.deliveryStatus = msg.delivery_status || '';
    while (li.firstChild) li.removeChild(li.firstChild);

    if (msg.author_kind !== 'system') li.appendChild(make('span', 'msg-author', authorLabel(msg)));

    var bubble = make('div', 'msg-bubble');
    // Email: the subject is part of what the customer wrote.
    if (msg.subject) bubble.appendChild(make('div', 'msg-subject', msg.subject));
    bubble.appendChild(make('div', 'msg-text', msg.text || ''));
    if (Array.isArray(msg.attachments) && msg.attachments.length) {
      bubble.appendChild(renderAttachments(msg.attachments));
    }
    li.appendChild(bubble);

    var meta = make('div', 'msg-meta');
    var created = parseTime(msg.created_at);
    if (created) {
      var time = make('time', 'msg-time', timeFormat.format(created));
      time.dateTime = created.toISOString();
      time.title = fullFormat.format(created);
      meta.appendChild(time);
    }
    // What happened to the customer's message after it arrived, and mail that no one
    // should answer automatically (an auto-reply, a bounce, a list).
    var edited = parseTime(msg.edited_at);
    if (msg.deleted_at) {
      meta.appendChild(make('span', 'msg-flag msg-flag--deleted', 'deleted by the customer'));
    } else if (edited) {
      var flag = make('span', 'msg-flag', 'edited');
      flag.title = 'edited ' + fullFormat.format(edited);
      meta.appendChild(flag);
    }
    if (msg.automatic) meta.appendChild(make('span', 'msg-flag', 'automatic mail'));
    var status = msg.delivery_status;
    if (msg.direction === 'out' && !msg.private && status && status !== 'received') {
      var chip = make('span', 'delivery delivery--' + String(status).replace(/[^a-z_-]/gi, ''),
        DELIVERY_LABELS[status] || status);
      chip.dataset.status = status;
      meta.appendChild(chip);
    }
    li.appendChild(meta);

    if (msg.direction === 'out' && !msg.private && (status === 'failed' || status === 'unconfirmed')) {
      var prefix = status === 'failed' ? 'Not delivered' : 'Delivery not confirmed';
      var error = make('p', 'msg-error', prefix + (msg.delivery_error ? ': ' + msg.delivery_error : '.'));
      li.appendChild(error);
    }
  }

  /* Insert or update one message of the open conversation. Returns true when it was new. */
  function putMessage(msg) {
    if (!msg || typeof msg.seq !== 'number') return false;
    if (msg.conversation_id != null && msg.conversation_id !== state.openId) return false;
    var existing = state.messagesBySeq.get(msg.seq);
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
      existing.msg = Object.assign({}, existing.msg, msg);
      fillMessage(existing.el, existing.msg);
      if (msg.id != null) state.seqById.set(msg.id, msg.seq);
      return false;
    }
    var li = document.createElement('li');
    fillMessage(li, msg);
    // In seq order: find the first rendered message with a higher seq.
    var before = null;
    var children = el.messages.children;
    for (var i = children.length - 1; i >= 0; i--) {
      var s = Number(children[i].dataset.seq);
      if (s > msg.seq) before = children[i];
      else break;
    }
    el.messages.insertBefore(li, before);
    state.messagesBySeq.set(msg.seq, { msg: msg, el: li });
    if (msg.id != null) state.seqById.set(msg.id, msg.seq);
    if (msg.seq > state.lastSeq) state.lastSeq = msg.seq;
    return true;
  }

  function updateMessage(msg) {
    if (!msg) return;
    var seq = msg.id != null ? state.seqById.get(msg.id) : undefined;
    if (seq === undefined) seq = msg.seq;
    var entry = state.messagesBySeq.get(seq);
    if (entry) {
      entry.msg = Object.assign({}, entry.msg, msg);
      fillMessage(entry.el, entry.msg);
    } else if (typeof msg.seq === 'number') {
      var stick = isNearBottom();
      putMessage(msg);
      refreshDividers();
      if (stick) scrollToBottom();
    }
  }

  function refreshDividers() {
    var lastDay = null;
    var children = el.messages.children;
    for (var i = 0; i < children.length; i++) {
      var li = children[i];
      var entry = state.messagesBySeq.get(Number(li.dataset.seq));
      var date = entry ? parseTime(entry.msg.created_at) : null;
      var key = date ? startOfDay(date) : lastDay;
      if (date && key !== lastDay) li.dataset.day = dayLabel(date);
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

  // ------------------------------------------------------------------ replying

  function setReplyError(message) {
    if (message) {
      el.replyError.textContent = message;
      setHidden(el.replyError, false);
    } else {
      el.replyError.textContent = '';
      setHidden(el.replyError, true);
    }
  }

  function sendReply() {
    if (state.sending || state.openId == null) return;
    var text = el.text.value;
    if (!text.trim()) {
      setReplyError('Write a message first.');
      el.text.focus();
      return;
    }
    var id = state.openId;
    var isPrivate = el.private.checked;
    state.sending = true;
    el.send.disabled = true;
    el.send.setAttribute('aria-busy', 'true');
    setReplyError(null);
    stopTyping();
    api('POST', API + '/conversations/' + id + '/messages', { text: text, private: isPrivate }).then(
      function (data) {
        // Only clear what was sent: the agent may have kept typing meanwhile.
        if (el.text.value === text) el.text.value = '';
        autoGrow();
        if (data && data.message && state.openId === id) appendLive(data.message);
      },
      function (err) {
        setReplyError(err.message || 'The message could not be sent.');
      }
    ).then(function () {
      state.sending = false;
      el.send.disabled = false;
      el.send.removeAttribute('aria-busy');
      if (state.openId === id) el.text.focus({ preventScroll: true });
    });
  }

  function autoGrow() {
    var box = el.text;
    box.style.height = 'auto';
    box.style.height = Math.min(box.scrollHeight, 240) + 'px';
  }

  function updateComposerMode() {
    var note = el.private.checked;
    el.form.classList.toggle('is-note', note);
    el.send.textContent = note ? 'Add note' : 'Send';
    el.text.placeholder = note
      ? 'Write an internal note — only your team sees it'
      : 'Write a reply… (Enter to send, Shift+Enter for a new line)';
    if (note) stopTyping();
  }

  // ------------------------------------------------------------------ typing (outgoing)

  function sendFrame(frame) {
    return live ? live.send(frame) : false;
  }

  function noteTyping() {
    // Internal notes are not announced to the customer.
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

  // ------------------------------------------------------------------ typing (incoming)

  function clearTypers() {
    state.typers.forEach(function (entry) {
      clearTimeout(entry.timer);
    });
    state.typers.clear();
    renderTypers();
  }

  function renderTypers() {
    var labels = [];
    state.typers.forEach(function (entry) {
      labels.push(entry.label);
    });
    if (!labels.length) {
      el.typing.textContent = '';
      setHidden(el.typing, true);
      return;
    }
    var text;
    if (labels.length === 1) text = labels[0] + ' is typing…';
    else text = labels.slice(0, -1).join(', ') + ' and ' + labels[labels.length - 1] + ' are typing…';
    el.typing.textContent = text;
    setHidden(el.typing, false);
  }

  function onTyping(data) {
    if (!data || data.conversation_id !== state.openId) return;
    var key;
    var label;
    if (data.side === 'customer') {
      key = 'customer';
      label = 'Customer';
    } else {
      var name = data.name ? String(data.name) : '';
      if (!name || name === ownName) return; // our own echo
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
        }, TYPING_HIDE_AFTER)
      });
    }
    renderTypers();
  }

  // ------------------------------------------------------------------ live socket

  function setConnection(kind) {
    var pill = el.connection;
    pill.classList.remove('is-live', 'is-reconnecting', 'is-connecting');
    if (kind === 'live') {
      pill.classList.add('is-live');
      pill.textContent = 'Live';
    } else if (kind === 'reconnecting') {
      pill.classList.add('is-reconnecting');
      pill.textContent = 'Reconnecting…';
    } else {
      pill.classList.add('is-connecting');
      pill.textContent = 'Connecting…';
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
    if (state.openId != null) {
      var id = state.openId;
      var token = state.openToken;
      loadMessages(id, state.lastSeq, token).then(function () {
        if (token === state.openToken) markRead(id);
      }, function () { /* shown on the next successful load */ });
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
        if (data.conversation_id === state.openId) updateMessage(data.message);
        break;
      case 'conversation.typing':
        onTyping(data);
        break;
      case 'bot.state_changed':
        if (data.conversation_id === state.openId) renderBot(data.bot);
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
    if (convId == null) return;
    var isOpen = convId === state.openId;
    if (isOpen && msg) {
      if (msg.author_kind === 'customer' || msg.direction === 'in') {
        // Whoever typed that message is no longer typing it.
        var entry = state.typers.get('customer');
        if (entry) {
          clearTimeout(entry.timer);
          state.typers.delete('customer');
          renderTypers();
        }
      }
      appendLive(msg);
      if (msg.direction === 'in') markRead(convId);
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
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        sendReply();
      }
    });

    el.text.addEventListener('input', function () {
      autoGrow();
      if (!el.replyError.hidden && el.text.value.trim()) setReplyError(null);
      if (el.text.value) noteTyping();
      else stopTyping();
    });

    el.text.addEventListener('blur', stopTyping);
    el.private.addEventListener('change', updateComposerMode);
    el.handBack.addEventListener('click', handBack);

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

    window.addEventListener('hashchange', onHashChange);
    window.addEventListener('popstate', onHashChange);
    window.addEventListener('online', reconnectNow);
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') {
        reconnectNow();
        if (state.openId != null) markRead(state.openId);
      }
    });
    window.addEventListener('beforeunload', stopTyping);
  }

  function init() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    csrfToken = meta ? meta.getAttribute('content') || '' : '';
    el.app = $('app') || document.body;
    ownName = el.app.dataset.userName || '';
    el.view = $('conversation-view');
    el.empty = $('empty-state');
    el.pane = $('conversation-pane');
    el.title = $('conversation-title');
    el.subtitle = $('conversation-subtitle');
    el.status = $('conversation-status');
    el.bot = $('conversation-bot');
    el.handBack = $('hand-back');
    el.messages = $('messages');
    el.messagesLoading = $('messages-loading');
    el.messagesError = $('messages-error');
    el.jump = $('jump-latest');
    el.typing = $('typing-indicator');
    el.form = $('reply-form');
    el.text = $('reply-text');
    el.private = $('reply-private');
    el.send = $('reply-send');
    el.replyError = $('reply-error');
    el.back = $('back-to-list');
    el.connection = $('connection-status');
    if (!el.messages || !el.form) return;
    SBInbox.openConversation = function (id, options) {
      openConversation(id, options);
    };

    live = createLiveSocket();
    bind();
    setConnection('connecting');
    var initial = idFromHash();
    if (initial != null) openConversation(initial, { keepFocus: true });
    live.start();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
