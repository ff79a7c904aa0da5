// Agent UI enhancements; every page works without them.
(function () {
  "use strict";

  // Insert the chosen canned response at the cursor instead of reloading the page.
  var insert = document.getElementById("canned-insert");
  var reply = document.getElementById("reply");
  var select = document.getElementById("canned");
  if (insert && reply && select) {
    insert.addEventListener("click", function (event) {
      var option = select.options[select.selectedIndex];
      if (!option) { return; }
      event.preventDefault();
      var text = option.getAttribute("data-text") || "";
      var start = reply.selectionStart, end = reply.selectionEnd, value = reply.value;
      if (start === undefined || start === null) { start = end = value.length; }
      var before = value.slice(0, start), after = value.slice(end);
      var glue = before && !/\n$/.test(before) ? "\n\n" : "";
      reply.value = before + glue + text + after;
      var caret = (before + glue + text).length;
      reply.focus();
      reply.setSelectionRange(caret, caret);
    });
  }

  // A second click while the first submit is on its way does nothing (the
  // server also refuses a repeated reply key).
  document.querySelectorAll("form").forEach(function (form) {
    if (!form.querySelector("button[data-once]")) { return; }
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitted) { event.preventDefault(); return; }
      form.dataset.submitted = "1";
      window.setTimeout(function () {
        form.querySelectorAll("button[data-once]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });
})();
