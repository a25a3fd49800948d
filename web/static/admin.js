/* The admin console (web/templates/admin.html): fills the current section from the JSON
 * API and sends every change through it. Everything shown is set with textContent (or,
 * for rendered Markdown, HTML the server's safe renderer produced), never built from
 * strings. */
(function () {
  'use strict';

  var root = document.getElementById('admin');
  if (!root) return;
  var SB = window.SB;
  var t = SB.t;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  var statusBox = document.getElementById('admin-status');
  var publicUrl = root.getAttribute('data-public-url') || '';
  var API = '/api/v1';

  // --- helpers -----------------------------------------------------------------------

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  function api(method, path, body) {
    var options = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      options.headers['Content-Type'] = 'application/json';
      options.headers['X-CSRF-Token'] = csrf;
      options.body = JSON.stringify(body || {});
    }
    return fetch(API + path, options).then(function (response) {
      return response.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (err) { data = null; }
        if (response.status === 401) {
          window.location.assign('/login?next=' + encodeURIComponent(window.location.pathname));
        }
        if (!response.ok) {
          var error = (data && data.error) || {};
          throw new ApiError(response.status, error.code || 'error', error.message || t('Something went wrong.'));
        }
        return data;
      });
    });
  }

  function say(message, kind) {
    statusBox.hidden = false;
    statusBox.className = 'alert ' + (kind === 'error' ? 'alert-error' : 'alert-success');
    statusBox.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    statusBox.textContent = message;
  }

  function failed(err) {
    say(err && err.message ? err.message : t('Something went wrong.'), 'error');
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === 'text') node.textContent = value;
      else if (name === 'className') node.className = value;
      else if (name === 'onclick') node.addEventListener('click', value);
      else if (name === 'onchange') node.addEventListener('change', value);
      else if (name === 'onsubmit') node.addEventListener('submit', value);
      else node.setAttribute(name, value === true ? '' : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function button(label, handler, className) {
    return el('button', { type: 'button', className: 'btn btn-sm ' + (className || ''), text: label, onclick: handler });
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function cell(text) {
    return el('td', { text: text === null || text === undefined ? '' : String(text) });
  }

  function rows(tbody, items, render) {
    clear(tbody);
    items.forEach(function (item) { tbody.appendChild(render(item)); });
  }

  function $(id) { return document.getElementById(id); }

  function percent(value) {
    return Math.round((value || 0) * 1000) / 10 + ' %';
  }

  function lines(text) {
    return text.split('\n').map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function list(text) {
    return text.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
  }

  var usersById = {};
  function loadUsers() {
    var all = [];
    function page(cursor) {
      return api('GET', '/users' + (cursor ? '?cursor=' + encodeURIComponent(cursor) : '')).then(function (data) {
        all = all.concat(data.users);
        return data.next_cursor ? page(data.next_cursor) : all;
      });
    }
    return page(null).then(function (users) {
      usersById = {};
      users.forEach(function (u) { usersById[u.id] = u; });
      return users;
    });
  }

  function userLabel(id) {
    var u = usersById[id];
    return u ? u.name + ' <' + u.email + '>' : (id === null ? t('system') : '#' + id);
  }

  // --- knowledge base ------------------------------------------------------------------

  function kbSection() {
    var current = null; // the article being edited (null: a new one)
    var list_ = $('kb-list');
    var form = $('kb-editor');
    var previewTimer = null;
    var dirty = false; // the form differs from what was last loaded or saved

    function published() {
      return !!current && current.status === 'published';
    }

    function fill(article) {
      current = article;
      dirty = false;
      // A published article with a pending draft: the form edits the draft.
      var shown = article && article.draft ? article.draft : article;
      $('kb-key').value = article ? article.key : '';
      $('kb-key').readOnly = !!article;
      $('kb-question').value = shown ? shown.question : '';
      $('kb-phrasings').value = shown ? shown.phrasings.join('\n') : '';
      $('kb-answer').value = shown ? shown.answer_markdown : '';
      $('kb-locale').value = shown ? shown.locale : 'en';
      $('kb-category').value = shown ? shown.category : '';
      $('kb-tags').value = shown ? shown.tags.join(', ') : '';
      $('kb-note').value = '';
      $('kb-save-live').checked = false;
      var state = $('kb-editor-state');
      state.textContent = article ? (article.status === 'published' ? t('Published') : t('Draft')) + ' · v' + article.version : t('New');
      state.className = 'badge ' + (article && article.status === 'published' ? 'badge-ok' : '');
      var drafted = !!(article && article.draft);
      $('kb-draft-banner').hidden = !drafted;
      if (drafted) {
        $('kb-draft-meta').textContent = t('Version {n}, saved by {who} at {when}.', {
          n: article.draft.version,
          who: userLabel(article.draft.author_user_id),
          when: SB.formatDateTime(article.draft.saved_at)
        });
      }
      $('kb-save').textContent = published() ? t('Save draft') : t('Save');
      $('kb-publish').textContent = drafted ? t('Publish draft') : t('Publish');
      $('kb-publish').disabled = !article;
      $('kb-unpublish').disabled = !published();
      $('kb-live-hint').hidden = !published();
      $('kb-live-choice').hidden = !published();
      $('kb-diff').hidden = true;
      preview();
      history();
      markSelected();
    }

    function markSelected() {
      Array.prototype.forEach.call(list_.querySelectorAll('[data-article-id]'), function (item) {
        var on = current && String(current.id) === item.getAttribute('data-article-id');
        item.querySelector('button').setAttribute('aria-pressed', on ? 'true' : 'false');
      });
    }

    var PAGE = 100;
    var shown = 0;

    function load(more) {
      var params = new URLSearchParams();
      var q = $('kb-search').value.trim();
      if (q) params.set('q', q);
      if ($('kb-status').value) params.set('status', $('kb-status').value);
      if (!more) shown = 0;
      params.set('limit', String(PAGE));
      params.set('offset', String(shown));
      return api('GET', '/kb/articles?' + params.toString()).then(function (data) {
        if (!more) clear(list_);
        shown += data.articles.length;
        $('kb-more').hidden = data.articles.length < PAGE;
        $('kb-list-empty').hidden = shown > 0;
        data.articles.forEach(function (a) {
          var badge = el('span', {
            className: 'badge ' + (a.status === 'published' ? 'badge-ok' : ''),
            text: a.status === 'published' ? t('Published') : t('Draft')
          });
          list_.appendChild(el('li', { 'data-article-id': a.id }, [
            el('button', { type: 'button', className: 'admin-list-item', 'aria-pressed': 'false', onclick: function () { open(a.id); } }, [
              el('span', { className: 'admin-list-title', text: a.question }),
              el('span', { className: 'admin-list-meta', text: a.key + ' · ' + a.locale + ' ' }, [
                badge,
                a.draft ? ' ' : null,
                a.draft ? el('span', { className: 'badge badge-warn', text: t('Draft pending') }) : null
              ])
            ])
          ]));
        });
        markSelected();
      }).catch(failed);
    }

    function open(id) {
      return api('GET', '/kb/articles/' + id).then(function (data) { fill(data.article); }).catch(failed);
    }

    function body() {
      var data = {
        question: $('kb-question').value,
        phrasings: lines($('kb-phrasings').value),
        answer_markdown: $('kb-answer').value,
        locale: $('kb-locale').value.trim(),
        category: $('kb-category').value,
        tags: list($('kb-tags').value),
        change_note: $('kb-note').value
      };
      if (!current) data.key = $('kb-key').value.trim();
      // A published article: the save goes to its draft unless asked to go live.
      if (published() && !$('kb-save-live').checked) data.as_draft = true;
      return data;
    }

    function save() {
      var request = current
        ? api('PATCH', '/kb/articles/' + current.id, body())
        : api('POST', '/kb/articles', body());
      return request.then(function (data) {
        fill(data.article);
        load();
        return data.article;
      });
    }

    function preview() {
      api('POST', '/kb/preview', { answer_markdown: $('kb-answer').value }).then(function (data) {
        // HTML from the server's allow-list renderer (knowledge_base.markdown.render_answer).
        $('kb-preview').innerHTML = data.html;
      }).catch(function () { /* a preview that failed leaves the last one */ });
    }

    function history() {
      var tbody = $('kb-history').querySelector('tbody');
      clear(tbody);
      if (!current) return;
      api('GET', '/kb/articles/' + current.id + '/versions').then(function (data) {
        var versions = data.versions.slice().reverse();
        var draftVersion = current.draft ? current.draft.version : null;
        rows(tbody, versions, function (v) {
          var actions = el('td', { className: 'admin-actions' }, [
            v.version > 1 ? button(t('Diff'), function () { diff(v.version - 1, v.version); }) : null,
            v.version !== current.version && v.version !== draftVersion
              ? button(t('Revert to this'), function () { revert(v.version); }, 'btn-ghost') : null
          ]);
          var label = v.is_draft ? t('Draft save') : v.status === 'published' ? t('Published') : t('Draft');
          var marks = [];
          if (v.version === current.version && current.status === 'published') marks.push(el('span', { className: 'badge badge-ok', text: t('live') }));
          if (v.version === draftVersion) marks.push(el('span', { className: 'badge badge-warn', text: t('pending draft') }));
          return el('tr', { 'data-version': v.version, className: v.is_draft ? 'admin-draft-row' : null }, [
            el('td', {}, ['v' + v.version + ' · ' + label + ' '].concat(marks)),
            cell(userLabel(v.author_user_id)),
            cell(SB.formatDateTime(v.created_at)),
            cell(v.change_note),
            actions
          ]);
        });
      }).catch(failed);
    }

    function diff(from, to) {
      api('GET', '/kb/articles/' + current.id + '/diff?from=' + from + '&to=' + to).then(function (data) {
        var box = $('kb-diff-body');
        clear(box);
        $('kb-diff-title').textContent = t('Changes from version {a} to {b}', { a: data.from, b: data.to });
        if (!data.fields.length) box.appendChild(el('p', { className: 'field-hint', text: t('No changes.') }));
        data.fields.forEach(function (field) {
          var pre = el('pre', { className: 'admin-diff-lines' });
          field.lines.forEach(function (line) {
            var kind = line.op === '+' ? 'add' : line.op === '-' ? 'del' : line.op === '@' ? 'hunk' : 'same';
            pre.appendChild(el('span', { className: 'diff-' + kind, text: (line.op === '@' ? '' : line.op) + line.text + '\n' }));
          });
          box.appendChild(el('h4', { text: field.field }));
          box.appendChild(pre);
        });
        $('kb-diff').hidden = false;
      }).catch(failed);
    }

    function revert(version) {
      if (!window.confirm(t('Revert to version {n}? This saves a new version.', { n: version }))) return;
      var asDraft = published() && !$('kb-save-live').checked;
      api('POST', '/kb/articles/' + current.id + '/revert', { version: version, as_draft: asDraft }).then(function (data) {
        fill(data.article);
        load();
        if (asDraft && data.article.draft) say(t('Reverted into the draft (version {n}); publish it to go live.', { n: data.article.draft.version }));
        else say(t('Reverted: saved as version {n}.', { n: data.article.version }));
      }).catch(failed);
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      save().then(function (article) {
        if (article.draft) say(t('Draft saved: not live yet. Publish it when it is ready.'));
        else say(article.status === 'published' ? t('Saved: the published answer changed.') : t('Saved as a draft version.'));
      }).catch(failed);
    });
    $('kb-draft-diff').addEventListener('click', function () {
      if (current && current.draft) diff(current.version, current.draft.version);
    });
    $('kb-draft-discard').addEventListener('click', function () {
      if (!current || !current.draft) return;
      if (!window.confirm(t('Discard the draft? The live article stays as it is.'))) return;
      api('DELETE', '/kb/articles/' + current.id + '/draft').then(function (data) {
        fill(data.article);
        load();
        say(t('Draft discarded: the live article is unchanged.'));
      }).catch(failed);
    });
    form.addEventListener('input', function () { dirty = true; });
    $('kb-publish').addEventListener('click', function () {
      // Unsaved edits are saved first (a published article's into its draft).
      (dirty || !current ? save() : Promise.resolve(current)).then(function (article) {
        return api('POST', '/kb/articles/' + article.id + '/publish');
      }).then(function (data) {
        fill(data.article);
        load();
        say(t('Published: the bot answers with it once it has retrained.'));
      }).catch(failed);
    });
    $('kb-unpublish').addEventListener('click', function () {
      api('POST', '/kb/articles/' + current.id + '/unpublish').then(function (data) {
        fill(data.article);
        load();
        say(t('Unpublished: back to draft.'));
      }).catch(failed);
    });
    $('kb-new').addEventListener('click', function () { fill(null); $('kb-key').focus(); });
    $('kb-filter').addEventListener('submit', function (event) { event.preventDefault(); load(false); });
    $('kb-status').addEventListener('change', function () { load(false); });
    $('kb-more').addEventListener('click', function () { load(true); });
    $('kb-answer').addEventListener('input', function () {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(preview, 300);
    });

    // try the bot
    api('GET', '/inboxes').then(function (data) {
      data.inboxes.forEach(function (inbox) {
        $('try-inbox').appendChild(el('option', { value: inbox.id, text: inbox.name + ' (' + inbox.kind + ')' }));
      });
    }).catch(function () {});
    var tryTimer = null;
    $('try-text').addEventListener('input', function () {
      clearTimeout(tryTimer);
      if ($('try-text').value.trim().length >= 3) {
        tryTimer = setTimeout(function () { $('try-form').requestSubmit(); }, 700);
      }
    });
    $('try-form').addEventListener('submit', function (event) {
      event.preventDefault();
      clearTimeout(tryTimer);
      var payload = { text: $('try-text').value };
      if ($('try-inbox').value) payload.inbox_id = Number($('try-inbox').value);
      $('try-submit').disabled = true;
      api('POST', '/bot/try', payload).then(function (data) {
        $('try-result').hidden = false;
        $('try-decision').textContent = decisionLabel(data.decision);
        $('try-decision').className = 'badge ' + (data.decision === 'answer' ? 'badge-ok' : 'badge-warn');
        $('try-article').textContent = data.article ? data.article.question + ' (' + data.article.key + ')' : t('none');
        $('try-confidence').textContent = percent(data.confidence);
        // Safe HTML from the server's renderer, or the bot's plain reply as text.
        if (data.article) $('try-answer').innerHTML = data.article.answer_html;
        else $('try-answer').textContent = data.text;
        var alternatives = $('try-alternatives');
        clear(alternatives);
        data.alternatives.forEach(function (alt) {
          var title = alt.article ? alt.article.question : alt.topic;
          alternatives.appendChild(el('li', {}, [
            el('span', { text: title }),
            ' ',
            el('span', { className: 'badge', text: percent(alt.confidence) })
          ]));
        });
      }).catch(failed).then(function () { $('try-submit').disabled = false; });
    });

    load(false);
    loadUsers().catch(function () {});
    fill(null);
  }

  function decisionLabel(kind) {
    var labels = {
      answer: t('Answers'),
      clarify: t('Offers choices'),
      rephrase: t('Asks to rephrase'),
      small_talk: t('Small talk'),
      handoff: t('Hands off to a person')
    };
    return labels[kind] || kind;
  }

  // --- users -------------------------------------------------------------------------

  function usersSection() {
    var tbody = $('users-table').querySelector('tbody');
    var me = Number(root.getAttribute('data-user-id'));

    function load() {
      Promise.all([loadUsers(), api('GET', '/queues')]).then(function (both) {
        var queues = {};
        both[1].queues.forEach(function (q) { queues[q.id] = q.name; });
        rows(tbody, both[0], function (u) { return userRow(u, queues); });
      }).catch(failed);
    }

    function change(user, body, done) {
      api('PATCH', '/users/' + user.id, body).then(function () {
        say(done);
        load();
      }).catch(function (err) { failed(err); load(); });
    }

    function userRow(u, queues) {
      var role = el('select', { 'aria-label': t('Role of {name}', { name: u.name }) }, ['agent', 'supervisor', 'admin'].map(function (r) {
        return el('option', { value: r, text: t(r), selected: r === u.role });
      }));
      role.addEventListener('change', function () {
        change(u, { role: role.value }, t('Role changed.'));
      });
      var state = el('span', { className: 'badge ' + (u.active ? 'badge-ok' : 'badge-danger'), text: u.active ? t('active') : t('deactivated') });
      var actions = el('td', { className: 'admin-actions' }, [
        u.active
          ? button(t('Deactivate'), function () {
            if (window.confirm(t('Deactivate {name}? Their sessions and API tokens end now.', { name: u.name }))) {
              change(u, { active: false }, t('Deactivated: every session and token ended.'));
            }
          }, 'btn-ghost')
          : button(t('Reactivate'), function () { change(u, { active: true }, t('Reactivated.')); }),
        button(t('Reset password'), function () {
          if (!window.confirm(t('Give {name} a new one-time password? Their sessions end now.', { name: u.name }))) return;
          api('POST', '/users/' + u.id + '/password').then(function (data) {
            showPassword(u.email, data.password);
          }).catch(failed);
        }, 'btn-ghost')
      ]);
      return el('tr', { 'data-user-id': u.id }, [
        cell(u.name + (u.id === me ? ' (' + t('you') + ')' : '')),
        cell(u.email),
        el('td', {}, [role]),
        el('td', {}, [state]),
        cell(u.queue_ids.map(function (id) { return queues[id] || '#' + id; }).join(', ')),
        actions
      ]);
    }

    function showPassword(email, password) {
      var box = $('user-password-once');
      clear(box);
      box.appendChild(document.createTextNode(t('One-time password for {email} (shown only now):', { email: email }) + ' '));
      box.appendChild(el('code', { id: 'one-time-password', text: password }));
      box.hidden = false;
    }

    $('user-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var body = { email: $('user-email').value, name: $('user-name').value, role: $('user-role').value };
      if ($('user-password').value) body.password = $('user-password').value;
      api('POST', '/users', body).then(function (data) {
        $('user-form').reset();
        if (data.password) showPassword(data.user.email, data.password);
        else say(t('User added.'));
        load();
      }).catch(failed);
    });
    load();
  }

  // --- queues and agents -------------------------------------------------------------

  function queuesSection() {
    var box = $('queues');
    var agentsBody = $('agents-table').querySelector('tbody');

    function load() {
      Promise.all([api('GET', '/queues'), api('GET', '/agents'), loadUsers()]).then(function (all) {
        var agents = all[1].agents;
        clear(box);
        all[0].queues.forEach(function (q) { box.appendChild(queueCard(q, agents)); });
        rows(agentsBody, agents, agentRow);
      }).catch(failed);
    }

    function queueCard(q, agents) {
      var members = el('ul', { className: 'admin-members' });
      q.member_ids.forEach(function (id) {
        members.appendChild(el('li', {}, [
          el('span', { text: userLabel(id) }),
          button(t('Remove'), function () {
            api('DELETE', '/queues/' + q.id + '/members/' + id).then(load).catch(failed);
          }, 'btn-ghost')
        ]));
      });
      var pick = el('select', { 'aria-label': t('Add a member to {queue}', { queue: q.name }) }, [el('option', { value: '', text: t('Add a member…') })]);
      agents.forEach(function (a) {
        if (q.member_ids.indexOf(a.id) === -1) pick.appendChild(el('option', { value: a.id, text: a.name }));
      });
      pick.addEventListener('change', function () {
        if (!pick.value) return;
        api('PUT', '/queues/' + q.id + '/members/' + pick.value).then(load).catch(failed);
      });
      return el('section', { className: 'card', 'data-queue-id': q.id }, [
        el('h2', { className: 'section-title', text: q.name }),
        el('p', { className: 'field-hint', text: t('Strategy: {s}', { s: q.strategy }) }),
        members,
        pick,
        el('div', { className: 'toolbar admin-gap' }, [
          button(t('Delete queue'), function () {
            if (!window.confirm(t('Delete the queue {queue}?', { queue: q.name }))) return;
            api('DELETE', '/queues/' + q.id).then(load).catch(failed);
          }, 'btn-ghost')
        ])
      ]);
    }

    function agentRow(a) {
      var skills = el('input', { value: (a.skills || []).join(', '), 'aria-label': t('Skills of {name}', { name: a.name }) });
      var languages = el('input', { value: (a.languages || []).join(', '), 'aria-label': t('Languages of {name}', { name: a.name }) });
      var capacity = el('input', { type: 'number', min: '0', max: '1000', value: a.capacity, 'aria-label': t('Capacity of {name}', { name: a.name }), className: 'admin-narrow' });
      return el('tr', { 'data-agent-id': a.id }, [
        cell(a.name),
        el('td', {}, [skills]),
        el('td', {}, [languages]),
        el('td', {}, [capacity]),
        el('td', {}, [button(t('Save'), function () {
          api('PATCH', '/agents/' + a.id, {
            skills: list(skills.value), languages: list(languages.value), capacity: Number(capacity.value)
          }).then(function () { say(t('Saved.')); }).catch(failed);
        })])
      ]);
    }

    $('queue-form').addEventListener('submit', function (event) {
      event.preventDefault();
      api('POST', '/queues', { name: $('queue-name').value }).then(function () {
        $('queue-name').value = '';
        load();
      }).catch(failed);
    });
    load();
  }

  // --- inboxes -------------------------------------------------------------------------

  function inboxesSection() {
    var box = $('inboxes');

    function load() {
      api('GET', '/inboxes').then(function (data) {
        clear(box);
        data.inboxes.forEach(function (inbox) { box.appendChild(inboxCard(inbox)); });
      }).catch(failed);
    }

    function fraction(label, value) {
      var id = 'f' + Math.random().toString(36).slice(2);
      var input = el('input', { id: id, type: 'number', min: '0', max: '1', step: '0.05', value: value, className: 'admin-narrow' });
      return { input: input, field: el('div', { className: 'field' }, [el('label', { for: id, text: label }), input]) };
    }

    function inboxCard(inbox) {
      var where = el('div', { className: 'admin-where' });
      if (inbox.webhook_url) {
        where.appendChild(el('p', {}, [el('span', { className: 'field-label', text: t('Webhook URL') + ' ' }), el('code', { className: 'webhook-url', text: inbox.webhook_url })]));
      }
      if (inbox.widget_key) {
        var snippet = '<script src="' + publicUrl + '/widget.js" data-inbox="' + inbox.widget_key + '" async></' + 'script>';
        where.appendChild(el('p', {}, [el('span', { className: 'field-label', text: t('Embed on your site') })]));
        where.appendChild(el('pre', { className: 'admin-code embed-snippet', text: snippet }));
      }
      var result = el('p', { className: 'field-hint', role: 'status' });
      var test = button(t('Test connection'), function () {
        result.textContent = t('Testing…');
        api('POST', '/inboxes/' + inbox.id + '/test').then(function (data) {
          result.textContent = (data.ok ? t('Connected') : t('Failed')) + ': ' + data.detail;
          result.className = 'field-hint ' + (data.ok ? 'admin-ok' : 'admin-bad');
        }).catch(function (err) { result.textContent = err.message; });
      });

      var botOn = el('input', { type: 'checkbox', id: 'bot-on-' + inbox.id, checked: inbox.bot_enabled });
      var confidence = fraction(t('Answer at confidence'), 0.5);
      var margin = fraction(t('Lead over the runner-up'), 0.2);
      var gap = fraction(t('Offer choices within'), 0.3);
      api('GET', '/inboxes/' + inbox.id + '/bot').then(function (data) {
        confidence.input.value = data.settings.confidence;
        margin.input.value = data.settings.margin;
        gap.input.value = data.settings.clarify_gap;
      }).catch(function () {});
      var botForm = el('form', { className: 'admin-form' }, [
        el('div', { className: 'admin-check' }, [botOn, el('label', { for: 'bot-on-' + inbox.id, text: t('Bot answers in this inbox') })]),
        el('div', { className: 'admin-row' }, [confidence.field, margin.field, gap.field]),
        el('button', { type: 'submit', className: 'btn btn-sm', text: t('Save bot settings') })
      ]);
      botForm.addEventListener('submit', function (event) {
        event.preventDefault();
        api('PATCH', '/inboxes/' + inbox.id + '/bot', {
          bot_enabled: botOn.checked,
          confidence: Number(confidence.input.value),
          margin: Number(margin.input.value),
          clarify_gap: Number(gap.input.value)
        }).then(function () { say(t('Bot settings saved.')); }).catch(failed);
      });

      var csat = el('input', { type: 'checkbox', id: 'csat-' + inbox.id });
      api('GET', '/inboxes/' + inbox.id + '/csat').then(function (data) { csat.checked = !!data.enabled; }).catch(function () {});
      csat.addEventListener('change', function () {
        api('PUT', '/inboxes/' + inbox.id + '/csat', { enabled: csat.checked }).then(function () {
          say(csat.checked ? t('Satisfaction surveys on.') : t('Satisfaction surveys off.'));
        }).catch(failed);
      });

      return el('section', { className: 'card', 'data-inbox-id': inbox.id }, [
        el('h2', { className: 'section-title' }, [inbox.name + ' ', el('span', { className: 'badge', text: inbox.kind })]),
        where,
        el('div', { className: 'toolbar' }, [test]),
        result,
        el('h3', { className: 'admin-subtitle', text: t('Bot thresholds') }),
        botForm,
        el('h3', { className: 'admin-subtitle', text: t('Satisfaction survey') }),
        el('div', { className: 'admin-check' }, [csat, el('label', { for: 'csat-' + inbox.id, text: t('Ask customers to rate solved tickets') })])
      ]);
    }
    load();
  }

  // --- JSON-edited settings: routing rules, SLA policies and calendars ------------------

  function jsonEditor(kinds, reload) {
    var kindSelect = $('json-kind');
    var editing = null; // {kind, id}
    Object.keys(kinds).forEach(function (key) {
      kindSelect.appendChild(el('option', { value: key, text: kinds[key].label }));
    });
    function start(kind, item) {
      kindSelect.value = kind;
      editing = item ? { kind: kind, id: item.id } : null;
      $('json-body').value = JSON.stringify(kinds[kind].editable(item), null, 2);
      $('json-editor-title').textContent = item ? t('Edit {name}', { name: item.name }) : t('Add or edit');
      $('json-body').focus();
    }
    kindSelect.addEventListener('change', function () { start(kindSelect.value, null); });
    $('json-new').addEventListener('click', function () { start(kindSelect.value, null); });
    $('json-editor').addEventListener('submit', function (event) {
      event.preventDefault();
      var body;
      try {
        body = JSON.parse($('json-body').value);
      } catch (err) {
        say(t('That is not valid JSON.'), 'error');
        return;
      }
      var kind = kinds[kindSelect.value];
      var request = editing && editing.kind === kindSelect.value
        ? api(kind.update, kind.path + '/' + editing.id, body)
        : api('POST', kind.path, body);
      request.then(function () {
        say(t('Saved.'));
        reload();
      }).catch(failed);
    });
    start(Object.keys(kinds)[0], null);
    return start;
  }

  function rulesSection() {
    var tbody = $('rules-table').querySelector('tbody');
    var ids = [];
    var edit = jsonEditor({
      rule: {
        label: t('Routing rule'),
        path: '/routing/rules',
        update: 'PUT',
        editable: function (r) {
          return r
            ? { name: r.name, enabled: r.enabled, conditions: r.conditions, actions: r.actions }
            : { name: '', enabled: true, conditions: { keywords: ['refund'] }, actions: { priority: 'high' } };
        }
      }
    }, load);

    function versions(rule) {
      api('GET', '/routing/rules/' + rule.id + '/versions').then(function (data) {
        var box = $('rule-history');
        $('rule-history-title').textContent = t('History of {name}', { name: rule.name });
        rows(box.querySelector('tbody'), data.versions.slice().reverse(), function (v) {
          return el('tr', {}, [
            cell('v' + v.version),
            cell(v.change),
            cell(userLabel(v.actor_user_id)),
            cell(SB.formatDateTime(v.created_at)),
            el('td', {}, [el('code', { className: 'admin-details', text: JSON.stringify(v.rule) })])
          ]);
        });
        box.hidden = false;
      }).catch(failed);
    }

    function move(index, by) {
      var order = ids.slice();
      var moved = order.splice(index, 1)[0];
      order.splice(index + by, 0, moved);
      api('PUT', '/routing/rules/order', { ids: order }).then(load).catch(failed);
    }

    function load() {
      loadUsers().catch(function () {});
      api('GET', '/routing/rules').then(function (data) {
        ids = data.rules.map(function (r) { return r.id; });
        rows(tbody, data.rules, function (r) {
          var i = ids.indexOf(r.id);
          return el('tr', { 'data-rule-id': r.id }, [
            cell(i + 1),
            cell(r.name),
            el('td', {}, [el('span', { className: 'badge ' + (r.enabled ? 'badge-ok' : ''), text: r.enabled ? t('on') : t('off') })]),
            cell('v' + r.version),
            el('td', { className: 'admin-actions' }, [
              button(t('Edit'), function () { edit('rule', r); }),
              button(t('History'), function () { versions(r); }, 'btn-ghost'),
              i > 0 ? button(t('Move up'), function () { move(i, -1); }, 'btn-ghost') : null,
              i < ids.length - 1 ? button(t('Move down'), function () { move(i, 1); }, 'btn-ghost') : null,
              button(t('Delete'), function () {
                if (window.confirm(t('Delete the rule {name}?', { name: r.name }))) api('DELETE', '/routing/rules/' + r.id).then(load).catch(failed);
              }, 'btn-ghost')
            ])
          ]);
        });
      }).catch(failed);
    }
    load();
  }

  function slaSection() {
    var policies = $('policies-table').querySelector('tbody');
    var calendars = $('calendars-table').querySelector('tbody');
    var names = {};
    var edit = jsonEditor({
      policy: {
        label: t('SLA policy'),
        path: '/sla/policies',
        update: 'PATCH',
        editable: function (p) {
          return p
            ? { name: p.name, calendar_id: p.calendar_id, targets: p.targets, escalations: p.escalations, is_default: p.is_default }
            : { name: '', targets: { normal: { first_response: 60, resolution: 480 } } };
        }
      },
      calendar: {
        label: t('Business-hours calendar'),
        path: '/sla/calendars',
        update: 'PATCH',
        editable: function (c) {
          return c
            ? { name: c.name, time_zone: c.time_zone, hours: c.hours, holidays: c.holidays }
            : { name: '', time_zone: 'UTC', hours: { monday: [['09:00', '17:00']] }, holidays: [] };
        }
      }
    }, load);

    function load() {
      Promise.all([api('GET', '/sla/calendars'), api('GET', '/sla/policies')]).then(function (both) {
        names = {};
        both[0].calendars.forEach(function (c) { names[c.id] = c.name; });
        rows(calendars, both[0].calendars, function (c) {
          return el('tr', { 'data-calendar-id': c.id }, [cell(c.name), cell(c.time_zone), el('td', { className: 'admin-actions' }, [
            button(t('Edit'), function () { edit('calendar', c); }),
            button(t('Delete'), function () {
              if (window.confirm(t('Delete the calendar {name}?', { name: c.name }))) api('DELETE', '/sla/calendars/' + c.id).then(load).catch(failed);
            }, 'btn-ghost')
          ])]);
        });
        rows(policies, both[1].policies, function (p) {
          return el('tr', { 'data-policy-id': p.id }, [
            cell(p.name),
            cell(p.calendar_id ? names[p.calendar_id] : t('around the clock')),
            cell(p.is_default ? t('yes') : ''),
            el('td', { className: 'admin-actions' }, [
              button(t('Edit'), function () { edit('policy', p); }),
              button(t('Delete'), function () {
                if (window.confirm(t('Delete the policy {name}?', { name: p.name }))) api('DELETE', '/sla/policies/' + p.id).then(load).catch(failed);
              }, 'btn-ghost')
            ])
          ]);
        });
      }).catch(failed);
    }
    load();
  }

  // --- canned replies ------------------------------------------------------------------

  function cannedSection() {
    var tbody = $('canned-table').querySelector('tbody');
    function load() {
      api('GET', '/canned-replies').then(function (data) {
        rows(tbody, data.canned_replies || data.replies || [], function (r) {
          return el('tr', { 'data-canned-id': r.id }, [
            cell('/' + r.shortcut), cell(r.title), cell(r.body),
            el('td', { className: 'admin-actions' }, [
              button(t('Edit'), function () {
                $('canned-id').value = r.id;
                $('canned-shortcut').value = r.shortcut;
                $('canned-title').value = r.title;
                $('canned-body').value = r.body;
                $('canned-shortcut').focus();
              }),
              button(t('Delete'), function () {
                if (window.confirm(t('Delete the canned reply {name}?', { name: r.shortcut }))) api('DELETE', '/canned-replies/' + r.id).then(load).catch(failed);
              }, 'btn-ghost')
            ])
          ]);
        });
      }).catch(failed);
    }
    $('canned-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var body = { shortcut: $('canned-shortcut').value, title: $('canned-title').value, body: $('canned-body').value };
      var id = $('canned-id').value;
      (id ? api('PATCH', '/canned-replies/' + id, body) : api('POST', '/canned-replies', body)).then(function () {
        $('canned-form').reset();
        $('canned-id').value = '';
        say(t('Saved.'));
        load();
      }).catch(failed);
    });
    $('canned-form').addEventListener('reset', function () { $('canned-id').value = ''; });
    load();
  }

  // --- the bot: missed questions -------------------------------------------------------

  function botSection() {
    var tbody = $('missed-table').querySelector('tbody');
    var articles = [];
    function load() {
      Promise.all([api('GET', '/bot/missed?limit=200'), api('GET', '/kb/articles?limit=200')]).then(function (both) {
        articles = both[1].articles;
        $('missed-empty').hidden = both[0].missed.length > 0;
        rows(tbody, both[0].missed, missedRow);
      }).catch(failed);
    }
    function missedRow(m) {
      var pick = el('select', { 'aria-label': t('Article for “{q}”', { q: m.question.slice(0, 60) }) });
      var guessed = m.guesses.length ? m.guesses[0].topic : '';
      articles.forEach(function (a) {
        pick.appendChild(el('option', { value: a.id, text: a.question, selected: a.key === guessed || a.key.indexOf(guessed + '_') === 0 }));
      });
      return el('tr', { 'data-missed-id': m.id }, [
        cell(m.question),
        cell(m.reason || m.kind),
        cell(m.guesses.map(function (g) { return g.topic + ' ' + percent(g.confidence); }).join(', ')),
        cell(SB.formatDateTime(m.created_at)),
        el('td', { className: 'admin-actions' }, [
          pick,
          button(t('Add as phrasing'), function () {
            api('POST', '/bot/missed/' + m.id + '/phrasing', { article_id: Number(pick.value) }).then(function () {
              say(t('Added to the article as a phrasing.'));
              load();
            }).catch(failed);
          }, 'btn-primary'),
          button(t('Dismiss'), function () {
            api('POST', '/bot/missed/' + m.id + '/dismiss').then(load).catch(failed);
          }, 'btn-ghost')
        ])
      ]);
    }
    load();
  }

  // --- audit log -----------------------------------------------------------------------

  function auditSection() {
    var tbody = $('audit-table').querySelector('tbody');
    var cursor = null;

    function query() {
      var params = new URLSearchParams();
      ['q', 'actor', 'action'].forEach(function (name) {
        var value = $('audit-' + name).value.trim();
        if (value) params.set(name, value);
      });
      // Dates are the user's days: from the start of "From" to the end of "Until".
      if ($('audit-since').value) params.set('since', new Date($('audit-since').value + 'T00:00').toISOString());
      if ($('audit-until').value) {
        var end = new Date($('audit-until').value + 'T00:00');
        end.setDate(end.getDate() + 1);
        params.set('until', end.toISOString());
      }
      if (cursor) params.set('cursor', cursor);
      return params.toString();
    }

    function load(more) {
      if (!more) cursor = null;
      api('GET', '/audit?' + query()).then(function (data) {
        if (!more) clear(tbody);
        data.entries.forEach(function (e) {
          tbody.appendChild(el('tr', { 'data-audit-id': e.id }, [
            cell(SB.formatDateTime(e.created_at)),
            cell(e.actor),
            el('td', {}, [el('code', { text: e.action })]),
            cell((e.target_type ? e.target_type + ' ' : '') + (e.target || e.target_id)),
            cell(e.address),
            el('td', {}, [el('code', { className: 'admin-details', text: Object.keys(e.details).length ? JSON.stringify(e.details) : '' })])
          ]));
        });
        $('audit-empty').hidden = tbody.children.length > 0;
        cursor = data.next_cursor;
        $('audit-more').hidden = !cursor;
      }).catch(failed);
    }
    $('audit-filter').addEventListener('submit', function (event) { event.preventDefault(); load(false); });
    $('audit-more').addEventListener('click', function () { load(true); });
    load(false);
  }

  var sections = {
    kb: kbSection,
    users: usersSection,
    queues: queuesSection,
    inboxes: inboxesSection,
    rules: rulesSection,
    sla: slaSection,
    canned: cannedSection,
    bot: botSection,
    audit: auditSection
  };
  var start = sections[root.getAttribute('data-section')];
  if (start) start();
})();
