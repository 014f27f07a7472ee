// Draws every <canvas class="evidence-chart" data-chart="id"> from the JSON block
// #evidence-chart-data (the CSP allows no inline script). Each chart has a table
// with the same figures beside it; suppressed cells are not in the data at all.
(function () {
  var source = document.getElementById('evidence-chart-data');
  if (!source || typeof Chart === 'undefined') return;
  var charts = JSON.parse(source.textContent || '[]');
  document.querySelectorAll('canvas.evidence-chart').forEach(function (canvas) {
    var chart = charts.find(function (c) { return c.id === canvas.dataset.chart; });
    if (!chart) return;
    // One series (chart.values) or several side by side (chart.datasets: [{label, values}]).
    var colours = ['#0b5cad', '#b35900'];
    var series = chart.datasets || [{ label: chart.label, values: chart.values }];
    var largest = Math.max.apply(null, [100].concat.apply([], series.map(function (s) { return s.values; })));
    new Chart(canvas, {
      type: 'bar',
      data: {
        labels: chart.labels,
        datasets: series.map(function (s, i) { return { label: s.label, data: s.values, backgroundColor: colours[i % colours.length] }; }),
      },
      options: {
        indexAxis: 'y',
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { min: 0, max: largest > 100 ? undefined : 100, title: { display: true, text: '%' } } },
        plugins: { legend: { display: series.length > 1 } },
      },
    });
  });
})();
