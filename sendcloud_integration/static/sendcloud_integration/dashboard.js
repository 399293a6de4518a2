/* The staff dashboard: the shop picker submits itself; while batches run, read their progress every few seconds, and reload once one
   finishes so the counts on the page follow. Its settings come from the page (json_script), so the page
   needs no inline script and works under the admin's Content-Security-Policy. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("sc-dashboard-refresh").textContent);
  var ids = config.ids;
  var seconds = config.seconds;
  function tick() {
    var query = ids.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
    fetch(config.url + "?" + query, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        var finished = false;
        data.batches.forEach(function (b) {
          document.querySelectorAll('.sc-progress[data-batch="' + b.id + '"]').forEach(function (bar) {
            bar.setAttribute("aria-valuenow", b.percent);
            bar.querySelector(".sc-ok").style.width = b.ok_percent + "%";
            bar.querySelector(".sc-failed").style.width = b.failed_percent + "%";
          });
          document.querySelectorAll('.sc-progress-text[data-batch="' + b.id + '"]').forEach(function (text) {
            text.textContent = b.percent + "% · " + b.done + "/" + b.queued + (b.failed ? " · " + b.failed + " failed" : "");
          });
          document.querySelectorAll('tr.sc-batch[data-batch="' + b.id + '"] .sc-status').forEach(function (cell) {
            cell.textContent = b.status_label;
          });
          if (!b.active) { finished = true; }
        });
        if (finished) { window.location.reload(); } else { window.setTimeout(tick, seconds * 1000); }
      })
      .catch(function () { window.setTimeout(tick, seconds * 3000); });
  }
  document.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  if (ids.length) { window.setTimeout(tick, seconds * 1000); }
})();
