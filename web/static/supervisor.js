/* Switchboard supervisor dashboard: queues and agents now, reports over a period, the
 * tickets behind any number, reassigning. Plain JS, no dependencies; charts are SVG drawn
 * here, each with a table view. Data comes from /api/v1/supervisor/* and
 * /api/v1/reports/*; the page stays live over the agent socket (/inbox/ws): ticket, SLA
 * and presence events refresh the floor (debounced), SLA breaches also raise an alert,
 * and the time-to-breach countdowns tick every second.
 */
(function () {
  'use strict';

  var SVG = 'http://www.w3.org/2000/svg';
  var REPORTS = ['first_response', 'resolution', 'sla', 'csat', 'containment', 'handoff_reasons'];
  var REFRESH_DELAY = 400;
  var MIN_REFRESH_GAP = 2000;

  var floor = { queues: [], agents: [] };
  var people = {}; // user id -> agent entry
  var queueNames = {}; // queue id -> name
  var filters = { period: '7d', from: '', to: '', queue_id: '' };
  var refreshTimer = null;
  var lastRefresh = 0;
  var drill = null; // { title, query, cursor }
  var assigning = null; // { ticketId, assigneeId }

  function $(id) { return document.getElementById(id); }
  function t(text, params) { return window.SB ? window.SB.t(text, params) : text; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === 'text') node.textContent = value;
        else if (key === 'className') node.className = value;
        else if (key.indexOf('on') === 0) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? '' : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // --- API ------------------------------------------------------------------------------


  var api = SB.api;

  function query(params) {
    return Object.keys(params).filter(function (k) {
      return params[k] !== '' && params[k] !== null && params[k] !== undefined;
    }).map(function (k) {
      return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]);
    }).join('&');
  }

  function periodParams() {
    var params = { period: filters.period, tz: window.SB ? SB.timeZone : 'UTC', queue_id: filters.queue_id };
    if (filters.period === 'custom') { params.from = filters.from; params.to = filters.to; }
    return params;
  }

  function showError(node, message) {
    node.textContent = message || '';
    node.hidden = !message;
  }

  // --- words ----------------------------------------------------------------------------

  var METRICS = {
    first_response: function () { return t('First response'); },
    next_response: function () { return t('Next response'); },
    resolution: function () { return t('Resolution'); }
  };
  var PRESENCE = {
    online: function () { return t('Online'); },
    away: function () { return t('Away'); },
    offline: function () { return t('Offline'); }
  };
  var STATUS = {
    new: function () { return t('New'); },
    open: function () { return t('Open'); },
    pending: function () { return t('Pending'); },
    on_hold: function () { return t('On hold'); },
    solved: function () { return t('Solved'); },
    closed: function () { return t('Closed'); }
  };
  var PRIORITY = {
    low: function () { return t('Low'); },
    normal: function () { return t('Normal'); },
    high: function () { return t('High'); },
    urgent: function () { return t('Urgent'); }
  };
  var REASONS = {
    customer_asked: function () { return t('Customer asked for a person'); },
    rule: function () { return t('Inbox rule'); },
    out_of_scope: function () { return t('Out of scope'); },
    second_miss: function () { return t('Two misses in a row'); },
    frustration: function () { return t('Frustration'); },
    engine_unavailable: function () { return t('Bot engine unavailable'); },
    agent_replied: function () { return t('An agent took over'); },
    unknown: function () { return t('Unknown'); }
  };
  function word(table, key) { return table[key] ? table[key]() : String(key || ''); }

  function queueName(id) {
    if (id === null || id === undefined) return t('No queue');
    return queueNames[id] || '#' + id;
  }
  function personName(id) {
    if (id === null || id === undefined) return t('Unassigned');
    return people[id] ? people[id].name : '#' + id;
  }
  function seconds(value) { return value === null || value === undefined ? '–' : SB.formatDuration(value); }
  function percent(value) { return value === null || value === undefined ? '–' : value + '%'; }
  function number(value) { return value === null || value === undefined ? '–' : String(value); }

  // --- the floor: queues and agents -----------------------------------------------------

  function drillButton(label, value, title, params, extraClass) {
    return el('button', {
      type: 'button',
      className: 'sv-number' + (extraClass ? ' ' + extraClass : ''),
      'aria-label': t('{label}: {n} — show the tickets', { label: label, n: value }),
      onclick: function () { openDrill(title, params); }
    }, [String(value)]);
  }

  function countdown(seconds) {
    var node = el('span', { className: 'sv-countdown', 'data-due': String(Date.now() + seconds * 1000) });
    tickCountdown(node);
    return node;
  }

  function tickCountdown(node) {
    var left = Math.round((Number(node.getAttribute('data-due')) - Date.now()) / 1000);
    node.textContent = left >= 0 ? SB.formatDuration(left) : t('overdue {d}', { d: SB.formatDuration(-left) });
    node.classList.toggle('is-overdue', left < 0);
    node.classList.toggle('is-soon', left >= 0 && left < 900);
  }

  function renderQueues() {
    var box = $('sv-queues');
    clear(box);
    box.setAttribute('aria-busy', 'false');
    if (!floor.queues.length) {
      box.appendChild(el('p', { className: 'sv-placeholder', text: t('No queues yet.') }));
      return;
    }
    floor.queues.forEach(function (queue) {
      var name = queueName(queue.id);
      var qid = queue.id === null ? 'none' : queue.id;
      var card = el('article', { className: 'card sv-queue', 'data-queue-id': String(qid), 'aria-label': name }, [
        el('h3', { className: 'sv-queue-name', text: name }),
        el('div', { className: 'sv-kpis' }, [
          el('div', { className: 'kpi' }, [
            drillButton(t('Waiting'), queue.waiting, t('{queue}: waiting', { queue: name }), { queue_id: qid, state: 'waiting' }, 'kpi-value sv-waiting'),
            el('span', { className: 'kpi-label', text: t('Waiting') })
          ]),
          el('div', { className: 'kpi' }, [
            drillButton(t('Open'), queue.open, t('{queue}: open', { queue: name }), { queue_id: qid, state: 'open' }, 'kpi-value sv-open'),
            el('span', { className: 'kpi-label', text: t('Open') })
          ]),
          el('div', { className: 'kpi' + (queue.breached ? ' is-breached' : '') }, [
            drillButton(t('Breached'), queue.breached, t('{queue}: SLA breached', { queue: name }), { queue_id: qid, state: 'breached' }, 'kpi-value sv-breached'),
            el('span', { className: 'kpi-label', text: t('Breached') })
          ])
        ])
      ]);
      var list = el('ol', { className: 'sv-soonest', 'aria-label': t('Time to breach') });
      queue.soonest.forEach(function (clock) {
        list.appendChild(el('li', { className: 'sv-soon-row', 'data-ticket-id': String(clock.ticket_id) }, [
          countdown(clock.seconds_to_breach),
          el('div', { className: 'sv-soon-main' }, [
            el('span', { className: 'sv-soon-ticket' }, [
              el('strong', { text: '#' + clock.ticket_id + ' ' }),
              clock.subject || t('(no subject)')
            ]),
            el('span', { className: 'sv-soon-meta' }, [
              el('span', { className: 'badge' + (clock.priority === 'urgent' || clock.priority === 'high' ? ' badge-warn' : ''), text: word(METRICS, clock.metric) }),
              el('span', { className: 'sv-soon-who', text: personName(clock.assignee_id) })
            ])
          ]),
          reassignButton(clock.ticket_id, clock.assignee_id)
        ]));
      });
      card.appendChild(el('h4', { className: 'sv-subtitle', text: t('Time to breach') }));
      card.appendChild(queue.soonest.length ? list : el('p', { className: 'sv-placeholder', text: t('No SLA clocks running.') }));
      box.appendChild(card);
    });
  }

  function renderAgents() {
    var body = $('sv-agents');
    clear(body);
    if (!floor.agents.length) {
      body.appendChild(el('tr', {}, [el('td', { colspan: '4', text: t('No agents yet.') })]));
      return;
    }
    floor.agents.forEach(function (agent) {
      var capacity = agent.capacity;
      var share = capacity ? Math.min(1, agent.load / capacity) : 0;
      var full = capacity !== null && agent.load >= capacity;
      var tickets = el('ul', { className: 'sv-agent-tickets' });
      agent.tickets.forEach(function (ticket) {
        tickets.appendChild(el('li', { 'data-ticket-id': String(ticket.id) }, [
          el('span', { className: 'sv-ticket-ref', text: '#' + ticket.id + ' ' + (ticket.subject || t('(no subject)')) }),
          ' ',
          reassignButton(ticket.id, agent.id)
        ]));
      });
      body.appendChild(el('tr', { 'data-agent-id': String(agent.id) }, [
        el('th', { scope: 'row' }, [agent.name, el('span', { className: 'sv-agent-role', text: t(agent.role) })]),
        el('td', {}, [el('span', { className: 'sv-presence is-' + agent.presence, text: word(PRESENCE, agent.presence) })]),
        el('td', { className: 'sv-load' + (full ? ' is-full' : '') }, [
          drillButton(t('Load'), agent.load, t('Tickets of {name}', { name: agent.name }), { assignee_id: agent.id }),
          capacity !== null ? ' / ' + capacity : '',
          loadBar(share)
        ]),
        el('td', {}, [agent.tickets.length ? tickets : el('span', { className: 'sv-muted', text: t('None') })])
      ]));
    });
  }

  function loadBar(share) {
    var fill = el('span', { className: 'sv-load-fill' });
    fill.style.width = Math.round(share * 100) + '%'; // CSSOM, which the CSP allows
    return el('span', { className: 'sv-load-bar', 'aria-hidden': 'true' }, [fill]);
  }

  // The floor is re-drawn on every refresh; whoever was on a button there (keyboard or
  // screen reader) stays on the same button afterwards.
  function focusedKey(container) {
    var active = document.activeElement;
    if (!active || !container.contains(active) || !active.getAttribute('aria-label')) return null;
    var label = active.getAttribute('aria-label');
    var same = container.querySelectorAll('[aria-label]');
    var nth = 0;
    for (var i = 0; i < same.length; i++) {
      if (same[i] === active) break;
      if (same[i].getAttribute('aria-label') === label) nth++;
    }
    return { label: label, nth: nth };
  }

  function restoreFocus(container, key) {
    if (!key) return;
    var nth = 0;
    var all = container.querySelectorAll('[aria-label]');
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute('aria-label') !== key.label) continue;
      if (nth++ === key.nth) { all[i].focus(); return; }
    }
  }

  function renderFloor(data) {
    var queuesKey = focusedKey($('sv-queues'));
    var agentsKey = focusedKey($('sv-agents'));
    floor = data;
    people = {};
    data.agents.forEach(function (a) { people[a.id] = a; });
    queueNames = {};
    data.queues.forEach(function (q) { if (q.id !== null) queueNames[q.id] = q.name; });
    renderQueues();
    renderAgents();
    restoreFocus($('sv-queues'), queuesKey);
    restoreFocus($('sv-agents'), agentsKey);
    fillQueueFilter();
    $('sv-updated').textContent = t('Updated {time}', { time: SB.formatTime(data.at) });
  }

  function loadFloor() {
    return api('GET', '/api/v1/supervisor/overview').then(function (data) {
      showError($('sv-error'), '');
      renderFloor(data);
    }, function (err) { showError($('sv-error'), err.message); });
  }

  // One re-read for a burst of events, and at most one every MIN_REFRESH_GAP: a busy
  // floor sends many events, and each re-read counts every active ticket.
  function scheduleRefresh() {
    if (refreshTimer) return;
    var wait = Math.max(REFRESH_DELAY, MIN_REFRESH_GAP - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      lastRefresh = Date.now();
      loadFloor();
      if (drill && $('sv-drill').open) reloadDrill();
    }, wait);
  }

  function fillQueueFilter() {
    var select = $('sv-queue');
    var chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    floor.queues.forEach(function (q) {
      select.appendChild(el('option', { value: q.id === null ? 'none' : String(q.id), text: queueName(q.id) }));
    });
    select.value = chosen;
  }

  // --- alerts -----------------------------------------------------------------------------

  function notify(kind, text) {
    var box = $('sv-alerts');
    var item = el('p', { className: 'alert sv-alert sv-alert-' + kind }, [
      el('span', { text: text }),
      el('button', { type: 'button', className: 'btn btn-ghost btn-sm', onclick: function () { item.remove(); } }, [t('Dismiss')])
    ]);
    box.insertBefore(item, box.firstChild);
    while (box.children.length > 5) box.removeChild(box.lastChild);
  }

  // --- drill-down -------------------------------------------------------------------------

  function openDrill(title, params) {
    drill = { title: title, params: params, cursor: null };
    $('sv-drill-title').textContent = title;
    var csv = Object.assign({}, params, { tz: SB.timeZone });
    $('sv-drill-export').setAttribute('href', '/api/v1/supervisor/tickets.csv?' + query(csv));
    clear($('sv-drill-rows'));
    if (!$('sv-drill').open) $('sv-drill').showModal();
    loadDrillPage(false);
  }

  function reloadDrill() {
    drill.cursor = null;
    loadDrillPage(false);
  }

  function loadDrillPage(more) {
    var params = Object.assign({}, drill.params, { limit: 50 });
    if (more && drill.cursor) params.cursor = drill.cursor;
    var mine = drill;
    return api('GET', '/api/v1/supervisor/tickets?' + query(params)).then(function (data) {
      if (mine !== drill) return;
      var rows = $('sv-drill-rows');
      if (!more) clear(rows);
      data.tickets.forEach(function (ticket) {
        rows.appendChild(el('tr', { 'data-ticket-id': String(ticket.id) }, [
          el('td', { className: 'num', text: String(ticket.id) }),
          el('td', { text: ticket.subject || t('(no subject)') }),
          el('td', { text: word(STATUS, ticket.status) }),
          el('td', { text: word(PRIORITY, ticket.priority) }),
          el('td', { text: queueName(ticket.queue_id) }),
          el('td', { className: 'sv-assignee', text: personName(ticket.assignee_id) }),
          el('td', {}, [reassignButton(ticket.id, ticket.assignee_id)])
        ]));
      });
      drill.cursor = data.next_cursor;
      $('sv-drill-more').hidden = !data.next_cursor;
      $('sv-drill-empty').hidden = rows.children.length > 0;
      showError($('sv-drill-error'), '');
    }, function (err) { showError($('sv-drill-error'), err.message); });
  }

  // --- reassign ---------------------------------------------------------------------------

  function reassignButton(ticketId, assigneeId) {
    return el('button', {
      type: 'button',
      className: 'btn btn-ghost btn-sm sv-reassign',
      'aria-label': t('Reassign ticket #{id}', { id: ticketId }),
      onclick: function () { openAssign(ticketId, assigneeId); }
    }, [t('Reassign')]);
  }

  function openAssign(ticketId, assigneeId) {
    assigning = { ticketId: ticketId };
    $('sv-assign-title').textContent = t('Reassign ticket #{id}', { id: ticketId });
    var select = $('sv-assign-agent');
    clear(select);
    floor.agents.forEach(function (agent) {
      var load = agent.capacity !== null ? agent.load + '/' + agent.capacity : String(agent.load);
      select.appendChild(el('option', {
        value: String(agent.id),
        selected: agent.id === assigneeId,
        text: t('{name} — {presence}, {load} tickets', { name: agent.name, presence: word(PRESENCE, agent.presence), load: load })
      }));
    });
    select.appendChild(el('option', { value: '', text: t('Nobody (back to the queue)'), selected: assigneeId === null }));
    showError($('sv-assign-error'), '');
    $('sv-assign-anyway').hidden = true;
    $('sv-assign').showModal();
    select.focus();
  }

  function submitAssign(overCapacity) {
    var raw = $('sv-assign-agent').value;
    var body = { assignee_id: raw === '' ? null : Number(raw), over_capacity: !!overCapacity };
    var ticketId = assigning.ticketId;
    $('sv-assign-submit').disabled = true;
    return api('POST', '/api/v1/supervisor/tickets/' + ticketId + '/assign', body).then(function (data) {
      $('sv-assign').close();
      notify('ok', t('Ticket #{id} assigned to {name}.', { id: ticketId, name: personName(data.ticket.assignee_id) }));
      scheduleRefresh();
    }, function (err) {
      if (err.status === 409 && err.code === 'over_capacity') {
        showError($('sv-assign-error'), t('Over capacity: {message}. Assign anyway?', { message: err.message }));
        $('sv-assign-anyway').hidden = false;
      } else if (err.status === 409) {
        showError($('sv-assign-error'), t('Conflict: {message}', { message: err.message }));
      } else {
        showError($('sv-assign-error'), err.message);
      }
    }).then(function () { $('sv-assign-submit').disabled = false; });
  }

  // --- charts -----------------------------------------------------------------------------

  function shortDuration(v) {
    if (v >= 3600) return t('{n} h', { n: Math.round(v / 360) / 10 });
    if (v >= 60) return t('{n} min', { n: Math.round(v / 60) });
    return t('{n} s', { n: Math.round(v) });
  }

  function niceMax(value) {
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 432000, 864000];
    for (var i = 0; i < steps.length; i++) if (steps[i] >= value) return steps[i];
    return Math.ceil(value / 864000) * 864000;
  }

  /* Vertical bars per bucket, one colour per series; `onPick(index, series)` drills. */
  function barChart(labels, series, format, onPick, max, axisFormat) {
    var width = 640, height = 220, left = 64, bottom = 34, top = 10;
    var plotW = width - left - 8, plotH = height - top - bottom;
    var values = [];
    series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null) values.push(v); }); });
    if (!values.length || (!max && Math.max.apply(null, values) <= 0)) {
      return el('p', { className: 'sv-placeholder sv-no-data', text: t('No data in this period.') });
    }
    var top_ = max || niceMax(Math.max.apply(null, values));
    var chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'sv-chart', role: 'img', 'aria-hidden': 'true', focusable: 'false' });
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH - f * plotH;
      chart.appendChild(svg('line', { x1: left, x2: width - 8, y1: y, y2: y, class: 'sv-grid', 'aria-hidden': 'true' }));
      var label = svg('text', { x: left - 6, y: y + 4, class: 'sv-axis', 'text-anchor': 'end', 'aria-hidden': 'true' });
      label.textContent = (axisFormat || format)(top_ * f);
      chart.appendChild(label);
    });
    var group = plotW / Math.max(1, labels.length);
    var barW = Math.max(2, Math.min(28, (group - 4) / series.length));
    var every = Math.ceil(labels.length / 10);
    labels.forEach(function (label, i) {
      series.forEach(function (s, j) {
        var v = s.values[i];
        if (v === null || v === undefined) return;
        var h = Math.max(v > 0 ? 1 : 0, (v / top_) * plotH);
        var x = left + i * group + (group - barW * series.length) / 2 + j * barW;
        var bar = svg('rect', { x: x, y: top + plotH - h, width: barW - 1, height: h, class: 'sv-bar ' + s.cls, 'data-bucket': i });
        var tip = svg('title', {});
        tip.textContent = label + ' · ' + s.name + ': ' + format(v);
        bar.appendChild(tip);
        if (onPick) pickable(bar, tip.textContent, function () { onPick(i, s); });
        chart.appendChild(bar);
      });
      if (i % every === 0) {
        var text = svg('text', { x: left + i * group + group / 2, y: height - bottom + 16, class: 'sv-axis', 'text-anchor': 'middle', 'aria-hidden': 'true' });
        text.textContent = label.length === 10 ? label.slice(5) : label;
        chart.appendChild(text);
      }
    });
    return keyboardBars(chart);
  }

  /* Horizontal bars, one per category. */
  function hbarChart(items, onPick) {
    var width = 640, row = 26, left = 200;
    var height = Math.max(1, items.length) * row + 8;
    var top_ = Math.max.apply(null, items.map(function (i) { return i.value; }).concat([1]));
    var chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'sv-chart', role: 'img', 'aria-hidden': 'true', focusable: 'false' });
    items.forEach(function (item, i) {
      var y = 4 + i * row;
      var label = svg('text', { x: left - 8, y: y + 16, class: 'sv-axis', 'text-anchor': 'end', 'aria-hidden': 'true' });
      label.textContent = item.label;
      chart.appendChild(label);
      var w = Math.max(item.value ? 2 : 0, (item.value / top_) * (width - left - 48));
      var bar = svg('rect', { x: left, y: y + 3, width: w, height: row - 8, class: 'sv-bar ' + (item.cls || 'sv-s1') });
      var tip = svg('title', {});
      tip.textContent = item.label + ': ' + item.value;
      bar.appendChild(tip);
      if (onPick) pickable(bar, tip.textContent, function () { onPick(item); });
      chart.appendChild(bar);
      var value = svg('text', { x: left + w + 6, y: y + 16, class: 'sv-axis', 'aria-hidden': 'true' });
      value.textContent = String(item.value);
      chart.appendChild(value);
    });
    return keyboardBars(chart);
  }

  /* A bar that drills down is a button for the keyboard and for screen readers too:
     named by its value, Enter or Space drills as a click does. */
  function pickable(bar, label, pick) {
    bar.setAttribute('role', 'button');
    bar.setAttribute('tabindex', '-1');
    bar.setAttribute('aria-label', label);
    bar.addEventListener('click', pick);
    bar.addEventListener('keydown', function (event) {
      if (event.key !== 'Enter' && event.key !== ' ') return;
      event.preventDefault();
      pick();
    });
  }

  /* A chart with such bars is one Tab stop (its first bar); the arrow keys, Home and End
     move between its bars. A chart without them stays hidden from assistive tech: the
     table view below it says the same. */
  function keyboardBars(chart) {
    var bars = Array.prototype.slice.call(chart.querySelectorAll('.sv-bar[role="button"]'));
    if (!bars.length) return chart;
    chart.removeAttribute('aria-hidden');
    chart.removeAttribute('focusable');
    chart.setAttribute('role', 'group');
    bars[0].setAttribute('tabindex', '0');
    chart.addEventListener('keydown', function (event) {
      var i = bars.indexOf(event.target);
      if (i < 0) return;
      var next = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: bars.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      next = (next + bars.length) % bars.length;
      bars[i].setAttribute('tabindex', '-1');
      bars[next].setAttribute('tabindex', '0');
      bars[next].focus();
    });
    return chart;
  }

  function legend(series) {
    return el('ul', { className: 'sv-legend', 'aria-hidden': 'true' }, series.map(function (s) {
      return el('li', {}, [el('span', { className: 'sv-swatch ' + s.cls }), s.name]);
    }));
  }

  function tableView(caption, head, rows) {
    var table = el('table', { className: 'data-table sv-table' }, [
      el('caption', { className: 'visually-hidden', text: caption }),
      el('thead', {}, [el('tr', {}, head.map(function (h, i) {
        return el('th', { scope: 'col', className: i ? 'num' : '', text: h });
      }))]),
      el('tbody', {}, rows.map(function (cells) {
        return el('tr', {}, cells.map(function (c, i) {
          var cell = el(i ? 'td' : 'th', i ? { className: 'num' } : { scope: 'row' });
          cell.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
          return cell;
        }));
      }))
    ]);
    return el('details', { className: 'sv-details' }, [
      el('summary', { text: t('Show as table') }),
      el('div', { className: 'table-wrap' }, [table])
    ]);
  }

  function reportDrill(report, extra) {
    return Object.assign({ report: report }, periodParams(), extra || {});
  }

  function chartCard(report, title, summary, chart, table, legendNode) {
    var csv = '/api/v1/reports/' + report + '.csv?' + query(periodParams());
    return el('article', { className: 'card sv-chart-card', 'data-report': report, 'aria-labelledby': 'sv-chart-' + report }, [
      el('div', { className: 'sv-chart-head' }, [
        el('h3', { id: 'sv-chart-' + report, className: 'sv-chart-title', text: title }),
        el('a', { className: 'btn btn-ghost btn-sm', href: csv, download: true, 'aria-label': t('Download {report} as CSV', { report: title }) }, [t('CSV')])
      ]),
      el('div', { className: 'sv-summary' }, summary),
      labelChart(chart, 'sv-chart-' + report),
      legendNode || null,
      table
    ]);
  }

  function labelChart(chart, titleId) {
    if (chart.getAttribute('role') === 'group') chart.setAttribute('aria-labelledby', titleId);
    return chart;
  }

  function figure(label, node) {
    return el('div', { className: 'kpi sv-figure' }, [
      typeof node === 'string' ? el('span', { className: 'kpi-value', text: node }) : node,
      el('span', { className: 'kpi-label', text: label })
    ]);
  }

  function drillNumber(label, value, title, params) {
    return drillButton(label, value, title, params, 'kpi-value');
  }

  function cellNumber(label, value, title, params) {
    return drillButton(label, value, title, params, 'sv-cell-number');
  }

  function durationCard(report, title, data) {
    var labels = data.series.map(function (s) { return s.label; });
    var series = [
      { name: t('Median'), cls: 'sv-s1', values: data.series.map(function (s) { return s.median; }) },
      { name: t('90th percentile'), cls: 'sv-s2', values: data.series.map(function (s) { return s.p90; }) }
    ];
    var pick = function (i) {
      openDrill(title + ' · ' + labels[i], reportDrill(report, { bucket: i }));
    };
    var summary = [
      figure(t('Median'), seconds(data.total.median)),
      figure(t('90th percentile'), seconds(data.total.p90)),
      figure(t('Tickets'), drillNumber(t('Tickets'), data.total.count, title, reportDrill(report)))
    ];
    if (data.total.unanswered !== undefined) {
      summary.push(figure(t('Not answered yet'), drillNumber(t('Not answered yet'), data.total.unanswered, title + ' · ' + t('Not answered yet'), reportDrill(report, { part: 'unanswered' }))));
    }
    var rows = data.series.map(function (s, i) {
      return [s.label, cellNumber(t('Tickets'), s.count, title + ' · ' + s.label, reportDrill(report, { bucket: i })), seconds(s.median), seconds(s.p90)];
    });
    return chartCard(report, title, summary, barChart(labels, series, function (v) { return SB.formatDuration(v); }, pick, null, shortDuration),
      tableView(title, [t('Period'), t('Tickets'), t('Median'), t('90th percentile')], rows), legend(series));
  }

  function slaCard(data) {
    var title = t('SLA hit rate');
    var labels = data.series.map(function (s) { return s.label; });
    var series = [{ name: t('Hit rate'), cls: 'sv-s3', values: data.series.map(function (s) { return s.rate; }) }];
    var summary = [
      figure(t('Hit rate'), percent(data.total.rate)),
      figure(t('Hit'), drillNumber(t('Hit'), data.total.hit, title + ' · ' + t('Hit'), reportDrill('sla', { part: 'hit' }))),
      figure(t('Missed'), drillNumber(t('Missed'), data.total.missed, title + ' · ' + t('Missed'), reportDrill('sla', { part: 'missed' })))
    ];
    var rows = data.series.map(function (s, i) {
      return [s.label,
        cellNumber(t('Hit'), s.hit, title + ' · ' + s.label, reportDrill('sla', { bucket: i, part: 'hit' })),
        cellNumber(t('Missed'), s.missed, title + ' · ' + s.label, reportDrill('sla', { bucket: i, part: 'missed' })),
        percent(s.rate)];
    });
    Object.keys(data.by_metric).forEach(function (metric) {
      var m = data.by_metric[metric];
      rows.push([word(METRICS, metric),
        cellNumber(t('Hit'), m.hit, title + ' · ' + word(METRICS, metric), reportDrill('sla', { part: 'hit', metric: metric })),
        cellNumber(t('Missed'), m.missed, title + ' · ' + word(METRICS, metric), reportDrill('sla', { part: 'missed', metric: metric })),
        percent(m.rate)]);
    });
    var pick = function (i) { openDrill(title + ' · ' + labels[i], reportDrill('sla', { bucket: i })); };
    return chartCard('sla', title, summary, barChart(labels, series, function (v) { return Math.round(v) + '%'; }, pick, 100),
      tableView(title, [t('Period'), t('Hit'), t('Missed'), t('Hit rate')], rows));
  }

  function csatCard(data) {
    var title = t('Customer satisfaction (CSAT)');
    var items = ['1', '2', '3', '4', '5'].map(function (r) {
      return { label: t('Rating {n}', { n: r }), value: data.distribution[r], rating: r, cls: Number(r) >= 4 ? 'sv-s3' : Number(r) <= 2 ? 'sv-s4' : 'sv-s2' };
    });
    var summary = [
      figure(t('Average'), data.total.average === null ? '–' : String(data.total.average)),
      figure(t('Satisfied'), percent(data.total.satisfied_percent)),
      figure(t('Ratings'), drillNumber(t('Ratings'), data.total.count, title, reportDrill('csat')))
    ];
    var rows = items.map(function (item) {
      return [item.label, cellNumber(item.label, item.value, title + ' · ' + item.label, reportDrill('csat', { part: item.rating }))];
    });
    var pick = function (item) { openDrill(title + ' · ' + item.label, reportDrill('csat', { part: item.rating })); };
    return chartCard('csat', title, summary, hbarChart(items, pick), tableView(title, [t('Rating'), t('Ratings')], rows));
  }

  function containmentCard(data) {
    var title = t('Bot containment');
    var labels = data.series.map(function (s) { return s.label; });
    var series = [{ name: t('Contained'), cls: 'sv-s1', values: data.series.map(function (s) { return s.rate; }) }];
    var summary = [
      figure(t('Contained'), percent(data.total.rate)),
      figure(t('Bot conversations'), number(data.total.conversations)),
      figure(t('Handed off'), drillNumber(t('Handed off'), data.total.handed_off, title + ' · ' + t('Handed off'), reportDrill('containment', { part: 'handed_off' })))
    ];
    var rows = data.series.map(function (s, i) {
      return [s.label, number(s.conversations), number(s.contained),
        cellNumber(t('Handed off'), s.handed_off, title + ' · ' + s.label, reportDrill('containment', { bucket: i, part: 'handed_off' })),
        percent(s.rate)];
    });
    return chartCard('containment', title, summary, barChart(labels, series, function (v) { return Math.round(v) + '%'; }, null, 100),
      tableView(title, [t('Period'), t('Bot conversations'), t('Contained'), t('Handed off'), t('Containment')], rows));
  }

  function reasonsCard(data) {
    var title = t('Hand-off reasons');
    var items = data.reasons.map(function (r) { return { label: word(REASONS, r.reason), value: r.count, reason: r.reason }; });
    var pick = function (item) { openDrill(title + ' · ' + item.label, reportDrill('handoff_reasons', { reason: item.reason })); };
    var rows = items.map(function (item) {
      return [item.label, cellNumber(item.label, item.value, title + ' · ' + item.label, reportDrill('handoff_reasons', { reason: item.reason }))];
    });
    var chart = items.length ? hbarChart(items, pick) : el('p', { className: 'sv-placeholder', text: t('No hand-offs in this period.') });
    return chartCard('handoff_reasons', title, [figure(t('Hand-offs'), number(data.total.count))], chart,
      tableView(title, [t('Reason'), t('Hand-offs')], rows));
  }

  /* Which chart bar has the keyboard focus (its chart and place), to keep it there when
     the charts are drawn again. */
  function focusedBar(box) {
    var active = document.activeElement;
    if (!active || !box.contains(active) || !active.classList || !active.classList.contains('sv-bar')) return null;
    var card = active.closest('[data-report]');
    var bars = Array.prototype.slice.call(card.querySelectorAll('.sv-bar[role="button"]'));
    return { report: card.getAttribute('data-report'), nth: bars.indexOf(active) };
  }

  function refocusBar(box, focused) {
    var card = box.querySelector('[data-report="' + focused.report + '"]');
    var bars = card ? card.querySelectorAll('.sv-bar[role="button"]') : [];
    var bar = bars[Math.min(focused.nth, bars.length - 1)];
    if (!bar) return;
    Array.prototype.forEach.call(bars, function (b) { b.setAttribute('tabindex', '-1'); });
    bar.setAttribute('tabindex', '0');
    bar.focus();
  }

  function loadReports() {
    var box = $('sv-charts');
    box.setAttribute('aria-busy', 'true');
    var params = query(periodParams());
    $('sv-export-tickets').setAttribute('href', '/api/v1/supervisor/tickets.csv?' + query({ queue_id: filters.queue_id, tz: SB.timeZone }));
    $('sv-tz').textContent = t('Times in {tz}', { tz: SB.timeZone });
    return Promise.all(REPORTS.map(function (name) {
      return api('GET', '/api/v1/reports/' + name + '?' + params);
    })).then(function (results) {
      var focused = focusedBar(box);
      clear(box);
      box.appendChild(durationCard('first_response', t('First response time'), results[0]));
      box.appendChild(durationCard('resolution', t('Resolution time'), results[1]));
      box.appendChild(slaCard(results[2]));
      box.appendChild(csatCard(results[3]));
      box.appendChild(containmentCard(results[4]));
      box.appendChild(reasonsCard(results[5]));
      if (focused) refocusBar(box, focused);
      box.setAttribute('aria-busy', 'false');
      showError($('sv-error'), '');
    }, function (err) {
      box.setAttribute('aria-busy', 'false');
      showError($('sv-error'), err.message);
    });
  }

  // --- live ---------------------------------------------------------------------------------

  function setConnection(kind) {
    var pill = $('connection-status');
    if (!pill) return;
    pill.classList.remove('is-live', 'is-reconnecting', 'is-connecting');
    pill.classList.add(kind === 'live' ? 'is-live' : 'is-reconnecting');
    pill.textContent = kind === 'live' ? t('Live') : t('Reconnecting…');
    pill.dataset.state = kind;
  }

  function handleFrame(frame) {
    var type = frame && frame.type;
    if (!type) return;
    if (type === 'ticket.sla_breached') {
      var d = frame.data;
      notify('danger', t('SLA breached: ticket #{id} ({metric})', { id: d.ticket_id, metric: word(METRICS, d.metric) }));
    } else if (type === 'ticket.sla_warning') {
      notify('warn', t('About to breach: ticket #{id} ({metric})', { id: frame.data.ticket_id, metric: word(METRICS, frame.data.metric) }));
    }
    if (type.indexOf('ticket.') === 0 || type === 'agent.presence_changed' || type === 'resync') {
      scheduleRefresh();
    }
  }

  function startLive() {
    if (!window.SwitchboardLiveSocket) return;
    window.SwitchboardLiveSocket({
      url: function () {
        return (window.location.protocol === 'https:' ? 'wss' : 'ws') + '://' + window.location.host + '/inbox/ws';
      },
      onOpen: function () { setConnection('live'); scheduleRefresh(); },
      onFrame: handleFrame,
      onClose: function () { setConnection('reconnecting'); }
    }).start();
  }

  // --- start --------------------------------------------------------------------------------

  function init() {
    $('sv-period').addEventListener('change', function () {
      var custom = this.value === 'custom';
      $('sv-custom-from').hidden = !custom;
      $('sv-custom-to').hidden = !custom;
    });
    $('sv-filters').addEventListener('submit', function (event) {
      event.preventDefault();
      filters.period = $('sv-period').value;
      filters.from = $('sv-from').value;
      filters.to = $('sv-to').value;
      filters.queue_id = $('sv-queue').value;
      if (filters.period === 'custom' && (!filters.from || !filters.to)) {
        showError($('sv-error'), t('Choose both dates of the custom range.'));
        return;
      }
      loadReports();
    });
    Array.prototype.forEach.call(document.querySelectorAll('dialog [data-close]'), function (button) {
      button.addEventListener('click', function () { button.closest('dialog').close(); });
    });
    $('sv-drill').addEventListener('close', function () { drill = null; });
    $('sv-drill-more').addEventListener('click', function () { loadDrillPage(true); });
    $('sv-assign-form').addEventListener('submit', function (event) {
      event.preventDefault();
      submitAssign(false);
    });
    $('sv-assign-anyway').addEventListener('click', function () { submitAssign(true); });
    setInterval(function () {
      Array.prototype.forEach.call(document.querySelectorAll('.sv-countdown'), tickCountdown);
    }, 1000);
    loadFloor().then(loadReports);
    // Today's charts fill in as the day goes on; longer periods change little.
    setInterval(function () {
      if (filters.period === 'today' && !document.hidden) loadReports();
    }, 60000);
    startLive();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
