/* Live updates of agent pages.

   The page follows /agent/live (Server-Sent Events). An event carries only
   ids and a kind; on each one the page fetches its own URL again and swaps
   its live regions (#ticket-list, #timeline, #customer-timeline, and any
   element with an id and a data-live-region attribute) for the server's new
   HTML, so escaping stays on the server. After a dropped connection the
   browser reconnects with Last-Event-ID and the server replays what was
   missed. A region with a field the agent is editing is left alone until
   the field is done with. */
(function () {
  "use strict";
  var config = document.getElementById("live-config");
  if (!config || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var REGIONS = ["ticket-list", "timeline", "customer-timeline"];
  var status = document.getElementById("live-status");
  var text = {
    updated: config.dataset.msgUpdated || "Updated",
    offline: config.dataset.msgOffline || "Reconnecting…",
    online: config.dataset.msgOnline || "Live"
  };
  var lastId = config.dataset.lastId || "0";
  var source = null;
  var refreshTimer = null;
  var refreshing = false;
  var again = false;
  var deferred = false;
  var offlineTimer = null;
  var offline = false;
  var noticeTimer = null;
  var retryDelay = 1000;

  function say(message, isOffline) {
    if (!status) {
      return;
    }
    clearTimeout(noticeTimer);
    status.classList.toggle("offline", Boolean(isOffline));
    // Clear first so a screen reader announces a repeated message again.
    status.textContent = "";
    window.setTimeout(function () { status.textContent = message; }, 50);
    if (!isOffline) {
      noticeTimer = window.setTimeout(function () { status.textContent = ""; }, 4000);
    }
  }

  function regionIds() {
    var ids = REGIONS.slice();
    document.querySelectorAll("[data-live-region][id]").forEach(function (element) {
      if (ids.indexOf(element.id) < 0) {
        ids.push(element.id);
      }
    });
    return ids;
  }

  function isEditing(region) {
    var active = document.activeElement;
    if (active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    return Array.prototype.some.call(region.querySelectorAll("input, textarea"), function (field) {
      return field.type !== "hidden" && field.type !== "checkbox" && field.type !== "radio" &&
        field.value !== field.defaultValue;
    });
  }

  function toLogin(response) {
    if (response.redirected && new URL(response.url).pathname === "/agent/login") {
      window.location.assign(response.url);
      return true;
    }
    return false;
  }

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var changed = false;
    deferred = false;
    regionIds().forEach(function (id) {
      var current = document.getElementById(id);
      var fresh = doc.getElementById(id);
      if (!current || !fresh) {
        return;
      }
      current.classList.remove("live-updated");
      if (current.isEqualNode(fresh)) {
        return;
      }
      if (isEditing(current)) {
        deferred = true;
        return;
      }
      var node = document.importNode(fresh, true);
      current.replaceWith(node);
      node.classList.add("live-updated");
      changed = true;
    });
    if (changed) {
      say(text.updated, false);
      document.dispatchEvent(new CustomEvent("live:updated"));
    }
  }

  function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    fetch(window.location.href, {credentials: "same-origin", cache: "no-store",
                                 headers: {"X-Requested-With": "live-update"}})
      .then(function (response) {
        if (toLogin(response) || !response.ok) {
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== null) {
          swap(html);
        }
      })
      .catch(function () { /* the next event or reconnect tries again */ })
      .then(function () {
        refreshing = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  }

  function schedule() {
    // Several events of one change arrive together: fetch once.
    clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, 120);
  }

  function wentOffline() {
    if (offlineTimer === null) {
      // A stream ending normally reconnects within seconds: only say so when it lasts.
      offlineTimer = window.setTimeout(function () {
        offline = true;
        say(text.offline, true);
      }, 4000);
    }
  }

  function backOnline() {
    clearTimeout(offlineTimer);
    offlineTimer = null;
    retryDelay = 1000;
    if (offline) {
      offline = false;
      say(text.online, false);
    }
  }

  function reconnectLater() {
    window.setTimeout(function () {
      fetch(window.location.href, {credentials: "same-origin", cache: "no-store", method: "HEAD"})
        .then(function (response) {
          if (!toLogin(response)) {
            connect();
          }
        })
        .catch(reconnectLater);
    }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  function onEvent(event) {
    if (event.lastEventId) {
      lastId = event.lastEventId;
    }
    schedule();
  }

  function connect() {
    source = new EventSource(config.dataset.url + "&last_id=" + encodeURIComponent(lastId));
    source.onopen = backOnline;
    source.onmessage = onEvent;
    source.addEventListener("resync", onEvent);
    source.addEventListener("signout", function () {
      source.close();
      window.location.reload();
    });
    source.onerror = function () {
      wentOffline();
      if (source.readyState === EventSource.CLOSED) {
        // Refused (session over, server busy): the browser gives up, we do not.
        source.close();
        reconnectLater();
      }
      // Otherwise the browser reconnects by itself, sending Last-Event-ID.
    };
  }

  document.addEventListener("focusout", function () {
    if (deferred) {
      window.setTimeout(function () {
        if (deferred) {
          schedule();
        }
      }, 200);
    }
  });
  connect();
}());
