/* The customer's status page updates by itself.

   Every few seconds the page asks /t/<id>/updates whether the ticket changed
   since the version it shows (204: nothing new). When it did, the server
   sends the new HTML of the ticket part, rendered and escaped on the server,
   and the page swaps it in and tells screen readers (aria-live). Each answer
   is the whole current state, so after a dropped connection or a sleeping
   laptop the next answer catches up on everything missed. When the page's
   cookie is gone (401), it stops and says how to continue. */
(function () {
  "use strict";
  var root = document.getElementById("status-page");
  var region = document.getElementById("ticket-live");
  if (!root || !region || !window.fetch || !root.dataset.updatesUrl) {
    return;
  }
  var url = root.dataset.updatesUrl;
  var version = root.dataset.version || "";
  var every = Math.max(parseFloat(root.dataset.pollSeconds) || 5, 0.2) * 1000;
  var HIDDEN_EVERY = Math.max(every, 30000); // a tab in the background checks less often
  var MAX_BACKOFF = 60000;
  var REQUEST_TIMEOUT = 15000;
  var announcer = document.getElementById("status-announce");
  var notice = document.getElementById("status-connection");
  var failures = 0;
  var timer = null;
  var busy = false;
  var stopped = false;

  function show(message) {
    if (!notice) {
      return;
    }
    notice.textContent = message || "";
    notice.hidden = !message;
  }

  function announce(message) {
    if (!announcer || !message) {
      return;
    }
    // Cleared first so that a repeated message is read again.
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = message; }, 50);
  }

  function delay() {
    if (failures > 0) {
      return Math.min(every * Math.pow(2, failures), MAX_BACKOFF);
    }
    return document.hidden ? HIDDEN_EVERY : every;
  }

  function schedule(ms) {
    window.clearTimeout(timer);
    if (!stopped) {
      timer = window.setTimeout(check, ms);
    }
  }

  function stop(message) {
    stopped = true;
    window.clearTimeout(timer);
    show(message);
  }

  function swap(data) {
    region.innerHTML = data.html; // server-rendered and escaped; the CSP blocks inline scripts anyway
    version = data.version;
    root.dataset.version = version;
    var body = region.firstElementChild;
    announce(body && body.dataset ? body.dataset.announce : "");
  }

  function check() {
    if (busy || stopped) {
      return;
    }
    busy = true;
    // A half-open connection can leave a request hanging: give up on it and try again.
    var abort = window.AbortController ? new AbortController() : null;
    var giveUp = abort ? window.setTimeout(function () { abort.abort(); }, REQUEST_TIMEOUT) : null;
    fetch(url + "?v=" + encodeURIComponent(version), {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "application/json" },
      signal: abort ? abort.signal : undefined
    }).then(function (response) {
      window.clearTimeout(giveUp);
      if (response.status === 204) {
        return null;
      }
      if (response.status === 401 || response.status === 403 || response.status === 404) {
        return { ended: true };
      }
      if (!response.ok) {
        throw new Error("status " + response.status);
      }
      return response.json();
    }).then(function (data) {
      busy = false;
      if (data && data.ended) {
        stop(root.dataset.msgEnded);
        return;
      }
      failures = 0;
      show("");
      if (data && typeof data.html === "string" && data.version !== version) {
        swap(data);
      }
      schedule(delay());
    }).catch(function () {
      window.clearTimeout(giveUp);
      busy = false;
      failures += 1;
      if (failures >= 2) {
        show(root.dataset.msgOffline);
      }
      schedule(delay());
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      schedule(0);
    }
  });
  window.addEventListener("online", function () {
    failures = 0;
    schedule(0);
  });
  schedule(every);
}());
