/* gentrain charts: a small wrapper over uPlot for the job page (one job's metrics, live) and the
   compare page (several jobs' curves overlaid). Charts group metrics by their last word, so loss
   and val_loss (or d_loss and g_loss) share one chart and d_acc gets its own. */
(function () {
  "use strict";

  var PALETTE = ["#2563eb", "#dc2626", "#059669", "#9333ea", "#d97706", "#0891b2", "#db2777"];
  var HEIGHT = 220;
  // Steps and epochs are whole numbers: ticks never fall between them.
  var WHOLE = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000,
               25000, 50000, 100000, 200000, 250000, 500000, 1000000];

  function color(i) {
    return PALETTE[i % PALETTE.length];
  }

  /* "val_loss" and "d_loss" are drawn with "loss"; "d_acc" with other accuracies. */
  function groupOf(name) {
    var word = name.split("_").pop();
    return word === "accuracy" ? "acc" : word;
  }

  function widthOf(el) {
    return Math.max(240, Math.floor(el.getBoundingClientRect().width) || 480);
  }

  /* One uPlot chart in a <figure>: x values and one series per label. The figure is placed
     first and the plot made by ``mount`` once every figure of a group is in place, so each is
     measured in its own column of the grid, not alone across it. */
  function LineChart(parent, title, xLabel, labels) {
    this.figure = document.createElement("figure");
    this.figure.className = "chart";
    this.figure.setAttribute("data-chart", title);
    parent.appendChild(this.figure);
    this.title = title;
    this.xLabel = xLabel;
    this.labels = labels;
    this.plot = null;
  }

  LineChart.prototype.mount = function () {
    var series = [{ label: this.xLabel }];
    this.labels.forEach(function (label, i) {
      series.push({ label: label, stroke: color(i), width: 2, spanGaps: true,
                    points: { show: true, size: 4 } });
    });
    var empty = [[]].concat(this.labels.map(function () { return []; }));
    this.plot = new uPlot({
      title: this.title,
      width: widthOf(this.figure),
      height: HEIGHT,
      scales: { x: { time: false } },
      axes: [{ label: this.xLabel, incrs: WHOLE }, { size: 60 }],
      series: series,
      legend: { live: true },
    }, empty, this.figure);
    return this;
  };

  LineChart.prototype.setData = function (columns) {
    this.plot.setData(columns);
    this.figure.setAttribute("data-points", String(columns[0].length));
  };

  LineChart.prototype.resize = function () {
    this.plot.setSize({ width: widthOf(this.figure), height: HEIGHT });
  };

  LineChart.prototype.destroy = function () {
    this.plot.destroy();
    this.figure.remove();
  };

  /* Charts of one job's metrics that take rows as they come (a step seen again is replaced: a
     resumed attempt's row, or one both rendered and streamed). */
  function JobCharts(container, metrics, unit) {
    this.container = container;
    this.unit = unit;
    this.steps = metrics.steps.slice();
    this.series = {};
    for (var name in metrics.series) this.series[name] = metrics.series[name].slice();
    this.charts = [];
    this.build();
  }

  JobCharts.prototype.names = function () {
    return Object.keys(this.series);
  };

  JobCharts.prototype.build = function () {
    this.charts.forEach(function (chart) { chart.destroy(); });
    this.charts = [];
    // The "no metrics yet" line goes first, or the first chart is measured beside it.
    var empty = this.container.querySelector(".empty");
    if (empty) empty.hidden = this.steps.length > 0;
    var groups = {};
    this.names().forEach(function (name) {
      (groups[groupOf(name)] = groups[groupOf(name)] || []).push(name);
    });
    // Losses first, whatever order the database kept the names in.
    var keys = Object.keys(groups).sort(function (a, b) {
      return (a === "loss" ? 0 : 1) - (b === "loss" ? 0 : 1);
    });
    for (var k = 0; k < keys.length; k++) {
      var key = keys[k];
      var chart = new LineChart(this.container, groups[key].join(", "), this.unit, groups[key]);
      chart.names = groups[key];
      this.charts.push(chart);
    }
    this.charts.forEach(function (each) { each.mount(); });
    this.draw();
  };

  JobCharts.prototype.draw = function () {
    var self = this;
    this.charts.forEach(function (chart) {
      chart.setData([self.steps.slice()].concat(chart.names.map(function (n) {
        return self.series[n].slice();
      })));
    });
    this.container.setAttribute("data-points", String(this.steps.length));
    var empty = this.container.querySelector(".empty");
    if (empty) empty.hidden = this.steps.length > 0;
  };

  /* Add (or replace) the row of ``step``; new metric names rebuild the charts. */
  JobCharts.prototype.add = function (step, values) {
    var at = this.steps.indexOf(step);
    var fresh = false;
    if (at < 0) {
      at = 0;
      while (at < this.steps.length && this.steps[at] < step) at++;
      this.steps.splice(at, 0, step);
      for (var name in this.series) this.series[name].splice(at, 0, null);
    }
    for (var key in values) {
      if (!(key in this.series)) {
        this.series[key] = this.steps.map(function () { return null; });
        fresh = true;
      }
      this.series[key][at] = values[key];
    }
    if (fresh) this.build(); else this.draw();
  };

  JobCharts.prototype.resize = function () {
    this.charts.forEach(function (chart) { chart.resize(); });
  };

  /* Several jobs' curves overlaid, one chart per metric: ``jobs`` is [{label, metrics}]. */
  function overlay(container, jobs, unit) {
    var names = [];
    jobs.forEach(function (job) {
      Object.keys(job.metrics.series).forEach(function (n) {
        if (names.indexOf(n) < 0) names.push(n);
      });
    });
    var steps = [];
    jobs.forEach(function (job) {
      job.metrics.steps.forEach(function (s) { if (steps.indexOf(s) < 0) steps.push(s); });
    });
    steps.sort(function (a, b) { return a - b; });
    var charts = names.map(function (name) {
      return new LineChart(container, name, unit, jobs.map(function (j) { return j.label; }));
    });
    charts.forEach(function (chart, n) {
      var name = names[n];
      chart.mount().setData([steps].concat(jobs.map(function (job) {
        var values = job.metrics.series[name] || [];
        var byStep = {};
        job.metrics.steps.forEach(function (s, i) { byStep[s] = values[i]; });
        return steps.map(function (s) { return s in byStep ? byStep[s] : null; });
      })));
    });
    container.setAttribute("data-charts", String(charts.length));
    return { charts: charts, resize: function () { charts.forEach(function (c) { c.resize(); }); } };
  }

  /* Redraw ``target``'s charts at their new width whenever ``container`` changes width. */
  function onResize(container, target) {
    var pending = null;
    var width = container.getBoundingClientRect().width;
    new ResizeObserver(function () {
      var now = container.getBoundingClientRect().width;
      if (now === width) return;
      width = now;
      if (pending) cancelAnimationFrame(pending);
      pending = requestAnimationFrame(function () { target.resize(); });
    }).observe(container);
  }

  window.gentrainCharts = { JobCharts: JobCharts, overlay: overlay, onResize: onResize,
                            color: color };
})();
