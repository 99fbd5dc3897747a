// scheduler dashboard: auto-refresh of marked regions and confirmation of actions.
// Plain JavaScript, no library. Pages work without it: actions then ask on a
// confirmation page, and the overview is reloaded by hand.
(function () {
  "use strict";

  // <div data-refresh-url="..." data-refresh-ms="5000">: replace the content with
  // the fragment at that URL every few seconds (no full page reload). Stops
  // when the new content holds [data-finished="yes"].
  function refresh(region) {
    var url = region.getAttribute("data-refresh-url");
    var ms = parseInt(region.getAttribute("data-refresh-ms"), 10) || 5000;
    var timer = setInterval(function () {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          region.innerHTML = html;
          region.setAttribute("data-refreshed", String(Date.now()));
          if (region.querySelector('[data-finished="yes"]')) { clearInterval(timer); }
        })
        .catch(function () { region.setAttribute("data-refresh-error", "1"); });
    }, ms);
  }

  // <form data-confirm="question">: ask before sending; a confirmed form says so.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (!question) { return; }
    var flag = form.querySelector('input[name="confirmed"]');
    if (!window.confirm(question)) { ev.preventDefault(); return; }
    if (flag) { flag.value = "yes"; }
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-url]").forEach(refresh);
  });
})();
