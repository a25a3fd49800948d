/* Switchboard web-chat loader, served at /widget.js.
 *
 *   <script src="https://HUB/widget.js" data-inbox="PUBLIC_KEY" async></script>
 *
 * An identified visitor (the same person on every device): the site's server signs its
 * logged-in user with the inbox's identity secret (see customers/identify.py) and adds
 *   data-user-id="42" data-user-hash="HMAC(secret, user_id)"
 *   data-user-email="ann@example.com" data-email-hash="HMAC(secret, user_id + "\n" + email)"
 *   data-user-name="Ann Lee"
 * or calls Switchboard.identify({user_id, identifier_hash, email, email_hash, name}) and,
 * at its logout, Switchboard.logout(). A claim that does not verify is an anonymous visitor.
 *
 * Runs on the customer's page, whose CSP and CSS we do not control: everything is built
 * with DOM APIs, styled through element.style (CSSOM), and kept inside this function.
 * The chat itself lives in an iframe on the hub's origin, which isolates its CSS, script
 * and visitor token from the host page.
 */
(function () {
  'use strict';

  var LAUNCHER_ID = 'switchboard-launcher';
  var FRAME_ID = 'switchboard-frame';
  var BRAND = '#4f46e5';
  var Z = '2147483000';
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var NARROW = '(max-width: 480px)';

  if (document.getElementById(LAUNCHER_ID)) return; // included twice

  var script = document.currentScript || document.querySelector('script[data-inbox]');
  if (!script) return;
  var inboxKey = script.getAttribute('data-inbox');
  if (!inboxKey) {
    if (window.console) window.console.warn('Switchboard: the widget script needs a data-inbox attribute.');
    return;
  }
  var hubOrigin;
  try {
    hubOrigin = new URL(script.getAttribute('src') || script.src, window.location.href).origin;
  } catch (err) {
    return;
  }
  var frameUrl = hubOrigin + '/widget/frame?inbox=' + encodeURIComponent(inboxKey);
  var storageKey = 'switchboard:open:' + inboxKey;
  var IDENTITY_FIELDS = ['user_id', 'identifier_hash', 'email', 'email_hash', 'name'];
  var identity = cleanIdentity({
    user_id: script.getAttribute('data-user-id'),
    identifier_hash: script.getAttribute('data-user-hash'),
    email: script.getAttribute('data-user-email'),
    email_hash: script.getAttribute('data-email-hash'),
    name: script.getAttribute('data-user-name')
  });
  var frameLoads = 0;

  var launcher;
  var frame;
  var chatIcon;
  var closeIcon;
  var isOpen = false;
  var narrow = window.matchMedia ? window.matchMedia(NARROW) : null;

  function cleanIdentity(claims) {
    if (!claims || typeof claims !== 'object' || claims.user_id == null || claims.user_id === '') return null;
    var clean = {};
    IDENTITY_FIELDS.forEach(function (key) {
      var value = claims[key];
      if (typeof value === 'string' ? value !== '' : typeof value === 'number') clean[key] = value;
    });
    return clean;
  }

  /* The claims travel in the fragment: the frame reads them, no server log or Referer does.
     A changed identity reloads the frame (a new query), which starts a new session. */
  function frameSrc() {
    var url = frameUrl + (frameLoads ? '&load=' + frameLoads : '');
    return identity ? url + '#identity=' + encodeURIComponent(JSON.stringify(identity)) : url;
  }

  function reidentify(claims) {
    identity = cleanIdentity(claims);
    if (!frame) return; // not built yet: build() uses the new identity
    frameLoads += 1;
    frame.src = frameSrc();
  }

  window.Switchboard = window.Switchboard || {};
  window.Switchboard.identify = reidentify;
  window.Switchboard.logout = function () {
    reidentify(null);
  };

  function css(node, styles) {
    for (var key in styles) {
      if (Object.prototype.hasOwnProperty.call(styles, key)) node.style.setProperty(key, styles[key], 'important');
    }
  }

  function svg(paths) {
    var icon = document.createElementNS(SVG_NS, 'svg');
    icon.setAttribute('viewBox', '0 0 24 24');
    icon.setAttribute('width', '28');
    icon.setAttribute('height', '28');
    icon.setAttribute('aria-hidden', 'true');
    icon.setAttribute('focusable', 'false');
    paths.forEach(function (d) {
      var path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('d', d);
      path.setAttribute('fill', 'currentColor');
      icon.appendChild(path);
    });
    css(icon, {
      display: 'block',
      width: '28px',
      height: '28px',
      transition: 'transform 0.2s ease, opacity 0.2s ease',
      position: 'absolute',
      top: '14px',
      left: '14px'
    });
    return icon;
  }

  function remembered() {
    try {
      return window.sessionStorage.getItem(storageKey) === '1';
    } catch (err) {
      return false;
    }
  }

  function remember(open) {
    try {
      if (open) window.sessionStorage.setItem(storageKey, '1');
      else window.sessionStorage.removeItem(storageKey);
    } catch (err) {
      /* storage blocked: the state just isn't remembered */
    }
  }

  function isNarrow() {
    return !!(narrow && narrow.matches);
  }

  function layoutFrame() {
    if (isNarrow()) {
      css(frame, {
        top: '0',
        left: '0',
        right: '0',
        bottom: '0',
        width: '100%',
        height: '100%',
        'max-height': 'none',
        'max-width': 'none',
        'border-radius': '0'
      });
    } else {
      css(frame, {
        top: 'auto',
        left: 'auto',
        right: '20px',
        bottom: '92px',
        width: '380px',
        height: '600px',
        'max-height': 'calc(100vh - 112px)',
        'max-width': 'calc(100vw - 40px)',
        'border-radius': '16px'
      });
    }
    // On a phone the open chat covers the page and has its own close button.
    css(launcher, { display: isOpen && isNarrow() ? 'none' : 'block' });
  }

  function setOpen(open, options) {
    options = options || {};
    isOpen = open;
    remember(open);
    launcher.setAttribute('aria-expanded', open ? 'true' : 'false');
    launcher.setAttribute('aria-label', open ? 'Close chat' : 'Open chat');
    css(chatIcon, { opacity: open ? '0' : '1', transform: open ? 'rotate(-30deg) scale(0.6)' : 'none' });
    css(closeIcon, { opacity: open ? '1' : '0', transform: open ? 'none' : 'rotate(30deg) scale(0.6)' });
    layoutFrame();
    if (open) {
      css(frame, { display: 'block' });
      // Next frame: animate in.
      window.requestAnimationFrame(function () {
        window.requestAnimationFrame(function () {
          if (!isOpen) return;
          css(frame, { opacity: '1', transform: 'none' });
        });
      });
      if (!options.silent) notifyFrame();
    } else {
      css(frame, { opacity: '0', transform: 'translateY(12px) scale(0.98)' });
      window.setTimeout(function () {
        if (!isOpen) css(frame, { display: 'none' });
      }, 180);
      if (!options.silent) launcher.focus();
    }
  }

  function notifyFrame() {
    try {
      if (frame.contentWindow) frame.contentWindow.postMessage({ switchboard: 'opened' }, hubOrigin);
    } catch (err) {
      /* frame not ready yet: it focuses nothing, which is fine */
    }
  }

  function build() {
    launcher = document.createElement('button');
    launcher.id = LAUNCHER_ID;
    launcher.type = 'button';
    launcher.setAttribute('aria-label', 'Open chat');
    launcher.setAttribute('aria-haspopup', 'dialog');
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-controls', FRAME_ID);
    css(launcher, {
      position: 'fixed',
      right: '20px',
      bottom: '20px',
      left: 'auto',
      top: 'auto',
      width: '56px',
      height: '56px',
      margin: '0',
      padding: '0',
      border: '0',
      'border-radius': '50%',
      background: BRAND,
      color: '#ffffff',
      cursor: 'pointer',
      'box-shadow': '0 6px 20px rgba(79, 70, 229, 0.4), 0 2px 6px rgba(15, 23, 42, 0.2)',
      'z-index': Z,
      display: 'block',
      outline: 'none',
      transition: 'transform 0.15s ease, box-shadow 0.15s ease',
      'line-height': '0',
      'min-width': '0',
      'min-height': '0',
      'max-width': 'none',
      'box-sizing': 'border-box'
    });
    chatIcon = svg([
      'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 3.5V18H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 5.25a1.25 1.25 0 1 0 0 2.5 1.25 1.25 0 0 0 0-2.5zm5 0a1.25 1.25 0 1 0 0 2.5 1.25 1.25 0 0 0 0-2.5zm5 0a1.25 1.25 0 1 0 0 2.5 1.25 1.25 0 0 0 0-2.5z'
    ]);
    closeIcon = svg(['M7.4 8.6 12 13.2l4.6-4.6L18 10l-6 6-6-6z']);
    css(closeIcon, { opacity: '0' });
    launcher.appendChild(chatIcon);
    launcher.appendChild(closeIcon);

    launcher.addEventListener('mouseenter', function () {
      css(launcher, { transform: 'scale(1.06)' });
    });
    launcher.addEventListener('mouseleave', function () {
      css(launcher, { transform: 'none' });
    });
    launcher.addEventListener('focus', function () {
      css(launcher, { 'box-shadow': '0 0 0 3px #ffffff, 0 0 0 6px ' + BRAND + ', 0 6px 20px rgba(79, 70, 229, 0.4)' });
    });
    launcher.addEventListener('blur', function () {
      css(launcher, { 'box-shadow': '0 6px 20px rgba(79, 70, 229, 0.4), 0 2px 6px rgba(15, 23, 42, 0.2)' });
    });
    launcher.addEventListener('click', function () {
      setOpen(!isOpen);
    });

    frame = document.createElement('iframe');
    frame.id = FRAME_ID;
    frame.title = 'Chat';
    frame.src = frameSrc();
    frame.setAttribute('referrerpolicy', 'strict-origin-when-cross-origin');
    css(frame, {
      position: 'fixed',
      display: 'none',
      border: '0',
      margin: '0',
      padding: '0',
      background: '#ffffff',
      'color-scheme': 'light',
      'box-shadow': '0 24px 60px rgba(15, 23, 42, 0.22), 0 4px 14px rgba(15, 23, 42, 0.12)',
      'z-index': Z,
      opacity: '0',
      transform: 'translateY(12px) scale(0.98)',
      'transform-origin': 'bottom right',
      transition: 'opacity 0.18s ease, transform 0.18s ease',
      overflow: 'hidden',
      'box-sizing': 'border-box'
    });

    window.addEventListener('message', function (event) {
      if (event.origin !== hubOrigin || event.source !== frame.contentWindow) return;
      var data = event.data;
      if (!data || typeof data !== 'object') return;
      if (data.switchboard === 'close' && isOpen) setOpen(false);
    });

    frame.addEventListener('load', function () {
      if (isOpen) notifyFrame();
    });

    if (narrow) {
      var relayout = function () {
        if (isOpen) layoutFrame();
      };
      if (narrow.addEventListener) narrow.addEventListener('change', relayout);
      else if (narrow.addListener) narrow.addListener(relayout);
    }

    document.body.appendChild(frame);
    document.body.appendChild(launcher);
    layoutFrame();
    if (remembered()) setOpen(true, { silent: true });
  }

  if (document.body) build();
  else document.addEventListener('DOMContentLoaded', build);
})();
