// The offer form shows only the sections that apply to the chosen kind of offer (compute,
// data, or both), and updates as the kind changes. Without this script every section shows,
// and the server ignores the sections that do not apply to the kind.
(function () {
  "use strict";
  var form = document.querySelector("form.offer-form");
  if (!form) {
    return;
  }
  var sections = form.querySelectorAll("[data-offer-kinds]");

  function showSectionsFor(kind) {
    sections.forEach(function (section) {
      var kinds = section.getAttribute("data-offer-kinds").split(" ");
      section.hidden = kinds.indexOf(kind) === -1;
    });
  }

  function chosenKind() {
    var chosen = form.querySelector("input[name=kind]:checked");
    return chosen ? chosen.value : null;
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "kind") {
      showSectionsFor(event.target.value);
    }
  });
  var kind = chosenKind();
  if (kind) {
    showSectionsFor(kind);
  }
})();
