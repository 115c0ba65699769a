// claude-vcr ui: the filter box. Typing hides the rows of the table it names that do not contain the text;
// Enter submits the form, and the server filters every page. Text is compared, never inserted as HTML.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("input[data-filter]")) {
    const table = document.getElementById(box.dataset.filter);
    if (!table) continue;
    const apply = () => {
      const needle = box.value.trim().toLowerCase();
      let shown = 0;
      for (const row of table.tBodies[0].rows) {
        const hit = !needle || row.textContent.toLowerCase().includes(needle);
        row.hidden = !hit;
        if (hit) shown += 1;
      }
      table.dataset.shown = String(shown);
    };
    box.addEventListener("input", apply);
    apply();
  }
});
