// Refreshes the sending progress table every two seconds from the JSON endpoint.
(function () {
  const source = document.getElementById('progress-source');
  if (!source) return;
  const url = JSON.parse(source.textContent);
  const bar = document.getElementById('progress-bar');
  async function refresh() {
    try {
      const response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      if (!response.ok) return;
      const counts = await response.json();
      for (const cell of document.querySelectorAll('#progress [data-state]')) cell.textContent = String(counts[cell.dataset.state] ?? 0);
      if (bar) {
        bar.max = counts.total;
        bar.value = counts.sent;
      }
    } finally {
      setTimeout(refresh, 2000);
    }
  }
  setTimeout(refresh, 2000);
})();
