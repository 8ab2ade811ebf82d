// The dashboard's charts: libraries per region (stacked by pipeline status) and #1lib1ref
// edits per week. The numbers come from json_script blocks and are also in tables on the page.
(function () {
  if (typeof Chart === "undefined") return;

  function readData(id) {
    const element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  // The status colours are those of the badges (outreach.css .status-*): one place to change.
  function statusColour(status) {
    const probe = document.createElement("span");
    probe.className = "status-" + status;
    probe.hidden = true;
    document.body.appendChild(probe);
    const colour = getComputedStyle(probe).backgroundColor;
    probe.remove();
    return colour;
  }

  const common = {
    // Numbers on the axes follow the page's language, as the tables do.
    locale: document.documentElement.lang || undefined,
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
  };

  const regionsCanvas = document.getElementById("dashboard-regions-chart");
  const regions = readData("dashboard-regions-data");
  if (regionsCanvas && regions) {
    // One bar per region: the box grows with them so that many regions stay readable.
    const box = regionsCanvas.parentElement;
    box.style.height = Math.max(12, 5 + 2.2 * regions.labels.length) + "rem";
    new Chart(regionsCanvas, {
      type: "bar",
      data: {
        labels: regions.labels,
        datasets: regions.datasets.map(function (dataset) {
          return {
            label: dataset.label,
            data: dataset.data,
            backgroundColor: statusColour(dataset.status),
            borderColor: "#fff",
            borderWidth: 1,
          };
        }),
      },
      options: Object.assign({}, common, {
        indexAxis: "y",
        scales: {
          x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
          y: { stacked: true },
        },
      }),
    });
  }

  const activityCanvas = document.getElementById("dashboard-activity-chart");
  const activity = readData("dashboard-activity-data");
  if (activityCanvas && activity) {
    new Chart(activityCanvas, {
      type: "bar",
      data: {
        labels: activity.labels,
        datasets: [
          {
            label: activityCanvas.dataset.edits || "Edits",
            data: activity.edits,
            backgroundColor: "#0d6efd",
          },
          {
            label: activityCanvas.dataset.references || "References",
            data: activity.references,
            backgroundColor: "#198754",
          },
        ],
      },
      options: Object.assign({}, common, {
        scales: {
          x: { ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
          y: { beginAtZero: true, ticks: { precision: 0 } },
        },
        plugins: Object.assign({}, common.plugins, {
          tooltip: {
            callbacks: {
              title: function (items) {
                return items.length ? activity.titles[items[0].dataIndex] : "";
              },
            },
          },
        }),
      }),
    });
  }
})();
