/* The datasets page's upload: the form goes to POST /v1/datasets as multipart through
   XMLHttpRequest (fetch cannot report upload progress) with the session's CSRF header; the bar
   follows the bytes sent; the API's error is shown next to the field it names (file, name; an
   array's error beside the file), and the new dataset is added to the top of the list. */
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  if (!form) return;
  var data = JSON.parse(document.getElementById("datasets-data").textContent);
  var button = document.getElementById("upload-button");
  var progress = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var percent = document.getElementById("upload-percent");
  var formError = document.getElementById("upload-error");
  var done = document.getElementById("upload-done");
  var esc = window.gentrain.escape;

  /* A byte count in B, KB, MB or GB, as the server writes it (services/ui/display.py). */
  function size(count) {
    var value = count;
    var units = ["B", "KB", "MB"];
    for (var i = 0; i < units.length; i++) {
      if (value < 1024) return i === 0 ? Math.round(value) + " B" : value.toFixed(1) + " " + units[i];
      value /= 1024;
    }
    return value.toFixed(1) + " GB";
  }

  /* An ISO time as 2024-05-01 12:03:04 UTC, as the server writes it. */
  function when(iso) {
    if (!iso) return "—";
    var utc = /(Z|[+-]00:00)$/.test(iso);
    return iso.replace("T", " ").slice(0, 19) + (utc ? " UTC" : "");
  }

  function shape(info) {
    return (info.shape || []).map(function (n) { return n.toLocaleString("en-US"); }).join(" × ") +
      " " + (info.dtype || "");
  }

  function clearErrors() {
    formError.hidden = true;
    form.querySelectorAll(".field-error").forEach(function (node) { node.hidden = true; node.textContent = ""; });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (node) { node.removeAttribute("aria-invalid"); });
  }

  function showError(status, detail) {
    var field = detail && detail.field;
    var message = (detail && detail.message) || "The upload failed (HTTP " + status + ").";
    // An array's error (x_train, y_test…) is about the file.
    if (field && field !== "name") field = "file";
    var holder = field ? form.querySelector('[data-field="' + field + '"]') : null;
    if (!holder) {
      formError.textContent = message;
      formError.hidden = false;
      return;
    }
    var node = holder.querySelector(".field-error");
    node.textContent = message;
    node.hidden = false;
    var input = holder.querySelector("input");
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  function addRow(dataset) {
    var rows = document.getElementById("dataset-rows");
    var url = data.dataset_url.replace("DATASET_NAME", encodeURIComponent(dataset.name));
    var arrays = dataset.arrays || {};
    var images = arrays.x_train && arrays.x_train.shape ? arrays.x_train.shape[0] : 0;
    var row = document.createElement("tr");
    row.setAttribute("data-dataset", dataset.name);
    row.setAttribute("data-owner", dataset.owner || "");
    row.className = "fresh";
    row.innerHTML =
      '<td><a class="dataset-link" href="' + esc(url) + '">' + esc(dataset.name) + "</a></td>" +
      (data.show_owner ? '<td class="hide-narrow">' + esc(dataset.owner) + "</td>" : "") +
      '<td class="num">' + esc(images.toLocaleString("en-US")) + "</td>" +
      '<td class="arrays">' + Object.keys(arrays).map(function (name) {
        return '<span class="array"><code>' + esc(name) + '</code> <span class="muted">' + esc(shape(arrays[name])) + "</span></span>";
      }).join("") + "</td>" +
      '<td class="num hide-narrow">' + esc(size(dataset.size_bytes)) + "</td>" +
      '<td class="hide-narrow"><time datetime="' + esc(dataset.created_at) + '">' + esc(when(dataset.created_at)) + "</time></td>";
    rows.insertBefore(row, rows.firstChild);
    document.getElementById("no-datasets").hidden = true;
    var count = rows.querySelectorAll("tr").length;
    document.getElementById("dataset-total").textContent = count + (count === 1 ? " dataset" : " datasets");
    done.innerHTML = 'Uploaded <a href="' + esc(url) + '">' + esc(dataset.name) + "</a> (" +
      esc(images.toLocaleString("en-US")) + " images).";
    done.hidden = false;
  }

  function finish() {
    button.disabled = false;
    progress.hidden = true;
  }

  form.addEventListener("input", function (event) {
    var holder = event.target.closest("[data-field]");
    if (holder) holder.querySelector(".field-error").hidden = true;
    event.target.removeAttribute("aria-invalid");
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    done.hidden = true;
    var body = new FormData(form);
    body.delete("csrf_token"); // sent as the header
    var request = new XMLHttpRequest();
    request.open("POST", data.upload_url);
    request.setRequestHeader("Accept", "application/json");
    var token = window.gentrain.csrfToken();
    if (token) request.setRequestHeader("X-CSRF-Token", token);
    request.responseType = "json";
    request.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      bar.value = e.loaded / e.total;
      percent.textContent = window.gentrain.pct(e.loaded / e.total) + " of " + size(e.total);
    });
    request.upload.addEventListener("load", function () {
      bar.value = 1;
      percent.textContent = "checking…";
    });
    request.addEventListener("load", function () {
      finish();
      var answer = request.response;
      if (request.status === 201 && answer) {
        addRow(answer);
        form.reset();
        return;
      }
      showError(request.status, answer && answer.error);
    });
    request.addEventListener("error", function () {
      finish();
      showError(0, { message: "The upload failed: the connection dropped.", field: null });
    });
    button.disabled = true;
    bar.value = 0;
    percent.textContent = "";
    progress.hidden = false;
    request.send(body);
  });
})();
