/* Switchboard live socket: one reconnecting WebSocket, shared by the agent inbox and the
 * chat widget. Plain browser JavaScript, no dependencies, served under `script-src 'self'`.
 *
 *   var live = SwitchboardLiveSocket({
 *     url: function () { return 'wss://…'; },     // read on every connect
 *     prepare: function () { return promise; },    // optional: run before each connect;
 *                                                  // falsy = connect now, rejected = retry later
 *     onOpen: function () {},                      // the socket is open (send works)
 *     onFrame: function (frame) {},                // a parsed JSON frame
 *     onClose: function (opened) {},               // the socket ended; `opened`: it ever opened
 *     onConnectError: function (err) {}            // optional: `new WebSocket` threw
 *   });
 *   live.start(); live.send({type: …}); live.reconnectNow(); live.close();
 *
 * Reconnects with exponential backoff (0.5 s doubling to 15 s, equal jitter, reset on open),
 * pings every 20 s and closes (4000) a socket that has sent nothing for 50 s, since a
 * half-open connection never fires `close` by itself.
 */
(function () {
  'use strict';

  var PING_INTERVAL = 20000;
  var STALE_AFTER = 50000;
  var BACKOFF_MIN = 500;
  var BACKOFF_MAX = 15000;

  function noop() {}

  function createLiveSocket(options) {
    var onOpen = options.onOpen || noop;
    var onFrame = options.onFrame || noop;
    var onClose = options.onClose || noop;
    var onConnectError = options.onConnectError || noop;

    var ws = null;
    var generation = 0; // bumps on every socket, so events of an older one are dropped
    var attempt = 0;
    var reconnectTimer = null;
    var pingTimer = null;
    var lastFrameAt = 0;
    var closed = false;

    function send(frame) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      try {
        ws.send(JSON.stringify(frame));
        return true;
      } catch (err) {
        return false;
      }
    }

    function startPing() {
      stopPing();
      pingTimer = setInterval(function () {
        if (!ws) return;
        if (Date.now() - lastFrameAt > STALE_AFTER) {
          try {
            ws.close(4000, 'stale');
          } catch (err) { /* ignore */ }
          return;
        }
        send({ type: 'ping' });
      }, PING_INTERVAL);
    }

    function stopPing() {
      if (pingTimer) clearInterval(pingTimer);
      pingTimer = null;
    }

    function connect() {
      if (closed) return;
      var mine = ++generation;
      var opened = false;
      var socket;
      try {
        socket = new WebSocket(options.url());
      } catch (err) {
        onConnectError(err);
        scheduleReconnect();
        return;
      }
      ws = socket;

      socket.addEventListener('open', function () {
        if (mine !== generation) return;
        opened = true;
        attempt = 0;
        lastFrameAt = Date.now();
        startPing();
        onOpen();
      });
      socket.addEventListener('message', function (event) {
        if (mine !== generation) return;
        lastFrameAt = Date.now();
        var frame;
        try {
          frame = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        onFrame(frame);
      });
      socket.addEventListener('close', function () {
        if (mine !== generation) return;
        ws = null;
        stopPing();
        onClose(opened);
        scheduleReconnect();
      });
      socket.addEventListener('error', function () {
        /* a close event follows */
      });
    }

    /* The caller's `prepare` step (if any), then the socket. */
    function begin() {
      if (closed) return;
      var ready = options.prepare ? options.prepare() : null;
      if (!ready) {
        connect();
        return;
      }
      ready.then(connect, scheduleReconnect);
    }

    function scheduleReconnect() {
      if (reconnectTimer || closed) return;
      var base = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, attempt));
      var delay = base / 2 + Math.random() * (base / 2); // "equal jitter"
      attempt = Math.min(attempt + 1, 10);
      reconnectTimer = setTimeout(function () {
        reconnectTimer = null;
        begin();
      }, delay);
    }

    /* Connect now unless a socket is open or opening (first start, back online, tab shown). */
    function reconnectNow() {
      if (closed) return;
      if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) return;
      if (reconnectTimer) {
        clearTimeout(reconnectTimer);
        reconnectTimer = null;
      }
      attempt = 0;
      begin();
    }

    /* Stop for good: no more reconnects and no more callbacks. */
    function close() {
      closed = true;
      generation += 1;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = null;
      stopPing();
      if (ws) {
        try {
          ws.close();
        } catch (err) { /* ignore */ }
        ws = null;
      }
    }

    return {
      start: reconnectNow,
      reconnectNow: reconnectNow,
      send: send,
      close: close
    };
  }

  window.SwitchboardLiveSocket = createLiveSocket;
})();
