// A page whose matches are still being found reloads itself every few seconds until they
// appear (templates/_pending.html). It never reloads under a person who has started filling
// in one of its forms (a dismissal reason, say): their words and the open form are kept, and
// the notice says to reload once they are done. Without this script a <noscript> refresh
// reloads the page as before. Nor does it reload under a person leaving it: once they follow a
// link or send a form, their page is the one that loads, not this one again.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="tandem-refresh"]');
  if (!meta) {
    return;
  }
  var seconds = parseFloat(meta.getAttribute("content")) || 2;
  var next = meta.getAttribute("data-url");
  var touched = false;
  var leaving = false;

  function markTouched(event) {
    if (event.target && event.target.form) {
      touched = true;
    }
  }

  function editing() {
    var active = document.activeElement;
    return Boolean(
      active && active.form && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) &&
        active.type !== "hidden"
    );
  }

  function markLeaving(event) {
    var link = event.target.closest && event.target.closest("a[href]");
    var elsewhere = link && link.getAttribute("href").charAt(0) !== "#" && link.target !== "_blank";
    if (event.type === "submit" || elsewhere) {
      leaving = true;
    }
  }

  document.addEventListener("input", markTouched, true);
  document.addEventListener("change", markTouched, true);
  document.addEventListener("click", markLeaving, true);
  document.addEventListener("submit", markLeaving, true);
  window.addEventListener("pagehide", function () {
    leaving = true;
  });
  window.setTimeout(function () {
    if (leaving) {
      return;
    }
    if (touched || editing()) {
      document.querySelectorAll(".pending-note[data-paused]").forEach(function (note) {
        note.textContent = note.getAttribute("data-paused");
      });
      return;
    }
    window.location.replace(next);
  }, seconds * 1000);
})();
