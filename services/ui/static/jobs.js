/* The jobs page, live: the table was rendered up to a change-log id; the job-list stream
   (GET /v1/events) resumes after it. A job created since appears at the top (first page, when it
   fits the filters), badges change, bars move; when a job ends its key result and run time are
   read once from GET /v1/jobs/<id>. An event seen twice changes nothing. */
(function () {
  "use strict";

  var g = window.gentrain;
  var data = JSON.parse(document.getElementById("jobs-data").textContent);
  var TERMINAL = { succeeded: true, failed: true, cancelled: true };
  var rows = document.getElementById("job-rows");
  var showOwner = data.show_owner;

  function row(jobId) {
    return rows.querySelector('tr[data-job-id="' + CSS.escape(jobId) + '"]');
  }

  function cell(tr, name) { return tr.querySelector("." + name); }

  function setProgress(tr, progress, status) {
    var bar = tr.querySelector(".job-progress progress");
    if (!bar) return;
    if (typeof progress === "number") {
      bar.value = progress;
      bar.textContent = g.pct(progress);
      tr.querySelector(".job-progress .progress-text").textContent = g.pct(progress);
    }
    if (status) bar.classList.toggle("done", status === "succeeded");
  }

  function setStatus(tr, status) {
    tr.setAttribute("data-status", status);
    cell(tr, "job-status").innerHTML = g.badge(status);
  }

  function keyResult(job) {
    var wanted = data.key_results[job.model_kind];
    var results = job.results || {};
    if (!wanted || job.kind === "sample") return null;
    var names = [wanted, "test_" + wanted].concat(Object.keys(results).filter(function (name) {
      return name.slice(-(wanted.length + 1)) === "_" + wanted;
    }));
    for (var i = 0; i < names.length; i++) {
      var value = results[names[i]];
      if (typeof value === "number") return { name: names[i], value: value };
    }
    return null;
  }

  function number(value) {
    if (Number.isInteger(value)) return value.toLocaleString("en");
    return Math.abs(value) < 1e5 ? String(Number(value.toPrecision(4))) : Math.round(value).toLocaleString("en");
  }

  function seconds(from, to) {
    if (!from || !to) return null;
    return (Date.parse(to) - Date.parse(from)) / 1000;
  }

  /* A finished job's result and run time, read once. */
  function fillFinished(tr) {
    var jobId = tr.getAttribute("data-job-id");
    g.api("GET", "/v1/jobs/" + encodeURIComponent(jobId)).then(function (job) {
      var result = keyResult(job);
      var holder = cell(tr, "job-result");
      if (result) {
        holder.innerHTML = '<span title="' + g.escape(result.name) + '">' + g.escape(number(result.value)) +
          '</span> <span class="muted small">' + g.escape(result.name) + "</span>";
      }
      if (job.started_at) tr.setAttribute("data-started", job.started_at);
      cell(tr, "job-duration").textContent = g.duration(seconds(job.started_at, job.finished_at));
      setProgress(tr, job.progress, job.status);
      setStatus(tr, job.status);
    }).catch(function () { /* the row keeps what the stream said */ });
  }

  function fits(event) {
    if (!data.first_page) return false;
    if (data.kind && event.kind !== data.kind) return false;
    if (data.status && event.status !== data.status) return false;
    return true;
  }

  function when(iso) {
    return iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : "—";
  }

  function newRow(event) {
    var tr = document.createElement("tr");
    var id = event.job_id;
    var kind = g.escape(event.model_kind) + (event.kind !== event.model_kind
      ? ' <span class="muted">' + g.escape(event.kind) + "</span>" : "");
    tr.className = "fresh";
    tr.setAttribute("data-job-id", id);
    tr.setAttribute("data-status", event.status);
    tr.setAttribute("data-started", "");
    tr.innerHTML =
      '<td><a class="job-link" href="' + g.escape(data.job_url.replace("JOB_ID", encodeURIComponent(id))) +
        '"><code title="' + g.escape(id) + '">' + g.escape(id.slice(0, 8)) + "</code></a></td>" +
      '<td class="job-kind">' + kind + "</td>" +
      '<td class="hide-narrow">' + g.escape(event.dataset || "—") + "</td>" +
      (showOwner ? '<td class="hide-narrow">' + g.escape(event.owner || "") + "</td>" : "") +
      '<td class="job-status">' + g.badge(event.status) + "</td>" +
      '<td class="num hide-narrow job-priority">' + g.escape(event.priority === undefined ? "—" : String(event.priority)) + "</td>" +
      '<td class="job-progress"><div class="progress"><progress max="1" value="0" aria-label="Progress of ' +
        g.escape(id.slice(0, 8)) + '">0%</progress> <span class="progress-text">0%</span></div></td>' +
      '<td class="num job-result"><span class="muted">—</span></td>' +
      '<td class="hide-narrow"><time datetime="' + g.escape(event.created_at || "") + '">' +
        g.escape(when(event.created_at)) + "</time></td>" +
      '<td class="num hide-narrow job-duration">—</td>';
    rows.insertBefore(tr, rows.firstChild);
    document.getElementById("no-jobs").hidden = true;
    var total = document.getElementById("job-total");
    var count = parseInt(total.textContent, 10);
    if (!isNaN(count)) {
      count += 1;
      total.textContent = total.textContent.replace(/^\d+ jobs?/, count + (count === 1 ? " job" : " jobs"));
    }
    return tr;
  }

  function onStatus(event) {
    var tr = row(event.job_id);
    if (!tr) {
      if (event.status !== "queued" || !fits(event)) return;
      tr = newRow(event);
    }
    var previous = tr.getAttribute("data-status");
    if (TERMINAL[previous]) return; // a terminal status is never left: an old event, seen again
    setStatus(tr, event.status);
    if (event.status === "running" && !tr.getAttribute("data-started")) {
      tr.setAttribute("data-started", event.at || "");
    }
    if (typeof event.progress === "number") setProgress(tr, event.progress, event.status);
    if (TERMINAL[event.status]) {
      if (event.status === "succeeded") setProgress(tr, 1, "succeeded");
      fillFinished(tr);
    }
  }

  function onProgress(event) {
    var tr = row(event.job_id);
    if (!tr || TERMINAL[tr.getAttribute("data-status")]) return;
    setProgress(tr, event.progress);
  }

  /* The run time of running jobs grows while the page is open. */
  function tick() {
    var now = new Date().toISOString();
    rows.querySelectorAll('tr[data-status="running"]').forEach(function (tr) {
      var started = tr.getAttribute("data-started");
      if (started) cell(tr, "job-duration").textContent = g.duration(seconds(started, now));
    });
  }
  window.setInterval(tick, 1000);

  var live = document.getElementById("live-state");
  function liveState(on) {
    live.querySelector(".live-dot").classList.toggle("on", on);
    live.querySelector(".live-text").textContent = on ? "live" : "reconnecting…";
  }

  var filters = document.getElementById("job-filters");
  filters.querySelectorAll("select").forEach(function (select) {
    select.addEventListener("change", function () { filters.requestSubmit(); });
  });

  g.stream(data.events_url, {
    status: onStatus,
    progress: onProgress,
    open: function () { liveState(true); },
    error: function () { liveState(false); },
  }, data.last_event_id);
})();
