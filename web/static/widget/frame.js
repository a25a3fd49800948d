/* Switchboard web-chat widget: the chat client inside the iframe.
 *
 * Plain browser JavaScript, no dependencies, served under `script-src 'self'`.
 * Message text, names and file names only ever reach the DOM through textContent.
 *
 * Protocol (see web/widget.py): POST /widget/session gives a visitor token; the socket
 * /widget/ws?token=… is resumed with {"type":"resume","last_seq":N} and replays every
 * message with seq > N, then streams. Sends carry a client_msg_id the server dedupes on,
 * so resending after a reconnect or a retry never duplicates a message.
 */
(function () {
  'use strict';

  var TYPING_THROTTLE = 3000;
  var TYPING_IDLE = 4000;
  var TYPING_HIDE_AFTER = 6000;
  var ACK_TIMEOUT = 15000;
  var STATUS_ERROR_FOR = 6000;
  var CONTROL_CHARS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

  var body = document.body;
  var inboxKey = body.dataset.inbox || '';
  var storageKey = 'switchboard:' + inboxKey;
  var memoryToken = null;
  var live = null; // SwitchboardLiveSocket on /widget/ws, made in init()

  var state = {
    token: null,
    visitorId: null,
    generation: 0, // bumps on every socket that opens; a send is tied to the one it went out on
    live: false,
    everLive: false,
    needSession: true,
    lastSeq: 0, // highest seq the server has streamed to us; sent in `resume`
    bySeq: new Map(), // seq -> item
    byClient: new Map(), // client_msg_id -> item (our own sends, in creation order)
    typingSentAt: 0,
    typingActive: false,
    typingIdleTimer: null,
    agentTypingTimer: null,
    statusTimer: null,
    blobs: new Map() // attachment id -> Promise<blob URL>
  };

  var el = {};

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
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
    var date = new Date(text);
    return isNaN(date.getTime()) ? null : date;
  }

  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  var fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function formatSize(bytes) {
    if (typeof bytes !== 'number' || !isFinite(bytes) || bytes < 0) return '';
    if (bytes < 1024) return bytes + ' B';
    if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + ' KB';
    return (bytes / (1024 * 1024)).toFixed(1) + ' MB';
  }

  function newClientMsgId() {
    var cryptoObj = window.crypto;
    if (cryptoObj && typeof cryptoObj.randomUUID === 'function') return cryptoObj.randomUUID();
    // randomUUID needs a secure context; getRandomValues does not.
    var bytes = new Uint8Array(16);
    cryptoObj.getRandomValues(bytes);
    return Array.from(bytes, function (b) {
      return (b < 16 ? '0' : '') + b.toString(16);
    }).join('');
  }

  function isImageType(type) {
    return /^image\/(png|jpe?g|gif|webp)$/i.test(String(type || ''));
  }

  /* Who the site says this visitor is (loader.js puts its signed claims in our fragment);
     the server checks the signatures and answers an anonymous visitor if they fail. */
  function identityClaims() {
    var match = /^#identity=(.*)$/.exec(window.location.hash || '');
    var claims = {};
    if (!match) return claims;
    var data;
    try {
      data = JSON.parse(decodeURIComponent(match[1]));
    } catch (err) {
      return claims;
    }
    if (!data || typeof data !== 'object') return claims;
    ['user_id', 'identifier_hash', 'email', 'email_hash', 'name'].forEach(function (key) {
      if (typeof data[key] === 'string' || typeof data[key] === 'number') claims[key] = data[key];
    });
    return claims;
  }

  function loadToken() {
    try {
      return window.localStorage.getItem(storageKey) || memoryToken;
    } catch (err) {
      return memoryToken; // storage blocked (third-party iframe in a strict browser)
    }
  }

  function saveToken(token) {
    memoryToken = token;
    try {
      window.localStorage.setItem(storageKey, token);
    } catch (err) {
      /* keep it in memory only */
    }
  }

  function readJson(response) {
    return response.text().then(function (raw) {
      var data = null;
      if (raw) {
        try {
          data = JSON.parse(raw);
        } catch (err) {
          data = null;
        }
      }
      return { ok: response.ok, status: response.status, data: data };
    });
  }

  function errorMessage(result, fallback) {
    var error = result && result.data && result.data.error;
    return (error && error.message) ? String(error.message) : fallback;
  }

  // ------------------------------------------------------------------ status line

  function setLive(live) {
    state.live = live;
    body.dataset.state = live ? 'live' : 'offline';
    if (live) {
      if (!el.status.classList.contains('status--error')) setHiddenStatus();
    } else {
      showStatus(state.everLive ? 'Reconnecting…' : 'Connecting…', false);
    }
  }

  function setHiddenStatus() {
    el.status.hidden = true;
    el.status.textContent = '';
    el.status.className = 'status';
  }

  function showStatus(text, isError) {
    if (state.statusTimer) {
      clearTimeout(state.statusTimer);
      state.statusTimer = null;
    }
    el.status.textContent = text;
    el.status.className = 'status' + (isError ? ' status--error' : '');
    el.status.hidden = false;
  }

  function flashError(text) {
    showStatus(text, true);
    state.statusTimer = setTimeout(function () {
      state.statusTimer = null;
      if (state.live) setHiddenStatus();
      else showStatus(state.everLive ? 'Reconnecting…' : 'Connecting…', false);
    }, STATUS_ERROR_FOR);
  }

  // ------------------------------------------------------------------ rendering

  function updateWelcome() {
    el.welcome.hidden = el.messages.children.length > 0;
  }

  function isNearBottom() {
    var box = el.scroll;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToBottom() {
    el.scroll.scrollTop = el.scroll.scrollHeight;
  }

  function attachmentBlobUrl(att) {
    var id = String(att.id);
    if (!state.blobs.has(id)) {
      var promise = fetch('/widget/attachments/' + encodeURIComponent(id), {
        headers: { 'X-Visitor-Token': state.token || '' },
        credentials: 'same-origin'
      }).then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.blob();
      }).then(function (blob) {
        return URL.createObjectURL(blob);
      });
      promise.catch(function () {
        state.blobs.delete(id); // let a later render try again
      });
      state.blobs.set(id, promise);
    }
    return state.blobs.get(id);
  }

  function renderAttachment(att) {
    var li = make('li', 'attachment');
    var name = att.filename ? String(att.filename) : 'file';
    var image = isImageType(att.content_type);
    var link = make('a', image ? 'attachment-image-link' : 'attachment-file');
    link.setAttribute('download', name);
    link.setAttribute('aria-busy', 'true');
    if (image) {
      var img = document.createElement('img');
      img.className = 'attachment-image';
      img.alt = name;
      img.decoding = 'async';
      link.appendChild(img);
      link.title = name;
    } else {
      var icon = make('span', 'attachment-icon');
      icon.setAttribute('aria-hidden', 'true');
      link.appendChild(icon);
      var info = make('span', 'attachment-info');
      info.appendChild(make('span', 'attachment-name', name));
      var size = formatSize(att.size);
      if (size) info.appendChild(make('span', 'attachment-size', size));
      link.appendChild(info);
    }
    li.appendChild(link);

    function ready(url) {
      link.href = url;
      link.removeAttribute('aria-busy');
      if (image) link.firstChild.src = url;
    }
    if (att.localUrl) {
      ready(att.localUrl);
    } else if (att.id != null && state.token) {
      attachmentBlobUrl(att).then(ready, function () {
        link.removeAttribute('aria-busy');
        li.classList.add('attachment--unavailable');
        li.replaceChildren(make('span', 'attachment-file', name + ' (unavailable)'));
      });
    }
    return li;
  }

  function stateLabel(item) {
    switch (item.state) {
      case 'uploading':
        return 'Uploading…';
      case 'sending':
        return 'Sending…';
      case 'sent':
        return 'Sent';
      case 'failed':
        return 'Failed';
      default:
        return '';
    }
  }

  function render(item) {
    var li = item.el;
    var mine = item.direction === 'in';
    var kind = item.authorKind || (mine ? 'customer' : 'agent');
    var classes = ['msg', mine ? 'msg--mine' : 'msg--theirs', 'msg--' + String(kind).replace(/[^a-z_-]/gi, '')];
    if (item.state) classes.push('is-' + item.state);
    li.className = classes.join(' ');
    if (item.seq != null) li.dataset.seq = String(item.seq);
    else delete li.dataset.seq;
    if (item.clientMsgId) li.dataset.clientMsgId = item.clientMsgId;
    if (item.state) li.dataset.state = item.state;
    else delete li.dataset.state;

    while (li.firstChild) li.removeChild(li.firstChild);

    if (!mine && kind !== 'system') {
      li.appendChild(make('span', 'msg-author', kind === 'bot' ? 'Bot' : 'Agent'));
    }

    var bubble = make('div', 'msg-bubble');
    bubble.appendChild(make('div', 'msg-text', item.text || ''));
    if (item.attachments && item.attachments.length) {
      var list = make('ul', 'attachments');
      item.attachments.forEach(function (att) {
        list.appendChild(renderAttachment(att));
      });
      bubble.appendChild(list);
    }
    li.appendChild(bubble);

    /* A bot's choices as buttons; a press sends the option's text like a typed reply. */
    if (item.choices && item.choices.length) {
      var choices = make('div', 'msg-choices');
      item.choices.forEach(function (title) {
        var choice = make('button', 'choice-button', String(title));
        choice.type = 'button';
        choice.dataset.action = 'choose';
        choice.dataset.choice = String(title);
        choices.appendChild(choice);
      });
      li.appendChild(choices);
    }

    var meta = make('div', 'msg-meta');
    var created = parseTime(item.createdAt);
    if (created) {
      var time = make('time', 'msg-time', timeFormat.format(created));
      time.dateTime = created.toISOString();
      time.title = fullFormat.format(created);
      meta.appendChild(time);
    }
    var label = mine ? stateLabel(item) : '';
    if (label) meta.appendChild(make('span', 'msg-state', label));
    li.appendChild(meta);

    if (item.state === 'failed') {
      var fail = make('div', 'msg-failure');
      fail.setAttribute('role', 'alert');
      fail.appendChild(make('span', 'msg-error', item.error || 'Not delivered.'));
      var canRetry = item.retryable !== false;
      var button = make('button', canRetry ? 'retry-button' : 'retry-button retry-button--remove',
        canRetry ? 'Retry' : 'Remove');
      button.type = 'button';
      button.dataset.action = canRetry ? 'retry' : 'remove';
      if (item.clientMsgId) button.dataset.clientMsgId = item.clientMsgId;
      fail.appendChild(button);
      li.appendChild(fail);
    }
  }

  /* Re-render after a state change (sent, failed…) without losing the newest message. */
  function refresh(item) {
    var stick = isNearBottom();
    render(item);
    place(item);
    if (stick) scrollToBottom();
  }

  /* Put an item's element where its seq says; items without a seq (not yet acknowledged)
     stay at the end, in the order they were written. */
  function place(item) {
    var list = el.messages;
    if (item.seq == null) {
      if (item.el.parentNode !== list || item.el !== list.lastElementChild) list.appendChild(item.el);
      return;
    }
    var before = null;
    var children = list.children;
    for (var i = 0; i < children.length; i++) {
      var child = children[i];
      if (child === item.el) continue;
      var seq = child.dataset.seq;
      if (seq === undefined || Number(seq) > item.seq) {
        before = child;
        break;
      }
    }
    if (item.el.nextElementSibling !== before || item.el.parentNode !== list) list.insertBefore(item.el, before);
  }

  function removeItem(item) {
    if (item.seq != null && state.bySeq.get(item.seq) === item) state.bySeq.delete(item.seq);
    if (item.clientMsgId && state.byClient.get(item.clientMsgId) === item) state.byClient.delete(item.clientMsgId);
    if (item.ackTimer) clearTimeout(item.ackTimer);
    if (item.el.parentNode) item.el.parentNode.removeChild(item.el);
    updateWelcome();
  }

  /* Give an item its server seq, resolving a clash with whatever holds that seq. */
  function assignSeq(item, seq) {
    if (item.seq === seq) return;
    var holder = state.bySeq.get(seq);
    if (holder && holder !== item) {
      if (holder.optimistic && !holder.acked) {
        // An identical unacknowledged send was matched to this seq by guess: swap.
        if (item.seq != null) {
          holder.seq = item.seq;
          state.bySeq.set(holder.seq, holder);
        } else {
          holder.seq = null;
          holder.state = 'sending';
        }
        render(holder);
        place(holder);
      } else {
        // The server's copy arrived before our ack: keep our bubble, take the server's data.
        item.id = holder.id != null ? holder.id : item.id;
        item.createdAt = holder.createdAt || item.createdAt;
        if (holder.attachments && holder.attachments.length) item.attachments = mergeAttachments(item.attachments, holder.attachments);
        removeItem(holder);
      }
    } else if (item.seq != null && state.bySeq.get(item.seq) === item) {
      state.bySeq.delete(item.seq);
    }
    item.seq = seq;
    state.bySeq.set(seq, item);
  }

  /* Server attachment data, keeping the local preview of a file we uploaded ourselves. */
  function mergeAttachments(local, server) {
    return (server || []).map(function (att) {
      var mine = (local || []).find(function (l) {
        return l.id != null && String(l.id) === String(att.id);
      });
      return mine && mine.localUrl ? Object.assign({}, att, { localUrl: mine.localUrl }) : att;
    });
  }

  function sameAttachments(a, b) {
    var x = (a || []).map(function (att) { return String(att.id); }).sort();
    var y = (b || []).map(function (att) { return String(att.id); }).sort();
    return x.length === y.length && x.every(function (v, i) { return v === y[i]; });
  }

  function findAdoptable(message) {
    var text = String(message.text || '');
    var found = null;
    state.byClient.forEach(function (item) {
      if (found || item.acked || item.seq != null || !item.sentGen) return;
      if (item.state !== 'sending') return;
      if (String(item.text || '').replace(CONTROL_CHARS, '') !== text) return;
      if (!sameAttachments(item.attachments, message.attachments)) return;
      found = item;
    });
    return found;
  }

  function onServerMessage(message) {
    if (!message || typeof message.seq !== 'number') return;
    var stick = isNearBottom();
    if (message.seq > state.lastSeq) state.lastSeq = message.seq;
    var item = state.bySeq.get(message.seq);
    if (!item && message.direction === 'in') item = findAdoptable(message);
    if (item) {
      // Already shown (our optimistic bubble, or a replay): refresh it with the server's copy.
      assignSeq(item, message.seq);
      item.id = message.id;
      item.text = message.text;
      item.createdAt = message.created_at || item.createdAt;
      item.attachments = mergeAttachments(item.attachments, message.attachments);
      if (item.optimistic) {
        item.state = 'sent';
        item.error = null;
        if (item.ackTimer) {
          clearTimeout(item.ackTimer);
          item.ackTimer = null;
        }
      }
      render(item);
      place(item);
    } else {
      item = {
        el: document.createElement('li'),
        seq: null,
        id: message.id,
        direction: message.direction,
        authorKind: message.author_kind,
        text: message.text,
        createdAt: message.created_at,
        attachments: message.attachments || [],
        choices: Array.isArray(message.choices) ? message.choices : [],
        state: message.direction === 'in' ? 'sent' : null,
        optimistic: false
      };
      assignSeq(item, message.seq);
      render(item);
      place(item);
    }
    if (message.direction === 'out') hideAgentTyping();
    updateWelcome();
    if (stick || message.direction === 'in') scrollToBottom();
  }

  // ------------------------------------------------------------------ sending

  function createOwnItem(text, attachments) {
    var item = {
      el: document.createElement('li'),
      seq: null,
      id: null,
      clientMsgId: newClientMsgId(),
      direction: 'in',
      authorKind: 'customer',
      text: text,
      createdAt: new Date().toISOString(),
      attachments: attachments || [],
      state: 'sending',
      optimistic: true,
      acked: false,
      sentGen: 0,
      ackTimer: null,
      error: null,
      retryable: true,
      upload: null
    };
    state.byClient.set(item.clientMsgId, item);
    render(item);
    place(item);
    updateWelcome();
    scrollToBottom();
    return item;
  }

  function sendFrame(frame) {
    if (!state.live || !live) return false;
    return live.send(frame);
  }

  function transmit(item) {
    var ok = sendFrame({
      type: 'message',
      client_msg_id: item.clientMsgId,
      text: item.text || '',
      attachments: (item.attachments || []).map(function (att) { return String(att.id); })
    });
    if (!ok) return; // queued: flushed after the next resume
    item.sentGen = state.generation;
    if (item.ackTimer) clearTimeout(item.ackTimer);
    item.ackTimer = setTimeout(function () {
      item.ackTimer = null;
      if (item.acked || item.state !== 'sending') return;
      item.state = 'failed';
      item.error = 'Not delivered yet.';
      item.retryable = true;
      refresh(item);
    }, ACK_TIMEOUT);
  }

  function sendItem(item) {
    item.state = 'sending';
    item.error = null;
    item.retryable = true;
    refresh(item);
    transmit(item);
  }

  function flushQueue() {
    state.byClient.forEach(function (item) {
      if (item.state === 'sending' && !item.acked && item.sentGen !== state.generation) transmit(item);
    });
  }

  function submitText() {
    var text = el.input.value;
    if (!text.trim()) {
      el.input.focus();
      return;
    }
    el.input.value = '';
    autoGrow();
    stopTyping();
    sendItem(createOwnItem(text, []));
    el.input.focus();
  }

  function onAck(frame) {
    var item = state.byClient.get(frame.client_msg_id);
    if (!item) return;
    if (item.ackTimer) {
      clearTimeout(item.ackTimer);
      item.ackTimer = null;
    }
    item.acked = true;
    item.state = 'sent';
    item.error = null;
    if (frame.message_id != null) item.id = frame.message_id;
    if (typeof frame.seq === 'number') assignSeq(item, frame.seq);
    refresh(item);
  }

  function onError(frame) {
    var item = frame.client_msg_id ? state.byClient.get(frame.client_msg_id) : null;
    if (item && !item.acked) {
      if (item.ackTimer) {
        clearTimeout(item.ackTimer);
        item.ackTimer = null;
      }
      item.state = 'failed';
      item.error = frame.message ? String(frame.message) : 'Not delivered.';
      item.retryable = true;
      refresh(item);
      return;
    }
    if (frame.message) flashError(String(frame.message));
  }

  function retry(item) {
    if (item.upload) {
      uploadFile(item.upload, item);
    } else {
      sendItem(item); // same client_msg_id: the server dedupes if the first try did land
    }
  }

  // ------------------------------------------------------------------ uploads

  function uploadFile(file, existing) {
    var item = existing;
    if (!item) {
      var local = isImageType(file.type) ? URL.createObjectURL(file) : null;
      item = createOwnItem('', [{ id: null, filename: file.name, content_type: file.type, size: file.size, localUrl: local }]);
      item.upload = file;
    }
    item.state = 'uploading';
    item.error = null;
    refresh(item);

    var attempt = state.needSession || !state.token ? startSession() : Promise.resolve();
    attempt.then(function () {
      var form = new FormData();
      form.append('file', file, file.name);
      return fetch('/widget/upload', {
        method: 'POST',
        headers: { 'X-Visitor-Token': state.token || '' },
        body: form,
        credentials: 'same-origin'
      }).then(readJson);
    }).then(function (result) {
      var data = result.data || {};
      if (result.ok && data.attachment_id) {
        var previous = item.attachments[0] || {};
        var att = {
          id: data.attachment_id,
          filename: data.filename || file.name,
          content_type: data.content_type || file.type,
          size: typeof data.size === 'number' ? data.size : file.size,
          localUrl: previous.localUrl || null
        };
        if (att.localUrl) state.blobs.set(String(att.id), Promise.resolve(att.localUrl));
        item.attachments = [att];
        item.upload = null;
        sendItem(item);
        return;
      }
      if (result.status === 401 || result.status === 403) state.needSession = true;
      item.state = 'failed';
      item.error = errorMessage(result, 'The file could not be uploaded (' + result.status + ').');
      // Too large, wrong type and the like will fail the same way again.
      item.retryable = result.status === 401 || result.status === 403 || result.status === 408 ||
        result.status === 429 || result.status >= 500;
      refresh(item);
    }, function () {
      item.state = 'failed';
      item.error = 'The file could not be uploaded. Check your connection.';
      item.retryable = true;
      refresh(item);
    });
  }

  // ------------------------------------------------------------------ typing

  function noteTyping() {
    if (!el.input.value.trim()) {
      stopTyping();
      return;
    }
    var now = Date.now();
    if (!state.typingActive || now - state.typingSentAt >= TYPING_THROTTLE) {
      if (sendFrame({ type: 'typing', typing: true })) {
        state.typingActive = true;
        state.typingSentAt = now;
      }
    }
    if (state.typingIdleTimer) clearTimeout(state.typingIdleTimer);
    state.typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE);
  }

  function stopTyping() {
    if (state.typingIdleTimer) {
      clearTimeout(state.typingIdleTimer);
      state.typingIdleTimer = null;
    }
    if (!state.typingActive) return;
    state.typingActive = false;
    state.typingSentAt = 0;
    sendFrame({ type: 'typing', typing: false });
  }

  function showAgentTyping() {
    var stick = isNearBottom();
    el.typing.textContent = 'Agent is typing…';
    el.typing.hidden = false;
    if (stick) scrollToBottom();
    if (state.agentTypingTimer) clearTimeout(state.agentTypingTimer);
    state.agentTypingTimer = setTimeout(hideAgentTyping, TYPING_HIDE_AFTER);
  }

  function hideAgentTyping() {
    if (state.agentTypingTimer) {
      clearTimeout(state.agentTypingTimer);
      state.agentTypingTimer = null;
    }
    el.typing.hidden = true;
    el.typing.textContent = '';
  }

  // ------------------------------------------------------------------ session and socket

  function startSession() {
    return fetch('/widget/session', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(Object.assign(identityClaims(), { inbox: inboxKey, token: loadToken() || null })),
      credentials: 'same-origin'
    }).then(readJson).then(function (result) {
      if (!result.ok || !result.data || !result.data.token) {
        var error = new Error(errorMessage(result, 'Could not start the chat.'));
        error.status = result.status;
        throw error;
      }
      var data = result.data;
      if (state.visitorId && data.visitor_id && data.visitor_id !== state.visitorId) forgetConversation();
      state.token = data.token;
      state.visitorId = data.visitor_id || state.visitorId;
      state.needSession = false;
      saveToken(data.token);
      if (data.inbox && data.inbox.name) el.title.textContent = String(data.inbox.name);
    });
  }

  /* A different visitor now: what is on screen belongs to someone else's conversation.
     Keep only what was never delivered, so it goes out under the new visitor. */
  function forgetConversation() {
    Array.from(state.bySeq.values()).forEach(removeItem);
    Array.from(state.byClient.values()).forEach(function (item) {
      if (item.acked || item.state === 'sent') removeItem(item);
      else item.sentGen = 0;
    });
    state.lastSeq = 0;
  }

  function createLiveSocket() {
    return window.SwitchboardLiveSocket({
      url: function () {
        return (window.location.protocol === 'https:' ? 'wss' : 'ws') + '://' + window.location.host +
          '/widget/ws?token=' + encodeURIComponent(state.token || '');
      },
      prepare: prepareSession,
      onOpen: function () {
        state.generation += 1;
        live.send({ type: 'resume', last_seq: state.lastSeq });
        state.everLive = true;
        setLive(true);
        flushQueue();
      },
      onFrame: handleFrame,
      onClose: function (opened) {
        state.typingActive = false;
        state.byClient.forEach(function (item) {
          if (item.ackTimer) {
            clearTimeout(item.ackTimer);
            item.ackTimer = null; // resent after the next resume
          }
        });
        // A socket that never opened may have been refused for its token: renew it first.
        if (!opened) state.needSession = true;
        setLive(false);
      },
      onConnectError: function () {
        state.needSession = true;
      }
    });
  }

  /* Before each connect: a visitor token, unless the one we hold is still good. */
  function prepareSession() {
    if (!state.needSession && state.token) return null;
    return startSession().catch(function (err) {
      if (err && err.status === 404) {
        // Unknown or disabled inbox: retrying will not help.
        live.close();
        showStatus('This chat is not available right now.', true);
        el.input.disabled = true;
        el.send.disabled = true;
        el.attach.disabled = true;
      }
      throw err;
    });
  }

  function reconnectNow() {
    if (live) live.reconnectNow();
  }

  function handleFrame(frame) {
    if (!frame || typeof frame !== 'object') return;
    switch (frame.type) {
      case 'hello':
        if (frame.visitor_id) state.visitorId = frame.visitor_id;
        break;
      case 'message':
        onServerMessage(frame.message);
        break;
      case 'ack':
        onAck(frame);
        // The ack of the message the socket expected next carries the stored message
        // itself, in place of a separate 'message' frame after it.
        if (frame.message) onServerMessage(frame.message);
        break;
      case 'error':
        onError(frame);
        break;
      case 'typing':
        if (frame.typing) showAgentTyping();
        else hideAgentTyping();
        break;
      default:
        break; // pong and anything newer
    }
  }

  // ------------------------------------------------------------------ wiring

  function autoGrow() {
    var box = el.input;
    box.style.height = 'auto';
    box.style.height = Math.min(box.scrollHeight, 120) + 'px';
  }

  function closeWidget() {
    stopTyping();
    if (window.parent && window.parent !== window) {
      // No data in the message, so any embedding origin may receive it.
      window.parent.postMessage({ switchboard: 'close' }, '*');
    }
  }

  function bind() {
    el.form.addEventListener('submit', function (event) {
      event.preventDefault();
      submitText();
    });
    el.input.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        submitText();
      }
    });
    el.input.addEventListener('input', function () {
      autoGrow();
      noteTyping();
    });
    el.input.addEventListener('blur', stopTyping);
    el.attach.addEventListener('click', function () {
      el.file.click();
    });
    el.file.addEventListener('change', function () {
      var files = Array.from(el.file.files || []);
      el.file.value = '';
      files.slice(0, 5).forEach(function (file) {
        uploadFile(file, null);
      });
    });
    el.messages.addEventListener('click', function (event) {
      var button = event.target.closest('button[data-action]');
      if (!button) return;
      if (button.dataset.action === 'choose') {
        sendItem(createOwnItem(button.dataset.choice || '', []));
        return;
      }
      var item = state.byClient.get(button.dataset.clientMsgId);
      if (!item) return;
      if (button.dataset.action === 'remove') removeItem(item);
      else retry(item);
    });
    el.close.addEventListener('click', closeWidget);
    document.addEventListener('keydown', function (event) {
      if (event.key === 'Escape') closeWidget();
    });
    window.addEventListener('message', function (event) {
      if (event.source !== window.parent || !event.data || typeof event.data !== 'object') return;
      if (event.data.switchboard === 'opened') {
        scrollToBottom();
        el.input.focus({ preventScroll: true });
      }
    });
    window.addEventListener('online', reconnectNow);
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') reconnectNow();
    });
  }

  function init() {
    el.title = $('widget-title');
    el.status = $('widget-status');
    el.scroll = $('widget-scroll') || $('widget-messages');
    el.welcome = $('widget-welcome') || make('div');
    el.messages = $('widget-messages');
    el.typing = $('widget-typing');
    el.form = $('widget-form');
    el.input = $('widget-input');
    el.file = $('widget-file');
    el.attach = $('widget-attach');
    el.send = $('widget-send');
    el.close = $('widget-close');
    if (!el.messages || !el.form || !el.input) return;
    bind();
    setLive(false);
    updateWelcome();
    if (!inboxKey) {
      showStatus('This chat is not set up correctly (no inbox key).', true);
      return;
    }
    live = createLiveSocket();
    live.start();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
