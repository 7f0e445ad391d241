// "Select all" for the calls table; everything else works without script.
document.addEventListener("change", (event) => {
  if (event.target.id !== "select-all") return;
  for (const box of document.querySelectorAll("input.select-call")) box.checked = event.target.checked;
});
