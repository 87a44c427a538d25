/* The compare page: the jobs' curves overlaid, one chart per metric (rows embedded by the server). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("compare-data").textContent);
  var container = document.getElementById("compare-charts");
  var charts = window.gentrainCharts.overlay(container, data.jobs, data.unit);
  window.gentrainCharts.onResize(container, charts);
})();
