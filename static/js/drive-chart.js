// Edits and references per day of a contribution drive; the numbers are also in a table.
(function () {
  const canvas = document.getElementById("drive-chart");
  const data = document.getElementById("drive-chart-data");
  if (!canvas || !data || typeof Chart === "undefined") return;
  const chart = JSON.parse(data.textContent);
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: chart.labels,
      datasets: [
        { label: canvas.dataset.edits || "Edits", data: chart.edits, backgroundColor: "#0d6efd" },
        { label: canvas.dataset.references || "References", data: chart.references, backgroundColor: "#198754" },
      ],
    },
    options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
})();
