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
  var statusBox = document.getElementById('admin-status');
  var publicUrl = root.getAttribute('data-public-url') || '';
  var API = '/api/v1';

  // --- helpers -----------------------------------------------------------------------


  function api(method, path, body) {
    return SB.api(method, API + path, body);
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

  // --- forms for routing rules, SLA policies and calendars ------------------------------

  // A server error such as "conditions.keywords: must be a non-empty list" is shown next
  // to the field whose data-error-for is the longest prefix of its path; anything else
  // at the top of the form.
  function clearErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll('[data-error-for]'), function (node) {
      node.hidden = true;
      node.textContent = '';
    });
    Array.prototype.forEach.call(form.querySelectorAll('[aria-invalid]'), function (node) {
      node.removeAttribute('aria-invalid');
    });
    var top = form.querySelector('.alert-error');
    if (top) top.hidden = true;
  }

  function showError(form, err, pathOf) {
    var message = err && err.message ? err.message : t('Something went wrong.');
    var path = pathOf(message);
    var best = null;
    if (path) {
      Array.prototype.forEach.call(form.querySelectorAll('[data-error-for]'), function (node) {
        var key = node.getAttribute('data-error-for');
        var fits = path === key || path.indexOf(key + '.') === 0;
        if (fits && (!best || key.length > best.getAttribute('data-error-for').length)) best = node;
      });
    }
    if (!best) best = form.querySelector('.alert-error');
    best.textContent = message;
    best.hidden = false;
    var field = best.closest('.field, fieldset');
    var control = field && field.querySelector('input, select, textarea');
    if (control) control.setAttribute('aria-invalid', 'true');
    if (best.scrollIntoView) best.scrollIntoView({ block: 'nearest' });
    say(t('Not saved: {problem}', { problem: message }), 'error');
  }

  function pathBeforeColon(message) {
    var match = /^([a-z_]+(?:\.[a-z_0-9]+)*): /.exec(message);
    return match ? match[1] : null;
  }

  function fieldBox(labelText, control, hint) {
    var id = control.id || ('f-' + Math.random().toString(36).slice(2));
    control.id = id;
    return el('div', { className: 'field' }, [
      el('label', { for: id, text: labelText }),
      control,
      hint ? el('p', { className: 'field-hint', text: hint }) : null
    ]);
  }

  function checkGroup(name, options, chosen) {
    var boxes = [];
    var node = el('div', { className: 'admin-checks' }, options.map(function (option) {
      var id = 'c-' + name + '-' + String(option.value).replace(/[^a-zA-Z0-9_-]/g, '_');
      var box = el('input', { type: 'checkbox', id: id, value: option.value, checked: chosen.indexOf(option.value) >= 0 });
      boxes.push(box);
      return el('span', { className: 'admin-check' }, [box, el('label', { for: id, text: option.label })]);
    }));
    return {
      node: node,
      read: function () { return boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }); }
    };
  }

  function timeInput(label, value) {
    // 24:00 (the end of a day) shows as 00:00, which means midnight as an end.
    return el('input', { type: 'time', value: value === '24:00' ? '00:00' : value, 'aria-label': label, required: true });
  }

  // A week of opening hours: day → [[from, to], ...]; `days` are the stored day keys.
  function weekEditor(days, names, week) {
    var container = el('div', { className: 'admin-week' });
    var readers = [];
    days.forEach(function (day, index) {
      var list = el('div', { className: 'admin-intervals' });
      var closed = el('span', { className: 'field-hint', text: t('closed') });
      var labelId = 'day-' + day + '-' + Math.random().toString(36).slice(2, 7);
      var spans = [];
      function add(from, to) {
        var start = timeInput(t('{day} from', { day: names[index] }), from);
        var end = timeInput(t('{day} until', { day: names[index] }), to);
        var row = el('span', { className: 'admin-interval' }, [start, ' – ', end]);
        var entry = { start: start, end: end };
        row.appendChild(button(t('Remove'), function () {
          spans.splice(spans.indexOf(entry), 1);
          list.removeChild(row);
          closed.hidden = spans.length > 0;
        }, 'btn-ghost'));
        spans.push(entry);
        list.appendChild(row);
        closed.hidden = true;
      }
      (week[day] || []).forEach(function (pair) { add(pair[0], pair[1]); });
      closed.hidden = spans.length > 0;
      container.appendChild(el('div', { className: 'admin-day', role: 'group', 'aria-labelledby': labelId, 'data-day': day }, [
        el('span', { className: 'admin-day-name', id: labelId, text: names[index] }),
        closed,
        list,
        button(t('Add hours'), function () { add('09:00', '17:00'); })
      ]));
      readers.push(function (out) {
        var pairs = spans.map(function (s) {
          var to = s.end.value === '00:00' ? '24:00' : s.end.value;
          return [s.start.value, to];
        });
        if (pairs.length) out[day] = pairs;
      });
    });
    return {
      node: container,
      read: function () {
        var out = {};
        readers.forEach(function (r) { r(out); });
        return out;
      }
    };
  }

  var DAY_NAMES = function () {
    return [t('Monday'), t('Tuesday'), t('Wednesday'), t('Thursday'), t('Friday'), t('Saturday'), t('Sunday')];
  };

  function timeZones(selected) {
    var zones = [];
    try { zones = Intl.supportedValuesOf('timeZone'); } catch (err) { zones = []; }
    zones = ['UTC'].concat(zones.filter(function (z) { return z !== 'UTC'; }));
    if (selected && zones.indexOf(selected) < 0) zones.unshift(selected);
    return zones;
  }

  function fillZones(select, selected) {
    clear(select);
    timeZones(selected).forEach(function (zone) {
      select.appendChild(el('option', { value: zone, text: zone, selected: zone === selected }));
    });
    select.value = selected;
  }

  function jsonToggle(prefix, current, submit) {
    var box = $(prefix + '-json');
    box.addEventListener('toggle', function () {
      if (box.open) $(prefix + '-json-body').value = JSON.stringify(current(), null, 2);
    });
    $(prefix + '-json-save').addEventListener('click', function () {
      var body;
      try {
        body = JSON.parse($(prefix + '-json-body').value);
      } catch (err) {
        say(t('That is not valid JSON.'), 'error');
        return;
      }
      submit(body);
    });
  }

  function splitList(text) {
    return text.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function optionLabel(options, value) {
    for (var i = 0; i < options.length; i++) if (options[i].value === value) return options[i].label;
    return value;
  }

  // --- routing rules -------------------------------------------------------------------

  function rulesSection() {
    var tbody = $('rules-table').querySelector('tbody');
    var form = $('rule-form');
    var ids = [];
    var editing = null; // the rule being edited, or null for a new one
    var conditions = []; // {kind, node, read}
    var refs = { inboxes: [], queues: [], policies: [], calendars: [], users: [], intents: [] };

    var CHANNELS = [
      { value: 'email', label: t('Email') }, { value: 'webchat', label: t('Web chat') },
      { value: 'telegram', label: t('Telegram') }, { value: 'slack', label: t('Slack') }
    ];
    var LANGUAGES = [
      { value: 'en', label: t('English') }, { value: 'zh', label: t('Chinese (any)') },
      { value: 'zh-hans', label: t('Chinese (simplified)') }, { value: 'zh-hant', label: t('Chinese (traditional)') }
    ];
    var REASONS = [
      { value: 'customer_asked', label: t('The customer asked for a person') },
      { value: 'rule', label: t('A bot rule') },
      { value: 'out_of_scope', label: t('Out of scope') },
      { value: 'second_miss', label: t('Missed twice') },
      { value: 'frustration', label: t('Frustration') },
      { value: 'engine_unavailable', label: t('Bot unavailable') },
      { value: 'agent_replied', label: t('An agent replied') }
    ];
    var SHORT_DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

    var KINDS = {
      channels: {
        label: t('Channel'),
        build: function (value) { return checkGroup('channels', CHANNELS, value || []); }
      },
      inbox_ids: {
        label: t('Inbox'),
        build: function (value) {
          var options = refs.inboxes.map(function (i) { return { value: String(i.id), label: i.name + ' (' + i.kind + ')' }; });
          var group = checkGroup('inboxes', options, (value || []).map(String));
          return { node: group.node, read: function () { return group.read().map(Number); } };
        }
      },
      languages: {
        label: t('Language'),
        build: function (value) {
          var known = LANGUAGES.map(function (l) { return l.value; });
          var group = checkGroup('languages', LANGUAGES, value || []);
          var other = el('input', { maxlength: '200', value: (value || []).filter(function (v) { return known.indexOf(v) < 0; }).join(', ') });
          var node = el('div', {}, [group.node, fieldBox(t('Other languages'), other, t('Codes such as fr, ja or pt-BR, separated by commas.'))]);
          return { node: node, read: function () { return group.read().concat(splitList(other.value)); } };
        }
      },
      customer_tiers: {
        label: t('Customer tier'),
        build: function (value) {
          var input = el('input', { maxlength: '1000', value: (value || []).join(', ') });
          return { node: fieldBox(t('Any of these tiers'), input, t('Such as vip or enterprise, separated by commas.')), read: function () { return splitList(input.value); } };
        }
      },
      customer_tags: {
        label: t('Customer tag'),
        build: function (value) {
          var input = el('input', { maxlength: '1000', value: (value || []).join(', ') });
          return { node: fieldBox(t('Any of these tags'), input, t('Separated by commas.')), read: function () { return splitList(input.value); } };
        }
      },
      intents: {
        label: t('Bot intent at hand-off'),
        build: function (value) {
          var chosen = value || [];
          var keys = refs.intents.slice();
          chosen.forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
          var select = el('select', { multiple: true, size: String(Math.min(8, Math.max(3, keys.length))) });
          keys.forEach(function (k) { select.appendChild(el('option', { value: k, text: k, selected: chosen.indexOf(k) >= 0 })); });
          return {
            node: fieldBox(t("The bot's top guess is one of"), select, t('Topics of the knowledge base; hold Ctrl or Cmd to pick several.')),
            read: function () { return Array.prototype.filter.call(select.options, function (o) { return o.selected; }).map(function (o) { return o.value; }); }
          };
        }
      },
      handoff_reasons: {
        label: t('Hand-off reason'),
        build: function (value) { return checkGroup('reasons', REASONS, value || []); }
      },
      keywords: {
        label: t('Keywords'),
        build: function (value) {
          var area = el('textarea', { rows: '3' });
          area.value = (value || []).join('\n');
          return { node: fieldBox(t('Any of these words or phrases in the subject or message'), area, t('One per line.')), read: function () { return lines(area.value); } };
        }
      },
      business_hours: {
        label: t('Business hours'),
        build: function (value) {
          value = value || { calendar_id: refs.calendars.length ? refs.calendars[0].id : null, inside: true };
          var inside = el('select', {}, [
            el('option', { value: 'in', text: t('inside the hours'), selected: value.inside !== false }),
            el('option', { value: 'out', text: t('outside the hours'), selected: value.inside === false })
          ]);
          var source = el('select', {}, [
            el('option', { value: 'calendar', text: t('an SLA calendar'), selected: !value.timezone }),
            el('option', { value: 'custom', text: t('hours set here'), selected: !!value.timezone })
          ]);
          var calendar = el('select', {});
          refs.calendars.forEach(function (c) {
            calendar.appendChild(el('option', { value: c.id, text: c.name, selected: c.id === value.calendar_id }));
          });
          var zone = el('select', {});
          fillZones(zone, value.timezone || 'UTC');
          var week = weekEditor(SHORT_DAYS, DAY_NAMES(), value.weekly || { mon: [['09:00', '17:00']], tue: [['09:00', '17:00']], wed: [['09:00', '17:00']], thu: [['09:00', '17:00']], fri: [['09:00', '17:00']] });
          var calendarBox = fieldBox(t('Calendar'), calendar);
          var customBox = el('div', {}, [fieldBox(t('Time zone'), zone), week.node]);
          function sync() {
            calendarBox.hidden = source.value !== 'calendar';
            customBox.hidden = source.value !== 'custom';
          }
          source.addEventListener('change', sync);
          sync();
          var node = el('div', {}, [
            el('div', { className: 'admin-row' }, [fieldBox(t('Holds'), inside), fieldBox(t('Hours from'), source), calendarBox]),
            customBox
          ]);
          return {
            node: node,
            read: function () {
              var holds = inside.value === 'in';
              if (source.value === 'calendar') return { calendar_id: calendar.value ? Number(calendar.value) : null, inside: holds };
              return { timezone: zone.value, weekly: week.read(), inside: holds };
            }
          };
        }
      }
    };
    var ORDER = ['channels', 'inbox_ids', 'languages', 'customer_tiers', 'customer_tags', 'intents', 'handoff_reasons', 'keywords', 'business_hours'];

    function refreshAddable() {
      var select = $('rule-add-kind');
      clear(select);
      ORDER.forEach(function (kind) {
        var used = conditions.some(function (c) { return c.kind === kind; });
        if (!used) select.appendChild(el('option', { value: kind, text: KINDS[kind].label }));
      });
      $('rule-add-condition').disabled = !select.options.length;
      select.disabled = !select.options.length;
      $('rule-no-conditions').hidden = conditions.length > 0;
    }

    function addCondition(kind, value) {
      var built = KINDS[kind].build(value);
      var legendId = 'cond-' + kind;
      var entry = { kind: kind, read: built.read };
      var node = el('fieldset', { className: 'admin-condition', 'data-kind': kind }, [
        el('legend', { id: legendId, text: KINDS[kind].label }),
        built.node,
        el('p', { className: 'field-error', 'data-error-for': 'conditions.' + kind, hidden: true })
      ]);
      node.appendChild(el('div', { className: 'toolbar' }, [button(t('Remove condition'), function () {
        conditions.splice(conditions.indexOf(entry), 1);
        $('rule-conditions').removeChild(node);
        refreshAddable();
      }, 'btn-ghost')]));
      entry.node = node;
      conditions.push(entry);
      $('rule-conditions').appendChild(node);
      refreshAddable();
      return node;
    }

    function fillSelect(select, items, label, chosen) {
      var first = select.options[0];
      clear(select);
      select.appendChild(first);
      items.forEach(function (item) {
        select.appendChild(el('option', { value: item.id, text: label(item), selected: item.id === chosen }));
      });
      select.value = chosen ? String(chosen) : '';
    }

    function fillActionSelects(actions) {
      fillSelect($('rule-queue'), refs.queues, function (q) { return q.name; }, actions.queue_id);
      fillSelect($('rule-sla'), refs.policies, function (p) { return p.name; }, actions.sla_policy_id);
      fillSelect($('rule-assign'), refs.users, function (u) { return u.name ? u.name + ' <' + u.email + '>' : u.email; }, actions.assign_user_id);
    }

    function start(rule) {
      editing = rule;
      clearErrors(form);
      conditions = [];
      clear($('rule-conditions'));
      $('rule-editor-title').textContent = rule ? t('Edit {name}', { name: rule.name }) : t('New rule');
      $('rule-name').value = rule ? rule.name : '';
      $('rule-enabled').checked = rule ? rule.enabled : true;
      var c = rule ? rule.conditions : {};
      ORDER.forEach(function (kind) { if (c[kind] !== undefined) addCondition(kind, c[kind]); });
      var a = rule ? rule.actions : {};
      fillActionSelects(a);
      $('rule-priority').value = a.priority || '';
      $('rule-tags').value = (a.add_tags || []).join(', ');
      $('rule-skills').value = (a.require_skills || []).join(', ');
      $('rule-json').open = false;
      refreshAddable();
    }

    function current() {
      var out = { name: $('rule-name').value, enabled: $('rule-enabled').checked, conditions: {}, actions: {} };
      conditions.forEach(function (c) { out.conditions[c.kind] = c.read(); });
      if ($('rule-queue').value) out.actions.queue_id = Number($('rule-queue').value);
      if ($('rule-priority').value) out.actions.priority = $('rule-priority').value;
      if ($('rule-sla').value) out.actions.sla_policy_id = Number($('rule-sla').value);
      if ($('rule-assign').value) out.actions.assign_user_id = Number($('rule-assign').value);
      if (splitList($('rule-tags').value).length) out.actions.add_tags = splitList($('rule-tags').value);
      if (splitList($('rule-skills').value).length) out.actions.require_skills = splitList($('rule-skills').value);
      return out;
    }

    function submit(body) {
      clearErrors(form);
      var request = editing ? api('PUT', '/routing/rules/' + editing.id, body) : api('POST', '/routing/rules', body);
      return request.then(function (data) {
        say(editing ? t('Rule saved: version {n}.', { n: data.rule.version }) : t('Rule created.'));
        return load().then(function () { start(null); });
      }).catch(function (err) { showError(form, err, pathBeforeColon); });
    }

    function describeConditions(c) {
      var parts = [];
      var names = function (items, all) { return items.map(function (v) { return optionLabel(all, v); }).join(', '); };
      if (c.channels) parts.push(t('channel: {v}', { v: names(c.channels, CHANNELS) }));
      if (c.inbox_ids) parts.push(t('inbox: {v}', { v: c.inbox_ids.map(function (id) {
        var found = refs.inboxes.filter(function (i) { return i.id === id; })[0];
        return found ? found.name : '#' + id;
      }).join(', ') }));
      if (c.languages) parts.push(t('language: {v}', { v: c.languages.join(', ') }));
      if (c.customer_tiers) parts.push(t('tier: {v}', { v: c.customer_tiers.join(', ') }));
      if (c.customer_tags) parts.push(t('customer tag: {v}', { v: c.customer_tags.join(', ') }));
      if (c.intents) parts.push(t('intent: {v}', { v: c.intents.join(', ') }));
      if (c.handoff_reasons) parts.push(t('hand-off: {v}', { v: names(c.handoff_reasons, REASONS) }));
      if (c.keywords) parts.push(t('keywords: {v}', { v: c.keywords.join(', ') }));
      if (c.business_hours) {
        var h = c.business_hours;
        var cal = refs.calendars.filter(function (x) { return x.id === h.calendar_id; })[0];
        var where = h.timezone ? h.timezone : (cal ? cal.name : '#' + h.calendar_id);
        parts.push(h.inside === false ? t('outside hours of {v}', { v: where }) : t('inside hours of {v}', { v: where }));
      }
      return parts.length ? parts.join('; ') : t('every new ticket');
    }

    function describeActions(a) {
      var parts = [];
      var named = function (items, id) {
        var found = items.filter(function (x) { return x.id === id; })[0];
        return found ? (found.name || found.email) : '#' + id;
      };
      if (a.queue_id) parts.push(t('queue {v}', { v: named(refs.queues, a.queue_id) }));
      if (a.priority) parts.push(t('priority {v}', { v: t(a.priority) }));
      if (a.add_tags) parts.push(t('tags {v}', { v: a.add_tags.join(', ') }));
      if (a.sla_policy_id) parts.push(t('SLA {v}', { v: named(refs.policies, a.sla_policy_id) }));
      if (a.assign_user_id) parts.push(t('assign to {v}', { v: named(refs.users, a.assign_user_id) }));
      if (a.require_skills) parts.push(t('skills {v}', { v: a.require_skills.join(', ') }));
      return parts.join('; ');
    }

    function versions(rule) {
      api('GET', '/routing/rules/' + rule.id + '/versions').then(function (data) {
        var box = $('rule-history');
        $('rule-history-title').textContent = t('History of {name}', { name: rule.name });
        rows(box.querySelector('tbody'), data.versions.slice().reverse(), function (v) {
          var then = v.rule || {};
          return el('tr', {}, [
            cell('v' + v.version),
            cell(v.change),
            cell(userLabel(v.actor_user_id)),
            cell(SB.formatDateTime(v.created_at)),
            el('td', {}, [
              el('div', { text: (then.name || '') + (then.enabled === false ? ' (' + t('off') + ')' : '') }),
              el('div', { className: 'field-hint', text: t('When: {c}', { c: describeConditions(then.conditions || {}) }) }),
              el('div', { className: 'field-hint', text: t('Then: {a}', { a: describeActions(then.actions || {}) }) })
            ])
          ]);
        });
        box.hidden = false;
      }).catch(failed);
    }

    function reorder(order) {
      return api('PUT', '/routing/rules/order', { ids: order }).then(function () {
        say(t('Order saved.'));
        return load();
      }).catch(failed);
    }

    function move(index, by) {
      var order = ids.slice();
      var moved = order.splice(index, 1)[0];
      order.splice(index + by, 0, moved);
      reorder(order);
    }

    var dragged = null;
    function draggable(row, id) {
      row.setAttribute('draggable', 'true');
      row.addEventListener('dragstart', function (event) {
        dragged = id;
        row.classList.add('is-dragging');
        event.dataTransfer.effectAllowed = 'move';
        event.dataTransfer.setData('text/plain', String(id));
      });
      row.addEventListener('dragend', function () { row.classList.remove('is-dragging'); dragged = null; });
      row.addEventListener('dragover', function (event) {
        if (dragged === null || dragged === id) return;
        event.preventDefault();
        row.classList.add('is-drop-target');
      });
      row.addEventListener('dragleave', function () { row.classList.remove('is-drop-target'); });
      row.addEventListener('drop', function (event) {
        event.preventDefault();
        row.classList.remove('is-drop-target');
        if (dragged === null || dragged === id) return;
        var order = ids.filter(function (x) { return x !== dragged; });
        order.splice(order.indexOf(id) + (ids.indexOf(dragged) < ids.indexOf(id) ? 1 : 0), 0, dragged);
        reorder(order);
      });
    }

    function loadRefs() {
      return Promise.all([
        api('GET', '/inboxes').catch(function () { return { inboxes: [] }; }),
        api('GET', '/queues').catch(function () { return { queues: [] }; }),
        api('GET', '/sla/policies').catch(function () { return { policies: [] }; }),
        api('GET', '/sla/calendars').catch(function () { return { calendars: [] }; }),
        loadUsers().catch(function () { return []; }),
        api('GET', '/kb/articles?limit=200').catch(function () { return { articles: [] }; })
      ]).then(function (all) {
        refs.inboxes = all[0].inboxes || [];
        refs.queues = all[1].queues || [];
        refs.policies = all[2].policies || [];
        refs.calendars = all[3].calendars || [];
        refs.users = (all[4] || []).filter(function (u) { return u.active && u.role !== 'customer'; });
        var keys = {};
        // The bot's intents are topics: an article's key without its locale suffix
        // (bot.training.topic_of), so "shipping_en" and "shipping_zh_hans" are "shipping".
        (all[5].articles || []).forEach(function (a) {
          var suffix = '_' + a.locale.toLowerCase().replace(/-/g, '_');
          var topic = a.key.length > suffix.length && a.key.slice(-suffix.length) === suffix ? a.key.slice(0, -suffix.length) : a.key;
          keys[topic] = true;
        });
        refs.intents = Object.keys(keys).sort();
      });
    }

    function load() {
      return api('GET', '/routing/rules').then(function (data) {
        ids = data.rules.map(function (r) { return r.id; });
        $('rules-empty').hidden = data.rules.length > 0;
        rows(tbody, data.rules, function (r) {
          var i = ids.indexOf(r.id);
          var row = el('tr', { 'data-rule-id': r.id }, [
            el('td', {}, [el('span', { className: 'admin-grip', 'aria-hidden': 'true', text: '\u2630 ' }), String(i + 1)]),
            cell(r.name),
            cell(describeConditions(r.conditions)),
            cell(describeActions(r.actions)),
            el('td', {}, [el('span', { className: 'badge ' + (r.enabled ? 'badge-ok' : ''), text: r.enabled ? t('on') : t('off') })]),
            cell('v' + r.version),
            el('td', { className: 'admin-actions' }, [
              button(t('Edit'), function () { start(r); $('rule-name').focus(); }),
              button(t('History'), function () { versions(r); }, 'btn-ghost'),
              i > 0 ? button(t('Move up'), function () { move(i, -1); }, 'btn-ghost') : null,
              i < ids.length - 1 ? button(t('Move down'), function () { move(i, 1); }, 'btn-ghost') : null,
              button(t('Delete'), function () {
                if (window.confirm(t('Delete the rule {name}?', { name: r.name }))) api('DELETE', '/routing/rules/' + r.id).then(load).catch(failed);
              }, 'btn-ghost')
            ])
          ]);
          draggable(row, r.id);
          return row;
        });
      }).catch(failed);
    }

    form.addEventListener('submit', function (event) { event.preventDefault(); submit(current()); });
    $('rule-new').addEventListener('click', function () { start(null); $('rule-name').focus(); });
    $('rule-add-condition').addEventListener('click', function () {
      var kind = $('rule-add-kind').value;
      if (!kind) return;
      var node = addCondition(kind, undefined);
      var first = node.querySelector('input, select, textarea');
      if (first) first.focus();
    });
    jsonToggle('rule', current, submit);
    // The form is usable at once; the lists it picks from (queues, policies, people,
    // calendars, inboxes, intents) fill in when they arrive, keeping what was chosen.
    start(null);
    loadRefs().then(function () {
      var chosen = current().actions;
      fillActionSelects(chosen);
      form.setAttribute('data-ready', 'true');
      return load();
    });
  }

  // --- SLA policies and business-hours calendars -----------------------------------------

  function slaSection() {
    var policiesBody = $('policies-table').querySelector('tbody');
    var calendarsBody = $('calendars-table').querySelector('tbody');
    var policyForm = $('policy-form');
    var calendarForm = $('calendar-form');
    var calendars = [];
    var editingPolicy = null;
    var editingCalendar = null;
    var escalations = []; // {node, read}
    var staff = [];
    var targetInputs = {}; // priority → metric → {amount, unit}
    var week = null;
    var holidays = [];
    var PRIORITIES = ['urgent', 'high', 'normal', 'low'];
    var METRICS = ['first_response', 'next_response', 'resolution'];
    var WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
    var metricNames = { first_response: t('First response'), next_response: t('Next response'), resolution: t('Resolution') };

    function duration(minutes) {
      if (minutes % 1440 === 0) return t('{n} d', { n: minutes / 1440 });
      if (minutes % 60 === 0) return t('{n} h', { n: minutes / 60 });
      return t('{n} min', { n: minutes });
    }

    function buildTargets(targets) {
      var tbody = $('policy-targets').querySelector('tbody');
      clear(tbody);
      targetInputs = {};
      PRIORITIES.forEach(function (priority) {
        targetInputs[priority] = {};
        var tr = el('tr', { 'data-priority': priority }, [el('th', { scope: 'row', text: t(priority) })]);
        METRICS.forEach(function (metric) {
          var minutes = (targets[priority] || {})[metric];
          var hours = minutes !== undefined && minutes % 60 === 0;
          var label = t('{metric} for {priority}', { metric: metricNames[metric], priority: t(priority) });
          var amount = el('input', {
            type: 'number', min: '1', step: '1', className: 'admin-amount',
            value: minutes === undefined ? '' : String(hours ? minutes / 60 : minutes), 'aria-label': label
          });
          var unit = el('select', { 'aria-label': t('{what}: unit', { what: label }) }, [
            el('option', { value: '60', text: t('hours'), selected: minutes === undefined || hours }),
            el('option', { value: '1', text: t('minutes'), selected: minutes !== undefined && !hours })
          ]);
          targetInputs[priority][metric] = { amount: amount, unit: unit };
          tr.appendChild(el('td', {}, [
            el('span', { className: 'admin-target' }, [amount, unit]),
            el('p', { className: 'field-error', 'data-error-for': 'targets.' + priority + '.' + metric, hidden: true })
          ]));
        });
        tbody.appendChild(tr);
      });
    }

    function policyBody() {
      var targets = {};
      PRIORITIES.forEach(function (priority) {
        METRICS.forEach(function (metric) {
          var input = targetInputs[priority][metric];
          var raw = input.amount.value.trim();
          if (raw === '') return;
          var value = Number(raw);
          targets[priority] = targets[priority] || {};
          // Whole minutes; a non-number is sent as typed, for the server to name.
          targets[priority][metric] = isFinite(value) ? Math.round(value * Number(input.unit.value)) : raw;
        });
      });
      return {
        name: $('policy-name').value,
        calendar_id: $('policy-calendar').value ? Number($('policy-calendar').value) : null,
        targets: targets,
        escalations: escalations.map(function (e) { return e.read(); }),
        is_default: $('policy-default').checked
      };
    }

    function policyPath(message) {
      var match = /\b(targets\.[a-z]+\.[a-z_]+|targets|escalations?|calendar_id|is_default|name)\b/.exec(message);
      if (!match) return /calendar/.test(message) ? 'calendar_id' : null;
      return match[1] === 'escalation' ? 'escalations' : match[1];
    }

    function addEscalation(value) {
      var n = Math.random().toString(36).slice(2, 8);
      var when = el('select', { id: 'esc-when-' + n }, [
        el('option', { value: 'warning', text: t('a target is near (warning)'), selected: value.when === 'warning' }),
        el('option', { value: 'breach', text: t('a target is missed (breach)'), selected: value.when === 'breach' })
      ]);
      var action = el('select', { id: 'esc-action-' + n }, [
        el('option', { value: 'notify', text: t('send an alert (dashboard and inbox)'), selected: value.action === 'notify' }),
        el('option', { value: 'raise_priority', text: t('raise the priority'), selected: value.action === 'raise_priority' }),
        el('option', { value: 'reassign', text: t('reassign'), selected: value.action === 'reassign' })
      ]);
      var who = el('select', { id: 'esc-user-' + n }, [el('option', { value: '', text: t('— unassign —') })]);
      function fillUsers(chosen) {
        while (who.options.length > 1) who.removeChild(who.lastChild);
        staff.forEach(function (u) {
          who.appendChild(el('option', { value: u.id, text: u.name ? u.name + ' <' + u.email + '>' : u.email }));
        });
        who.value = chosen ? String(chosen) : '';
      }
      fillUsers(value.user_id);
      var whoBox = fieldBox(t('Reassign to'), who);
      var metrics = checkGroup('esc-' + n, METRICS.map(function (m) { return { value: m, label: metricNames[m] }; }), value.metrics || []);
      function sync() { whoBox.hidden = action.value !== 'reassign'; }
      action.addEventListener('change', sync);
      sync();
      var entry = {
        // The people arrive after the form is shown: refill, keeping the choice.
        fillUsers: function () { fillUsers(who.value || value.user_id); },
        read: function () {
          var out = { when: when.value, action: action.value };
          var picked = metrics.read();
          if (picked.length) out.metrics = picked;
          if (action.value === 'reassign' && who.value) out.user_id = Number(who.value);
          return out;
        }
      };
      var node = el('fieldset', { className: 'admin-condition', 'data-escalation': '' }, [
        el('legend', { text: t('Escalation') }),
        el('div', { className: 'admin-row' }, [fieldBox(t('Trigger'), when), fieldBox(t('Action'), action), whoBox]),
        el('p', { className: 'field-hint', text: t('For these targets (none ticked: all):') }),
        metrics.node
      ]);
      node.appendChild(el('div', { className: 'toolbar' }, [button(t('Remove escalation'), function () {
        escalations.splice(escalations.indexOf(entry), 1);
        $('policy-escalations').removeChild(node);
      }, 'btn-ghost')]));
      escalations.push(entry);
      $('policy-escalations').appendChild(node);
    }

    function fillPolicyCalendars(chosen) {
      var select = $('policy-calendar');
      var first = select.options[0];
      clear(select);
      select.appendChild(first);
      calendars.forEach(function (c) { select.appendChild(el('option', { value: c.id, text: c.name })); });
      select.value = chosen;
    }

    function startPolicy(policy) {
      editingPolicy = policy;
      clearErrors(policyForm);
      $('policy-editor-title').textContent = policy ? t('Edit {name}', { name: policy.name }) : t('New SLA policy');
      $('policy-name').value = policy ? policy.name : '';
      fillPolicyCalendars(policy && policy.calendar_id ? String(policy.calendar_id) : '');
      $('policy-default').checked = !!(policy && policy.is_default);
      escalations = [];
      clear($('policy-escalations'));
      (policy ? policy.escalations || [] : [{ when: 'warning', action: 'notify' }, { when: 'breach', action: 'notify' }]).forEach(addEscalation);
      buildTargets(policy ? policy.targets : { normal: { first_response: 60, resolution: 480 } });
      $('policy-json').open = false;
    }

    function savePolicy(body) {
      clearErrors(policyForm);
      var request = editingPolicy ? api('PATCH', '/sla/policies/' + editingPolicy.id, body) : api('POST', '/sla/policies', body);
      return request.then(function () {
        say(t('Policy saved.'));
        return load().then(function () { startPolicy(null); });
      }).catch(function (err) { showError(policyForm, err, policyPath); });
    }

    function calendarBody() {
      return {
        name: $('calendar-name').value,
        time_zone: $('calendar-zone').value,
        hours: week.read(),
        holidays: holidays.slice()
      };
    }

    function calendarPath(message) {
      if (/time zone|time_zone/.test(message)) return 'time_zone';
      if (/holiday/.test(message)) return 'holidays';
      if (/^name\b/.test(message)) return 'name';
      return 'hours';
    }

    function showHolidays() {
      var list = $('calendar-holidays');
      clear(list);
      holidays.sort();
      holidays.forEach(function (day) {
        list.appendChild(el('li', { 'data-holiday': day }, [
          el('span', { text: SB.formatDate(day + 'T12:00:00Z') + ' (' + day + ') ' }),
          button(t('Remove'), function () {
            holidays.splice(holidays.indexOf(day), 1);
            showHolidays();
          }, 'btn-ghost')
        ]));
      });
      if (!holidays.length) list.appendChild(el('li', { className: 'field-hint', text: t('No holidays.') }));
    }

    function startCalendar(calendar) {
      editingCalendar = calendar;
      clearErrors(calendarForm);
      $('calendar-editor-title').textContent = calendar ? t('Edit {name}', { name: calendar.name }) : t('New calendar');
      $('calendar-name').value = calendar ? calendar.name : '';
      var guess = 'UTC';
      try { guess = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (err) { guess = 'UTC'; }
      fillZones($('calendar-zone'), calendar ? calendar.time_zone : guess);
      var hours = calendar ? calendar.hours : {};
      if (!calendar) WEEKDAYS.slice(0, 5).forEach(function (d) { hours[d] = [['09:00', '17:00']]; });
      week = weekEditor(WEEKDAYS, DAY_NAMES(), hours);
      var box = $('calendar-week');
      clear(box);
      box.appendChild(week.node);
      holidays = calendar ? calendar.holidays.slice() : [];
      showHolidays();
      $('calendar-json').open = false;
    }

    function saveCalendar(body) {
      clearErrors(calendarForm);
      var request = editingCalendar ? api('PATCH', '/sla/calendars/' + editingCalendar.id, body) : api('POST', '/sla/calendars', body);
      return request.then(function () {
        say(t('Calendar saved.'));
        return load().then(function () { startCalendar(null); fillPolicyCalendars($('policy-calendar').value); });
      }).catch(function (err) { showError(calendarForm, err, calendarPath); });
    }

    function hoursSummary(hours) {
      var names = DAY_NAMES();
      return WEEKDAYS.map(function (day, i) {
        var spans = hours[day] || [];
        return spans.length ? names[i] + ' ' + spans.map(function (s) { return s[0] + '–' + s[1]; }).join(', ') : null;
      }).filter(Boolean).join('; ');
    }

    function load() {
      return Promise.all([api('GET', '/sla/calendars'), api('GET', '/sla/policies')]).then(function (both) {
        calendars = both[0].calendars;
        var names = {};
        calendars.forEach(function (c) { names[c.id] = c.name; });
        rows(calendarsBody, calendars, function (c) {
          return el('tr', { 'data-calendar-id': c.id }, [
            cell(c.name), cell(c.time_zone), cell(hoursSummary(c.hours)), cell(c.holidays.length),
            el('td', { className: 'admin-actions' }, [
              button(t('Edit'), function () { startCalendar(c); $('calendar-name').focus(); }),
              button(t('Delete'), function () {
                if (window.confirm(t('Delete the calendar {name}?', { name: c.name }))) api('DELETE', '/sla/calendars/' + c.id).then(load).catch(failed);
              }, 'btn-ghost')
            ])
          ]);
        });
        rows(policiesBody, both[1].policies, function (p) {
          var summary = PRIORITIES.filter(function (pr) { return p.targets[pr]; }).map(function (pr) {
            return t(pr) + ': ' + METRICS.filter(function (m) { return p.targets[pr][m]; }).map(function (m) {
              return metricNames[m] + ' ' + duration(p.targets[pr][m]);
            }).join(', ');
          }).join('; ');
          return el('tr', { 'data-policy-id': p.id }, [
            cell(p.name),
            cell(p.calendar_id ? names[p.calendar_id] : t('around the clock')),
            cell(summary),
            cell(p.is_default ? t('yes') : ''),
            el('td', { className: 'admin-actions' }, [
              button(t('Edit'), function () { startPolicy(p); $('policy-name').focus(); }),
              button(t('Delete'), function () {
                if (window.confirm(t('Delete the policy {name}?', { name: p.name }))) api('DELETE', '/sla/policies/' + p.id).then(load).catch(failed);
              }, 'btn-ghost')
            ])
          ]);
        });
      }).catch(failed);
    }

    policyForm.addEventListener('submit', function (event) { event.preventDefault(); savePolicy(policyBody()); });
    calendarForm.addEventListener('submit', function (event) { event.preventDefault(); saveCalendar(calendarBody()); });
    $('policy-new').addEventListener('click', function () { startPolicy(null); $('policy-name').focus(); });
    $('calendar-new').addEventListener('click', function () { startCalendar(null); $('calendar-name').focus(); });
    $('calendar-holiday-add').addEventListener('click', function () {
      var day = $('calendar-holiday-new').value;
      if (!day) return;
      if (holidays.indexOf(day) < 0) holidays.push(day);
      $('calendar-holiday-new').value = '';
      showHolidays();
    });
    jsonToggle('policy', policyBody, savePolicy);
    jsonToggle('calendar', calendarBody, saveCalendar);
    $('policy-escalation-add').addEventListener('click', function () {
      addEscalation({ when: 'breach', action: 'notify' });
    });
    startPolicy(null);
    startCalendar(null);
    Promise.all([load(), loadUsers().catch(function () { return []; })]).then(function (both) {
      staff = (both[1] || []).filter(function (u) { return u.active; });
      escalations.forEach(function (e) { e.fillUsers(); });
      fillPolicyCalendars($('policy-calendar').value);
      policyForm.setAttribute('data-ready', 'true');
      calendarForm.setAttribute('data-ready', 'true');
    });
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
