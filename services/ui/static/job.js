/* The job page, live: the page was rendered up to a change-log id; the job's event stream resumes
   after it and moves the badge, progress, charts, grids, artifacts and log. Rows that committed
   while the page was read may come again: each is merged (by step, name or log offset), never
   shown twice. When the job ends, the server-rendered parts that change (results, actions,
   artifacts) are fetched again from the page itself. */
(function () {
  "use strict";

  var g = window.gentrain;
  var data = JSON.parse(document.getElementById("job-data").textContent);
  var TERMINAL = ["succeeded", "failed", "cancelled"];
  var GRID = /^samples\/(epoch|step)-(\d+)\.png$/;
  var LOG_LIMIT = 256 * 1024;

  function $(id) { return document.getElementById(id); }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge-" + status;
    span.setAttribute("data-status", status);
    span.textContent = status;
    return span;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    return g && g.duration ? g.duration(seconds) : Math.round(seconds) + "s";
  }

  function when(iso) {
    return iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : "—";
  }

  function showError(el, error) {
    var detail = error && error.error ? error.error.message : String(error && error.message || error);
    el.textContent = detail;
    el.hidden = false;
  }

  /* ---- status, progress, facts ---- */

  var stream = null;

  function setStatus(status) {
    data.status = status;
    var holder = $("job-status");
    holder.replaceChildren(badge(status));
    var cancel = $("cancel-button");
    if (cancel && status !== "queued" && status !== "running") cancel.remove();
  }

  function onStatus(event) {
    setStatus(event.status);
    if (event.attempt !== undefined) $("job-attempts").textContent = String(event.attempt);
    var item = document.createElement("li");
    var time = document.createElement("time");
    time.dateTime = event.at || "";
    time.textContent = when(event.at);
    item.append(badge(event.status), " ", time);
    if (event.message) {
      var message = document.createElement("span");
      message.className = "message";
      message.textContent = event.message;
      item.append(" ", message);
    }
    $("timeline").appendChild(item);
    if (TERMINAL.indexOf(event.status) >= 0) finished();
  }

  function onProgress(event) {
    if (typeof event.progress === "number") {
      $("job-progress").value = event.progress;
      $("job-progress-text").textContent = Math.round(100 * event.progress) + "%";
    }
    if ("eta_seconds" in event) $("job-eta").textContent = duration(event.eta_seconds);
    if (event.replicas) $("job-replicas").textContent = String(event.replicas);
    if (event.global_batch_size) {
      $("job-global-batch").textContent = String(event.global_batch_size);
    }
    if (event.param_count) $("job-param-count").textContent = event.param_count.toLocaleString("en");
  }

  /* ---- charts ---- */

  var chartsEl = $("charts");
  var charts = null;
  if (chartsEl && window.gentrainCharts) {
    charts = new window.gentrainCharts.JobCharts(chartsEl, data.metrics, data.unit);
    window.gentrainCharts.onResize(chartsEl, charts);
  }

  function onMetrics(event) {
    if (charts) charts.add(event.step, event.values || {});
  }

  /* ---- grids: the slider over the training grids, and the final grid ---- */

  var grids = data.grids.slice();
  var slider = $("grid-slider");

  function showGrid(index) {
    var grid = grids[index];
    if (!grid) return;
    $("grid-image").src = grid.url;
    $("grid-step").textContent = String(grid.step);
  }

  if (slider) {
    slider.addEventListener("input", function () { showGrid(Number(slider.value)); });
  }

  function addGrid(step, event) {
    var atEnd = !slider || Number(slider.value) >= grids.length - 1;
    var at = 0;
    while (at < grids.length && grids[at].step < step) at++;
    var grid = { step: step, url: event.url, name: event.name };
    if (grids[at] && grids[at].step === step) grids[at] = grid; else grids.splice(at, 0, grid);
    if (!slider) return;
    slider.max = String(grids.length - 1);
    $("progress-grid").hidden = false;
    $("gallery-empty").hidden = true;
    if (atEnd) {
      slider.value = String(grids.length - 1);
      showGrid(grids.length - 1);
    }
  }

  function showFinal(url) {
    var image = $("final-grid-image");
    // A replaced artifact keeps its URL: ask again for the new bytes.
    image.src = url + (url.indexOf("?") < 0 ? "?" : "&") + "v=" + Date.now();
    $("final-grid").hidden = false;
    $("gallery-empty").hidden = true;
  }

  /* ---- artifacts ---- */

  function addArtifactRow(event) {
    var rows = $("artifact-rows");
    var existing = rows.querySelector('tr[data-name="' + CSS.escape(event.name) + '"]');
    var row = document.createElement("tr");
    row.setAttribute("data-name", event.name);
    var link = document.createElement("a");
    link.href = event.url;
    link.setAttribute("download", "");
    link.textContent = event.name;
    var cells = [link, sizeText(event.size_bytes), when(event.at)];
    cells.forEach(function (content) {
      var cell = document.createElement("td");
      cell.append(content);
      row.appendChild(cell);
    });
    if (existing) existing.replaceWith(row); else rows.appendChild(row);
    $("artifact-count").textContent = String(rows.children.length);
  }

  function sizeText(bytes) {
    if (typeof bytes !== "number") return "—";
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function onArtifact(event) {
    addArtifactRow(event);
    var match = GRID.exec(event.name);
    if (match) addGrid(Number(match[2]), event);
    else if (event.name === data.final_grid_name) showFinal(event.url);
  }

  /* ---- log ---- */

  var logEl = $("log");
  var logEnd = data.log_end;

  function onLog(event) {
    var start = event.job_offset;
    var text = event.text || "";
    if (typeof start !== "number" || start + text.length <= logEnd) return;
    var fresh = text.slice(Math.max(0, logEnd - start));
    logEnd = start + text.length;
    var following = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 8;
    logEl.append(fresh);
    if (logEl.textContent.length > LOG_LIMIT) {
      logEl.textContent = logEl.textContent.slice(-LOG_LIMIT);
    }
    if (following) logEl.scrollTop = logEl.scrollHeight;
  }
  logEl.scrollTop = logEl.scrollHeight;

  /* ---- the end: fetch the parts the server renders once the job is over ---- */

  function finished() {
    if (stream) stream.close();
    stream = null;
    $("job-eta").textContent = "—";
    fetch(data.page_url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["job-actions", "job-error", "job-facts", "results", "draw", "artifacts", "gallery"].forEach(function (id) {
          var now = $(id);
          var then = fresh.getElementById(id);
          if (now && then) now.replaceWith(document.importNode(then, true));
        });
        slider = $("grid-slider");
        grids = JSON.parse(fresh.getElementById("job-data").textContent).grids;
        if (slider) slider.addEventListener("input", function () { showGrid(Number(slider.value)); });
        bindActions();
      })
      .catch(function () { /* the live parts are right; the rest shows on the next load */ });
  }

  /* ---- buttons ---- */

  function bindActions() {
    var cancel = $("cancel-button");
    if (cancel) {
      cancel.addEventListener("click", function () {
        cancel.disabled = true;
        g.api("POST", "/v1/jobs/" + data.id + "/cancel")
          .then(function (job) {
            setStatus(job.status);
            if (TERMINAL.indexOf(job.status) >= 0 && !stream) finished();
          })
          .catch(function (error) {
            cancel.disabled = false;
            showError($("action-error"), error);
          });
      });
    }
    var form = $("draw-form");
    if (form) form.addEventListener("submit", draw);
  }

  function draw(submit) {
    submit.preventDefault();
    var form = submit.target;
    var button = form.querySelector("button");
    var result = $("draw-result");
    $("draw-error").hidden = true;
    button.disabled = true;
    var params = { count: Number(form.elements.count.value), seed: Number(form.elements.seed.value) };
    // The kind's own parameters (a conditional GAN's digits): "7,3" as a list, else JSON, else
    // as typed; left out when empty. The API names whatever is wrong.
    Array.prototype.forEach.call(form.querySelectorAll("[data-param]"), function (input) {
      var text = input.value.trim();
      if (text === "") return;
      if (input.hasAttribute("data-list") && /^\d+(\s*,\s*\d+)*$/.test(text)) {
        params[input.getAttribute("data-param")] = text.split(",").map(Number);
        return;
      }
      try {
        params[input.getAttribute("data-param")] = JSON.parse(text);
      } catch (error) {
        params[input.getAttribute("data-param")] = text;
      }
    });
    g.api("POST", "/v1/jobs/" + data.id + "/samples", { params: params })
      .then(function (job) {
        var figure = document.createElement("figure");
        figure.className = "grid-figure";
        figure.setAttribute("data-sample-job", job.id);
        var caption = document.createElement("figcaption");
        var link = document.createElement("a");
        link.href = "/ui/jobs/" + job.id;
        link.textContent = "count " + params.count + ", seed " + params.seed +
          (params.digits !== undefined ? ", digits " + params.digits : "");
        var state = badge(job.status);
        caption.append(link, " ", state);
        figure.appendChild(caption);
        result.prepend(figure);
        var sampling = g.stream("/v1/jobs/" + job.id + "/events", {
          status: function (event) {
            state.replaceWith(state = badge(event.status));
            if (TERMINAL.indexOf(event.status) >= 0) {
              sampling.close();
              button.disabled = false;
              if (event.status === "failed") showError($("draw-error"), event.message || "failed");
            }
          },
          artifact: function (event) {
            if (event.name !== "samples/grid.png") return;
            var image = document.createElement("img");
            image.alt = "Samples, seed " + params.seed;
            image.src = event.url;
            figure.prepend(image);
          },
        });
      })
      .catch(function (error) {
        button.disabled = false;
        showError($("draw-error"), error);
      });
  }

  bindActions();

  /* ---- the stream ---- */

  if (!data.terminal) {
    stream = g.stream(data.events_url, {
      status: onStatus,
      progress: onProgress,
      metrics: onMetrics,
      artifact: onArtifact,
      log: onLog,
    }, String(data.last_event_id));
  }
})();
