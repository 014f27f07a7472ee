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
    new Chart(canvas, {
      type: 'bar',
      data: { labels: chart.labels, datasets: [{ label: chart.label, data: chart.values, backgroundColor: '#0b5cad' }] },
      options: {
        indexAxis: 'y',
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { min: 0, max: 100, title: { display: true, text: '%' } } },
        plugins: { legend: { display: false } },
      },
    });
  });
})();
