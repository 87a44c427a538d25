/* The new-job form: the kind selector shows that kind's parameters; submitting posts every shown
   value, typed as its parameter is (integers, numbers, booleans, choices), as JSON to
   POST /v1/jobs. The API's validation is the only one: a value the page cannot type is sent as
   typed, and the API's error is shown next to the field it names (params.epochs, dataset). */
(function () {
  "use strict";

  var form = document.getElementById("new-job-form");
  if (!form) return;
  var data = JSON.parse(document.getElementById("new-job-data").textContent);
  var kindSelect = document.getElementById("kind");
  var button = document.getElementById("submit-job");
  var state = document.getElementById("submit-state");
  var formError = document.getElementById("form-error");
  var fieldsets = Array.prototype.slice.call(form.querySelectorAll("fieldset.kind-params"));

  function activeFieldset() {
    return form.querySelector('fieldset.kind-params[data-kind="' + kindSelect.value + '"]');
  }

  function showKind() {
    fieldsets.forEach(function (fieldset) {
      var on = fieldset.getAttribute("data-kind") === kindSelect.value;
      fieldset.hidden = !on;
      fieldset.disabled = !on;
    });
    document.getElementById("kind-help").textContent = data.kind_help[kindSelect.value] || "";
    clearErrors();
  }

  /* A field's value as its parameter's JSON type; what does not parse goes as typed. */
  function typed(input) {
    var type = input.getAttribute("data-type");
    if (type === "boolean") return input.checked;
    if (type === "choice") {
      var option = input.options[input.selectedIndex];
      return option ? JSON.parse(option.getAttribute("data-choice")) : null;
    }
    var text = input.value.trim();
    if (type === "integer" && /^[+-]?\d+$/.test(text)) return parseInt(text, 10);
    if (type === "number" && text !== "" && isFinite(Number(text))) return Number(text);
    return type === "text" ? input.value : text;
  }

  function body() {
    var params = {};
    activeFieldset().querySelectorAll("[data-param]").forEach(function (input) {
      params[input.getAttribute("data-param")] = typed(input);
    });
    var request = { kind: kindSelect.value, dataset: document.getElementById("dataset").value, params: params };
    var priority = document.getElementById("priority").value.trim();
    if (priority !== "") request.priority = /^[+-]?\d+$/.test(priority) ? parseInt(priority, 10) : priority;
    return request;
  }

  /* The field the API named: a parameter of the shown kind, the kind or the dataset. */
  function fieldHolder(name) {
    if (!name) return null;
    var selector = '[data-field="' + (window.CSS && CSS.escape ? CSS.escape(name) : name) + '"]';
    if (name.indexOf("params.") === 0) {
      var fieldset = activeFieldset();
      return fieldset ? fieldset.querySelector(selector) : null;
    }
    return form.querySelector(".form-row " + selector);
  }

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    form.querySelectorAll(".field-error").forEach(function (node) {
      node.hidden = true;
      node.textContent = "";
    });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (node) {
      node.removeAttribute("aria-invalid");
    });
  }

  function showError(error) {
    var detail = error.error || { message: error.message, field: null };
    var holder = fieldHolder(detail.field);
    if (!holder) {
      formError.textContent = detail.message || "The job was not accepted.";
      if (error.status === 429) formError.textContent += " (try again shortly)";
      formError.hidden = false;
      formError.scrollIntoView({ block: "nearest" });
      return;
    }
    var message = holder.querySelector(".field-error");
    message.textContent = detail.message;
    message.hidden = false;
    var input = holder.querySelector("input, select");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    holder.scrollIntoView({ block: "center" });
  }

  kindSelect.addEventListener("change", showKind);
  form.addEventListener("input", function (event) {
    var holder = event.target.closest("[data-field]");
    if (!holder) return;
    var message = holder.querySelector(".field-error");
    if (message) message.hidden = true;
    event.target.removeAttribute("aria-invalid");
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    button.disabled = true;
    state.textContent = "Submitting…";
    window.gentrain.api("POST", data.submit_url, body()).then(function (job) {
      state.textContent = "Queued: opening the job…";
      window.location.assign(data.job_url.replace("JOB_ID", encodeURIComponent(job.id)));
    }).catch(function (error) {
      button.disabled = false;
      state.textContent = "";
      showError(error);
    });
  });

  showKind();
})();
