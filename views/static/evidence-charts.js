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
    // Long labels go on several lines, so that on a narrow screen they are not cut at the canvas's edge.
    var perLine = Math.max(16, Math.floor((canvas.parentElement ? canvas.parentElement.clientWidth : 600) / 18));
    var lines = function (label) {
      var out = [''];
      String(label).split(' ').forEach(function (word) {
        var last = out[out.length - 1];
        if (last && (last + ' ' + word).length > perLine) out.push(word);
        else out[out.length - 1] = last ? last + ' ' + word : word;
      });
      return out;
    };
    var labels = chart.labels.map(lines);
    // Every label is shown (none skipped): the chart grows with its labels' lines and its bars.
    var needed = labels.reduce(function (sum, l) { return sum + Math.max(l.length * 14, series.length * 16) + 8; }, 60);
    if (canvas.clientHeight < needed) canvas.style.minHeight = needed + 'px';
    new Chart(canvas, {
      type: 'bar',
      data: {
        labels: labels,
        datasets: series.map(function (s, i) { return { label: s.label, data: s.values, backgroundColor: colours[i % colours.length] }; }),
      },
      options: {
        indexAxis: 'y',
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { min: 0, max: largest > 100 ? undefined : 100, title: { display: true, text: '%' } }, y: { ticks: { autoSkip: false } } },
        plugins: { legend: { display: series.length > 1 } },
      },
    });
  });
})();
