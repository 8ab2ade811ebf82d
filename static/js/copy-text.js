// "Copy" buttons for read-only texts: <button data-copy="ID" data-copied="Copied" hidden>.
// Without JavaScript (or a clipboard) the buttons stay hidden and the text is selectable.
if (navigator.clipboard) {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      navigator.clipboard.writeText(field.value).then(function () {
        button.textContent = button.dataset.copied;
        setTimeout(function () { button.textContent = label; }, 2000);
      }, function () {
        field.select(); // the clipboard refused: select the text to copy by hand
      });
    });
  });
}
