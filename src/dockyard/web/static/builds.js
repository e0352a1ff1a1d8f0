// Dockyard console: a build's live log (templates/build.html). The page comes with the log so far;
// this asks the console for what follows (/console/builds/ID/log?offset=N: X-Log-Size, X-Build-Status)
// every second while the build is queued or running, appends it, then shows the final status.
(function () {
  "use strict";
  var log = document.querySelector("pre[data-log-url]");
  if (!log || !window.fetch) { return; }
  var badge = document.querySelector("h2 [data-testid=build-status]");
  var labels = {};
  try { labels = JSON.parse(log.getAttribute("data-labels") || "{}"); } catch (e) { labels = {}; }
  var offset = parseInt(log.getAttribute("data-offset") || "0", 10) || 0;
  var failures = 0;

  function active(status) { return status === "queued" || status === "running"; }

  // The server counts characters (code points), as Array.from does; String.length counts UTF-16 units.
  function length(text) { return Array.from(text).length; }

  function showStatus(status) {
    log.setAttribute("data-status", status);
    if (!badge || badge.getAttribute("data-status") === status) { return; }
    badge.setAttribute("data-status", status);
    badge.className = badge.className.replace(/\bstate-[a-z]+/, "state-" + status);
    badge.textContent = labels[status] || status;
    if (!active(status)) {
      var live = document.querySelector("[data-testid=build-log-live]");
      if (live) { live.parentNode.removeChild(live); }
      var announce = document.getElementById("announce");  // screen readers hear the end too
      if (announce) { announce.textContent = badge.textContent; }
      refreshSummary();
    }
  }

  // The build's facts as they are now (its digest, duration, error; no cancel button): from the page itself.
  function refreshSummary() {
    var summary = document.getElementById("build-summary");
    if (!summary || !window.DOMParser) { return; }
    fetch(window.location.href, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var fresh = html && new DOMParser().parseFromString(html, "text/html").getElementById("build-summary");
        if (fresh) { summary.parentNode.replaceChild(document.importNode(fresh, true), summary); }
      })
      .catch(function () { /* the page keeps what it shows */ });
  }

  function append(text) {
    var follow = log.scrollHeight - log.scrollTop - log.clientHeight < 40;  // at the bottom: stay there
    log.appendChild(document.createTextNode(text));
    if (follow) { log.scrollTop = log.scrollHeight; }
    var waiting = document.querySelector("[data-testid=build-log-waiting]");
    if (waiting) { waiting.parentNode.removeChild(waiting); }
  }

  function poll() {
    fetch(log.getAttribute("data-log-url") + "?offset=" + offset, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        var size = response.headers.get("X-Log-Size");
        var status = response.headers.get("X-Build-Status");
        if (!response.ok || size === null || !status) { throw new Error("no log: " + response.status); }
        return response.text().then(function (text) { return {text: text, size: parseInt(size, 10), status: status}; });
      })
      .then(function (answer) {
        failures = 0;
        if (answer.size < offset) {  // a new attempt started the log again
          log.textContent = "";
          offset = 0;
          setTimeout(poll, 0);
          return;
        }
        if (answer.text) {
          append(answer.text);
          offset += length(answer.text);
        }
        showStatus(answer.status);
        if (active(answer.status) || offset < answer.size) { setTimeout(poll, offset < answer.size ? 0 : 1000); }
      })
      .catch(function () {
        failures += 1;  // the network or the server, for a moment: ask again, less often; then give up
        if (failures < 8) { setTimeout(poll, 1000 * failures); }
      });
  }

  if (active(log.getAttribute("data-status"))) { setTimeout(poll, 1000); }
})();
