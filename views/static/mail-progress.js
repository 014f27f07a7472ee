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
      // A column per round (data-round="0", "1", …) and one for all emails (data-round="all").
      const byRound = new Map((counts.rounds || []).map((r) => [String(r.round), r.counts]));
      byRound.set('all', counts);
      for (const cell of document.querySelectorAll('#progress [data-state]')) {
        const column = byRound.get(cell.dataset.round);
        if (column) cell.textContent = String(column[cell.dataset.state] ?? 0);
      }
      // "Queueing: k of N" while the invitations are put in the outbox, then the count queued.
      const queueing = counts.queueing;
      const count = document.getElementById('queueing-count');
      if (queueing && count) {
        count.textContent = String(queueing.queued);
        const queueBar = document.getElementById('queueing-bar');
        if (queueBar) queueBar.value = queueing.queued;
        if (queueing.finished) document.getElementById('queueing-text').textContent = queueing.refused || `All ${queueing.queued} invitation emails are queued.`;
      }
      // The failed and unknown lists are drawn with the page: say when the counts behind them moved.
      const changed = document.getElementById('lists-changed');
      if (changed) {
        const moves = [
          ['failed', 'failed'],
          ['unknown', 'whose outcome is unknown'],
        ].flatMap(([state, words]) => {
          const listed = Number(changed.dataset[state]);
          const now = Number(counts[state] ?? 0);
          return now === listed ? [] : [`${words}: ${listed} when this page was loaded, ${now} now`];
        });
        changed.hidden = moves.length === 0;
        document.getElementById('lists-changed-text').textContent = moves.length ? `The lists of messages below have changed (${moves.join('; ')}).` : '';
      }
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
