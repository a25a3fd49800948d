/* What every staff page's scripts share: the JSON API client and two DOM helpers.
 *
 *   SB.api('GET', '/api/v1/me').then(function (data) { … })
 *   SB.api('PATCH', '/api/v1/tickets/7', {status: 'solved'}).catch(function (err) {
 *     err.status, err.code, err.message   // an SB.ApiError (also an Error)
 *   });
 *
 * A FormData body is sent as multipart (uploads). Unsafe requests carry the page's CSRF token (<meta name="csrf-token">). A 401 sends the
 * browser to the login page and back here afterwards; a network failure is status 0,
 * code "network". An empty answer resolves to {}.
 */
(function () {
  'use strict';
  var t = window.SB && window.SB.t ? window.SB.t : function (text) { return text; };

  function ApiError(code, message, status) {
    this.name = 'ApiError';
    this.code = code;
    this.message = message;
    this.status = status || 0;
  }
  ApiError.prototype = Object.create(Error.prototype);
  ApiError.prototype.constructor = ApiError;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') || '' : '';
  }

  var leaving = false;
  function goToLogin() {
    if (leaving) return;
    leaving = true;
    var here = window.location.pathname + window.location.search;
    window.location.assign('/login?next=' + encodeURIComponent(here));
  }

  function api(method, path, body) {
    var options = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET' && method !== 'HEAD') {
      options.headers['X-CSRF-Token'] = csrfToken();
      if (typeof FormData !== 'undefined' && body instanceof FormData) {
        options.body = body; // a file upload: the browser sets the multipart type
      } else {
        options.headers['Content-Type'] = 'application/json';
        options.body = JSON.stringify(body || {});
      }
    }
    return fetch(path, options).then(function (response) {
      return response.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (err) { data = null; }
        if (response.status === 401) {
          goToLogin();
          throw new ApiError('unauthenticated', t('Your session has ended. Please log in again.'), 401);
        }
        if (!response.ok) {
          var error = (data && data.error) || {};
          throw new ApiError(
            error.code || 'http_' + response.status,
            error.message || t('Request failed ({n}).', { n: response.status }),
            response.status
          );
        }
        return data === null ? {} : data;
      });
    }, function () {
      throw new ApiError('network', t('Could not reach the server. Check your connection and try again.'), 0);
    });
  }

  /* A ticket status as the interface names it. */
  function statusLabel(status) {
    switch (status) {
      case 'new': return t('New');
      case 'open': return t('Open');
      case 'pending': return t('Pending');
      case 'on_hold': return t('On hold');
      case 'solved': return t('Solved');
      case 'closed': return t('Closed');
      default: return status ? String(status) : '';
    }
  }

  function byId(id) {
    return document.getElementById(id);
  }

  /* An element with a class and text (always as text, never as HTML). */
  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  window.SB = Object.assign(window.SB || {}, {
    api: api,
    ApiError: ApiError,
    csrfToken: csrfToken,
    goToLogin: goToLogin,
    statusLabel: statusLabel,
    byId: byId,
    make: make
  });
})();
