/* Switchboard agent inbox: the customer PROFILE column beside the conversation.
 *
 * Plain browser JavaScript, no dependencies, served under `script-src 'self'`. Listens to
 * inbox.js through `window.SBInbox` ('conversation-loaded' {id, customer_id},
 * 'toggle-profile') and tells it the customer's name ('customer-loaded'). Shows the
 * customer's identities on every channel, tier, lifecycle stage, tags, custom attributes,
 * notes, past tickets with their CSAT, and merge suggestions with one-click merge; tier,
 * stage, tags, attributes and notes are edited in place (PATCH /api/v1/customers/{id},
 * POST /api/v1/customers/{id}/notes). Every value reaches the DOM through textContent.
 */
(function () {
  'use strict';

  var API = '/api/v1';
  var STAGES = ['lead', 'prospect', 'customer', 'churned'];
  var SBInbox = window.SBInbox = window.SBInbox || { on: function () {}, emit: function () {} };
  var t = (window.SB && window.SB.t) || function (text, params) {
    return String(text).replace(/\{(\w+)\}/g, function (whole, name) {
      return params && Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole;
    });
  };
  var el = {};
  var state = { customerId: null, customer: null, token: 0, authors: new Map() };

  var $ = SB.byId; // web/static/staff.js

  var make = SB.make;

  function clear(node) {
    while (node && node.firstChild) node.removeChild(node.firstChild);
  }

  function when(iso) {
    return window.SB && window.SB.formatDateTime ? window.SB.formatDateTime(iso) : String(iso || '');
  }

  var api = SB.api;

  function channelLabel(channel) {
    if (channel === 'webchat') return t('Web chat');
    if (channel === 'email') return t('Email');
    if (channel === 'telegram') return t('Telegram');
    if (channel === 'slack') return t('Slack');
    return channel ? String(channel) : t('Unknown');
  }

  function stageLabel(stage) {
    if (stage === 'lead') return t('Lead');
    if (stage === 'prospect') return t('Prospect');
    if (stage === 'customer') return t('Customer');
    if (stage === 'churned') return t('Churned');
    return t('Not set');
  }

  var statusLabel = SB.statusLabel; // web/static/staff.js

  function say(text, isError) {
    el.status.textContent = text || '';
    el.status.classList.toggle('is-error', !!isError);
  }

  /* After a merge: "Merged." with an Undo button (POST /customer-merges/{id}/undo moves
     back what the merge moved), until the next message replaces it. */
  function offerUndo(merge, label) {
    say(t('Merged {name} into this customer.', { name: label }));
    if (!merge || merge.id == null) return;
    var undo = make('button', 'btn btn-sm btn-ghost profile-undo', t('Undo'));
    undo.type = 'button';
    undo.id = 'profile-undo-merge';
    undo.addEventListener('click', function () {
      undo.disabled = true;
      api('POST', API + '/customer-merges/' + encodeURIComponent(merge.id) + '/undo', {}).then(function () {
        load(merge.survivor_id);
        say(t('Merge undone: {name} is a separate customer again.', { name: label }));
      }, function (err) {
        undo.disabled = false;
        say(err.message, true);
      });
    });
    el.status.appendChild(document.createTextNode(' '));
    el.status.appendChild(undo);
  }

  // ------------------------------------------------------------------ loading

  function load(customerId) {
    state.customerId = customerId;
    state.token += 1;
    var token = state.token;
    el.loading.hidden = false;
    el.body.hidden = true;
    el.error.hidden = true;
    say('');
    if (customerId == null) return;
    api('GET', API + '/customers/' + customerId).then(function (data) {
      if (token !== state.token) return;
      state.customer = data.customer;
      render();
      el.loading.hidden = true;
      el.body.hidden = false;
      SBInbox.emit('customer-loaded', { customer: state.customer });
      loadNotes(token);
      loadTickets(token);
      loadSuggestions(token);
    }, function (err) {
      if (token !== state.token) return;
      el.loading.hidden = true;
      el.error.textContent = err.message;
      el.error.hidden = false;
    });
  }

  function render() {
    var c = state.customer;
    el.name.textContent = c.name || t('Customer #{n}', { n: c.id });
    var contact = [];
    if (c.email) contact.push(c.email);
    if (c.phone) contact.push(c.phone);
    el.contact.textContent = contact.join(' · ');
    el.tier.value = c.tier || '';
    clear(el.stage);
    var none = make('option', null, t('Not set'));
    none.value = '';
    el.stage.appendChild(none);
    STAGES.forEach(function (s) {
      var o = make('option', null, stageLabel(s));
      o.value = s;
      el.stage.appendChild(o);
    });
    el.stage.value = c.lifecycle_stage || '';
    renderTags();
    renderAttributes();
    clear(el.identities);
    (c.identities || []).forEach(function (i) {
      var li = make('li', 'profile-identity');
      li.appendChild(make('span', 'channel-badge channel-' + String(i.channel).replace(/[^a-z0-9_-]/gi, ''), channelLabel(i.channel)));
      li.appendChild(make('span', 'profile-identity-id', i.display_name || i.external_id));
      if (i.verified) li.appendChild(make('span', 'badge badge-ok', t('verified')));
      if (i.reachable === false) li.appendChild(make('span', 'badge badge-warn', t('unreachable')));
      el.identities.appendChild(li);
    });
    if (!(c.identities || []).length) el.identities.appendChild(make('li', 'profile-muted', t('None')));
  }

  function renderTags() {
    clear(el.tags);
    (state.customer.tags || []).forEach(function (tag) {
      var li = make('li', 'tag');
      li.appendChild(make('span', null, tag));
      var remove = make('button', 'tag-remove', '×');
      remove.type = 'button';
      remove.setAttribute('aria-label', t('Remove tag {tag}', { tag: tag }));
      remove.addEventListener('click', function () {
        save({ tags: state.customer.tags.filter(function (x) { return x !== tag; }) });
      });
      li.appendChild(remove);
      el.tags.appendChild(li);
    });
  }

  function renderAttributes() {
    clear(el.attributes);
    var attrs = state.customer.attributes || {};
    Object.keys(attrs).sort().forEach(function (key) {
      var row = make('div', 'profile-attribute');
      row.appendChild(make('dt', null, key));
      var dd = make('dd', null, String(attrs[key]));
      var remove = make('button', 'tag-remove', '×');
      remove.type = 'button';
      remove.setAttribute('aria-label', t('Remove {name}', { name: key }));
      remove.addEventListener('click', function () {
        var next = Object.assign({}, state.customer.attributes);
        delete next[key];
        save({ attributes: next });
      });
      dd.appendChild(remove);
      row.appendChild(dd);
      el.attributes.appendChild(row);
    });
    // The placeholder sits beside the list: a <dl> may hold only dt/dd groups.
    el.attributesNone.hidden = Object.keys(attrs).length > 0;
  }

  function save(changes) {
    var id = state.customerId;
    say(t('Saving…'));
    return api('PATCH', API + '/customers/' + id, changes).then(function (data) {
      if (id !== state.customerId) return;
      state.customer = data.customer;
      render();
      say(t('Saved.'));
    }, function (err) {
      say(err.message, true);
      render();
    });
  }

  function authorName(id) {
    if (id == null) return t('Someone');
    return state.authors.get(id) || t('User #{n}', { n: id });
  }

  function loadNotes(token) {
    Promise.all([
      api('GET', API + '/customers/' + state.customerId + '/notes'),
      state.authors.size ? Promise.resolve(null) : api('GET', API + '/teammates').catch(function () { return null; })
    ]).then(function (results) {
      if (token !== state.token) return;
      if (results[1]) results[1].teammates.forEach(function (p) { state.authors.set(p.id, p.name); });
      clear(el.notes);
      results[0].notes.forEach(function (n) {
        var li = make('li', 'profile-note');
        li.appendChild(make('p', 'profile-note-body', n.body));
        li.appendChild(make('p', 'profile-muted', authorName(n.author_id) + ' · ' + when(n.created_at)));
        el.notes.appendChild(li);
      });
      if (!results[0].notes.length) el.notes.appendChild(make('li', 'profile-muted', t('No notes yet.')));
    }, function () { /* the rest of the profile stays */ });
  }

  function loadTickets(token) {
    api('GET', API + '/tickets?customer_id=' + state.customerId + '&limit=20').then(function (data) {
      if (token !== state.token) return;
      clear(el.tickets);
      data.tickets.forEach(function (ticket) {
        var li = make('li', 'profile-ticket');
        var top = make('div', 'profile-ticket-top');
        var link = make('a', null, '#' + ticket.id + ' ' + (ticket.subject || ''));
        var conv = (ticket.conversation_ids || [])[0];
        if (conv != null) link.href = '#c/' + conv;
        top.appendChild(link);
        top.appendChild(make('span', 'chip status-' + String(ticket.status).replace(/[^a-z_-]/gi, ''), statusLabel(ticket.status)));
        li.appendChild(top);
        var facts = [when(ticket.created_at)];
        if (ticket.csat && ticket.csat.rating != null) facts.push(t('CSAT {n}/5', { n: ticket.csat.rating }));
        else if (ticket.csat && ticket.csat.requested_at) facts.push(t('CSAT asked, no answer'));
        li.appendChild(make('p', 'profile-muted', facts.join(' · ')));
        el.tickets.appendChild(li);
      });
      if (!data.tickets.length) el.tickets.appendChild(make('li', 'profile-muted', t('No tickets yet.')));
    }, function () { /* the rest of the profile stays */ });
  }

  function loadSuggestions(token) {
    api('GET', API + '/customers/' + state.customerId + '/suggestions').then(function (data) {
      if (token !== state.token) return;
      clear(el.suggestions);
      data.suggestions.forEach(function (s) {
        var other = s.customer;
        var li = make('li', 'profile-suggestion');
        var label = (other.name || t('Customer #{n}', { n: other.id })) + (other.email ? ' · ' + other.email : '');
        li.appendChild(make('span', null, label));
        li.appendChild(make('span', 'profile-muted', t('Same {reasons}', { reasons: (s.reasons || []).join(', ') })));
        var button = make('button', 'btn btn-sm', t('Merge into this profile'));
        button.type = 'button';
        button.addEventListener('click', function () {
          if (!window.confirm(t('Merge {name} into this customer? Their conversations and notes move here (it can be undone).', { name: label }))) return;
          button.disabled = true;
          var survivor = state.customerId;
          api('POST', API + '/customers/' + survivor + '/merge', { other_id: other.id }).then(function (data) {
            load(survivor);
            offerUndo(data.merge, label);
          }, function (err) {
            button.disabled = false;
            say(err.message, true);
          });
        });
        li.appendChild(button);
        el.suggestions.appendChild(li);
      });
      if (!data.suggestions.length) el.suggestions.appendChild(make('li', 'profile-muted', t('None found.')));
    }, function () { /* the rest of the profile stays */ });
  }

  // ------------------------------------------------------------------ showing and hiding

  function setVisible(visible) {
    el.app.dataset.profile = visible ? 'shown' : 'hidden';
    el.toggle.setAttribute('aria-expanded', visible ? 'true' : 'false');
    try { window.localStorage.setItem('sb.profile', visible ? 'shown' : 'hidden'); } catch (e) { /* private mode */ }
  }

  function init() {
    el.app = $('app') || document.body;
    [
      ['panel', 'profile-panel'], ['toggle', 'profile-toggle'], ['close', 'profile-close'],
      ['loading', 'profile-loading'], ['error', 'profile-error'], ['body', 'profile-body'],
      ['name', 'profile-name'], ['contact', 'profile-contact'], ['tier', 'profile-tier'],
      ['stage', 'profile-stage'], ['tags', 'profile-tags'], ['tagInput', 'profile-tag-input'],
      ['attributes', 'profile-attributes'], ['attributesNone', 'profile-attributes-none'],
      ['attributeForm', 'profile-attribute-form'],
      ['attributeKey', 'profile-attribute-key'], ['attributeValue', 'profile-attribute-value'],
      ['identities', 'profile-identities'], ['notes', 'profile-notes'],
      ['noteForm', 'profile-note-form'], ['noteText', 'profile-note-text'],
      ['tickets', 'profile-tickets'], ['suggestions', 'profile-suggestions'], ['status', 'profile-status']
    ].forEach(function (pair) { el[pair[0]] = $(pair[1]); });
    if (!el.panel) return;
    var stored = null;
    try { stored = window.localStorage.getItem('sb.profile'); } catch (e) { stored = null; }
    // Wide screens show it beside the conversation; a tablet opens it over the conversation.
    setVisible(stored ? stored === 'shown' : window.matchMedia('(min-width: 1100px)').matches);

    // Over the conversation (a tablet) the opened panel takes the focus, and Escape
    // closes it and gives the focus back to the button that opened it.
    var overlaid = function () { return !window.matchMedia('(min-width: 1101px)').matches; };
    // The button and the "p" shortcut: hiding the panel never leaves the focus inside it.
    var toggle = function () {
      var show = el.app.dataset.profile !== 'shown';
      setVisible(show);
      if (show && overlaid()) el.close.focus();
      else if (!show && el.panel.contains(document.activeElement)) el.toggle.focus();
    };
    el.toggle.addEventListener('click', toggle);
    el.close.addEventListener('click', function () {
      setVisible(false);
      el.toggle.focus();
    });
    el.panel.addEventListener('keydown', function (event) {
      if (event.key !== 'Escape' || event.defaultPrevented || !overlaid()) return;
      event.preventDefault();
      setVisible(false);
      el.toggle.focus();
    });
    // A ticket of this customer changed (solved, reopened, rated): its row follows.
    var ticketTimer = null;
    SBInbox.on('frame', function (frame) {
      var ticket = frame && frame.data && frame.data.ticket;
      if (!ticket || String(frame.type).indexOf('ticket.') !== 0 || ticket.customer_id !== state.customerId) return;
      if (ticketTimer) clearTimeout(ticketTimer);
      var token = state.token;
      ticketTimer = setTimeout(function () { if (token === state.token) loadTickets(token); }, 300);
    });
    SBInbox.on('toggle-profile', toggle);
    SBInbox.on('conversation-loaded', function (data) {
      if (data && data.customer_id !== state.customerId) load(data.customer_id);
    });
    el.tier.addEventListener('change', function () {
      save({ tier: el.tier.value.trim() || null });
    });
    el.stage.addEventListener('change', function () {
      save({ lifecycle_stage: el.stage.value || null });
    });
    el.tagInput.addEventListener('keydown', function (event) {
      if (event.key !== 'Enter') return;
      event.preventDefault();
      var tag = el.tagInput.value.trim();
      if (!tag || !state.customer) return;
      var tags = (state.customer.tags || []).slice();
      if (tags.indexOf(tag) < 0) tags.push(tag);
      save({ tags: tags }).then(function () { el.tagInput.value = ''; });
    });
    el.attributeForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var key = el.attributeKey.value.trim();
      if (!key || !state.customer) return;
      var next = Object.assign({}, state.customer.attributes || {});
      next[key] = el.attributeValue.value;
      save({ attributes: next }).then(function () {
        el.attributeKey.value = '';
        el.attributeValue.value = '';
      });
    });
    el.noteForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var body = el.noteText.value;
      if (!body.trim() || state.customerId == null) return;
      api('POST', API + '/customers/' + state.customerId + '/notes', { body: body }).then(function () {
        el.noteText.value = '';
        say(t('Note added.'));
        loadNotes(state.token);
      }, function (err) { say(err.message, true); });
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
