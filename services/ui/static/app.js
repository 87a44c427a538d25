/* gentrain dashboard: what every page's script shares, as window.gentrain.
   api()     calls the JSON API with the page's session (same-origin cookie, CSRF header);
   stream()  follows a /v1/...events stream (EventSource: it sends the cookie, reconnects by itself
             with Last-Event-ID);
   duration(), ago(), pct(), badge(), escape(): how numbers and states are written. */
(function () {
  "use strict";

  var UNSAFE = { POST: true, PUT: true, PATCH: true, DELETE: true };

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function apiError(status, body, fallback) {
    var detail = body && body.error ? body.error : { code: "http_" + status, message: fallback, field: null };
    var error = new Error(detail.message || fallback);
    error.status = status;
    error.error = detail;
    return error;
  }

  /* fetch ``path`` with ``method`` and a JSON (or FormData) ``body``; the answer's JSON, or an
     Error with .status and .error = {code, message, field}. */
  function api(method, path, body) {
    method = (method || "GET").toUpperCase();
    var headers = { Accept: "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (UNSAFE[method]) {
      var token = csrfToken();
      if (token) headers["X-CSRF-Token"] = token;
    }
    if (body !== undefined && body !== null) {
      if (typeof FormData !== "undefined" && body instanceof FormData) {
        init.body = body;
      } else {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
    }
    return fetch(path, init).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      var parsed = type.indexOf("json") >= 0 ? response.json().catch(function () { return null; })
        : Promise.resolve(null);
      return parsed.then(function (data) {
        if (!response.ok) throw apiError(response.status, data, response.statusText || "request failed");
        return data;
      });
    });
  }

  /* Follow an event stream: handlers[type](data, event) for each event (data parsed from JSON);
     handlers.open() / handlers.error(event) when the connection opens or drops (EventSource then
     reconnects by itself, sending the last id it had). ``lastEventId`` starts after that id.
     Returns the EventSource (call .close() to stop). */
  function stream(path, handlers, lastEventId) {
    handlers = handlers || {};
    var url = path;
    if (lastEventId !== undefined && lastEventId !== null && lastEventId !== "") {
      url += (url.indexOf("?") >= 0 ? "&" : "?") + "last_event_id=" + encodeURIComponent(String(lastEventId));
    }
    var source = new EventSource(url, { withCredentials: true });
    Object.keys(handlers).forEach(function (type) {
      if (type === "open" || type === "error") return;
      source.addEventListener(type, function (event) {
        var data = null;
        try { data = event.data ? JSON.parse(event.data) : null; } catch (e) { data = event.data; }
        handlers[type](data, event);
      });
    });
    source.addEventListener("open", function (event) { if (handlers.open) handlers.open(event); });
    source.addEventListener("error", function (event) { if (handlers.error) handlers.error(event); });
    return source;
  }

  /* 1h 02m, 3m 05s, 12s (as the server writes them, services/ui/display.py); "—" for none. */
  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
    var total = Math.max(0, Math.round(seconds));
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var secs = total % 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (hours) return hours + "h " + two(minutes) + "m";
    if (minutes) return minutes + "m " + two(secs) + "s";
    return secs + "s";
  }

  /* How long ago an ISO time was: "just now", "5 min ago", "3 h ago", "2 d ago". */
  function ago(iso, now) {
    if (!iso) return "—";
    var then = Date.parse(iso);
    if (isNaN(then)) return "—";
    var seconds = Math.max(0, ((now === undefined ? Date.now() : now) - then) / 1000);
    if (seconds < 45) return "just now";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " d ago";
  }

  /* A fraction as a whole percentage: 0.426 → "43%". */
  function pct(x) {
    if (x === null || x === undefined || !isFinite(x)) return "—";
    return Math.round(100 * x) + "%";
  }

  function escape(text) {
    return String(text === null || text === undefined ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  /* A status badge's HTML: the colour comes from the class, the meaning from the text. */
  function badge(status) {
    var name = escape(status);
    return '<span class="badge status-' + name + '" data-status="' + name + '">' + name + "</span>";
  }

  window.gentrain = {
    api: api,
    stream: stream,
    csrfToken: csrfToken,
    duration: duration,
    ago: ago,
    pct: pct,
    escape: escape,
    badge: badge,
  };
})();
