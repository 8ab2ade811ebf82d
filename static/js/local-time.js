// Shows a meeting's start in the visitor's own time zone, as the browser knows it.
// The server already lists the zones the coordinator picked; this adds "your time".
document.querySelectorAll("time.local-time").forEach(function (element) {
  var start = new Date(element.getAttribute("datetime"));
  if (isNaN(start)) return;
  var format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short",
  });
  element.textContent = format.format(start);
});
