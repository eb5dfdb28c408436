// Loaded first: any error later on the page is recorded in the DOM, so a
// headless browser (and a reader) can see that the picture is incomplete.
"use strict";
(function () {
  var errors = [];
  function record(message) {
    errors.push(String(message));
    function show() {
      document.body.dataset.errors = String(errors.length);
      var box = document.getElementById("errors");
      if (box) {
        box.hidden = false;
        box.textContent = "Errors while drawing this trace:\n" + errors.join("\n");
      }
    }
    if (document.body) show(); else document.addEventListener("DOMContentLoaded", show);
  }
  window.addEventListener("error", function (e) {
    record((e.message || "error") + " (line " + (e.lineno || "?") + ")");
  });
  window.addEventListener("unhandledrejection", function (e) {
    record("unhandled rejection: " + e.reason);
  });
  var original = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
