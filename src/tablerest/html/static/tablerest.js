// Optional enhancement only: every page works without it.
// "Add a filter" copies the filter form's last row, emptied.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector(".filter-form");
  if (!form) return;
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Add a filter";
  button.addEventListener("click", () => {
    const rows = form.querySelectorAll(".filter-row");
    const last = rows[rows.length - 1];
    const copy = last.cloneNode(true);
    const number = rows.length + 1;
    copy.querySelectorAll("[id]").forEach((element) => {
      element.id = element.id.replace(/\d+$/, String(number));
    });
    copy.querySelectorAll("label[for]").forEach((label) => {
      label.htmlFor = label.htmlFor.replace(/\d+$/, String(number));
    });
    copy.querySelectorAll("input").forEach((input) => { input.value = ""; });
    copy.querySelectorAll("select").forEach((select) => { select.selectedIndex = 0; });
    const legend = copy.querySelector("legend");
    if (legend) legend.textContent = "Filter " + number;
    last.after(copy);
  });
  form.querySelector("button[type=submit]").before(button);
});
