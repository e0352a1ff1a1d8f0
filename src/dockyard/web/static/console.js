// Dockyard console: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // Forms with data-confirm ask first (deleting, revoking, rotating).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP pages have no clipboard API: copy through a hidden text area.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  // Buttons with data-copy="#id" copy that element's text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) { return; }
    var label = button.textContent;
    copyText(source.textContent.trim()).then(function () {
      button.textContent = button.getAttribute("data-copied") || "Copied";
      var announce = document.getElementById("announce");  // screen readers hear it too
      if (announce) { announce.textContent = button.textContent; }
      button.setAttribute("data-copied-state", "yes");
      setTimeout(function () { button.textContent = label; button.removeAttribute("data-copied-state"); }, 1500);
    });
  });
})();
