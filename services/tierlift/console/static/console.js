// Draws every <canvas data-chart="ID"> from the JSON in <script type="application/json" id="ID">,
// on first load and after every htmx swap (htmx.onLoad runs for both). No inline scripts: the
// Content-Security-Policy allows this origin's files only.
"use strict";
(function () {
  function draw(root) {
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source || canvas.dataset.drawn) return;
      var data = JSON.parse(source.textContent);
      canvas.dataset.drawn = "1";
      new Chart(canvas, {
        type: "bar",
        data: { labels: data.labels, datasets: data.datasets },
        options: {
          animation: false, maintainAspectRatio: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: data.y } } },
        },
      });
    });
  }
  // deferred like htmx and before it initialises the page (at DOMContentLoaded): the first
  // htmx:load, for the whole body, already finds this listener
  if (window.htmx) {
    htmx.onLoad(draw);
  } else {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  }
})();
