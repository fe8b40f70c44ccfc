// Keyboard-first review on the batch page and in review mode.
// j/k or arrows move, a/r/i/p decide, c adds a reason or note, x selects, u undoes, ? shows the keys.
// Every action is an ordinary button or form (htmx posts it with the CSRF header), so
// this file only finds the right one and clicks it; without JavaScript they still work.
(function () {
  "use strict";

  const DECISION_KEYS = { a: "approved", r: "rejected", i: "invalid", p: "pending" };
  let focusedId = null; // data-event of the focused row, kept across result reloads
  let advanceAfter = null; // the row whose decision is in flight: move on when it lands

  const rows = () => Array.from(document.querySelectorAll("#results tr.event"));
  const card = () => document.querySelector(".review-card");
  const focusedRow = () => (focusedId ? document.getElementById("event-" + focusedId) : null);

  function focusRow(row) {
    document.querySelectorAll("tr.event.is-focused").forEach((el) => el.classList.remove("is-focused"));
    if (!row) return;
    focusedId = row.dataset.event;
    row.classList.add("is-focused");
    row.focus({ preventScroll: true });
    keepInMiddleThird(row);
  }

  // The focused row stays in the middle third of the window: the rows before and after it
  // stay in view, and the eyes need not travel to the bottom edge (nor under the bulk bar).
  function keepInMiddleThird(row) {
    const rect = row.getBoundingClientRect();
    const third = window.innerHeight / 3;
    if (rect.top < third || rect.bottom > 2 * third) row.scrollIntoView({ block: "center" });
  }

  // c: the focused event's reason and note form (a dialog), from the list or review mode.
  function openNote() {
    const scope = card() || focusedRow();
    const link = scope && scope.querySelector("[data-note]");
    if (!link) return;
    ensureHtmx(link);
    link.click();
  }

  // Paging: n / b, and j / k past the last / first event of a page. The new page opens at
  // its top with the focus on its first event (its last when going back with k).
  let focusAfterPaging = null; // "first" | "last"

  function goPage(rel, focus) {
    const link = document.querySelector(`#results .pager a[rel=${rel}]`);
    if (!link) return false;
    focusAfterPaging = focus;
    if (window.htmx) window.htmx.process(link);
    link.click();
    return true;
  }

  function move(step) {
    const list = rows();
    if (!list.length) return;
    const index = list.indexOf(focusedRow());
    if (step > 0 && index === list.length - 1 && goPage("next", "first")) return;
    if (step < 0 && index === 0 && goPage("prev", "last")) return;
    const next = index === -1 ? (step > 0 ? 0 : list.length - 1) : Math.min(Math.max(index + step, 0), list.length - 1);
    focusRow(list[next]);
  }

  // Decision keys go through a queue: each press is one decision, sent after the previous
  // one has landed (its row or card swapped in, the focus moved on), whatever the typing
  // speed. Clicking a button that htmx has not taken over yet would submit the plain
  // form: a full page POST, the focus lost, later presses dropped.
  const pending = [];
  let sending = false;
  const SETTLE_TIMEOUT_MS = 30000;

  function decide(value) {
    // With events selected (x), the decision keys decide the selection, as the bar says.
    const selected = document.querySelectorAll("#results input.select:checked").length;
    const bulkButton = document.querySelector(`#bulk-form button[value=${value}]`);
    if (!card() && selected && bulkButton) {
      ensureHtmx(bulkButton.form);
      bulkButton.click();
      return;
    }
    pending.push(value);
    if (!sending) sendNext();
  }

  function sendNext() {
    const value = pending.shift();
    if (value === undefined) { sending = false; return; }
    sending = true;
    const scope = card() || focusedRow();
    const button = scope && scope.querySelector("button.dec-" + value);
    if (!button) { pending.length = 0; sending = false; return; } // nothing focused: the rest has no target
    if (!card()) advanceAfter = scope.dataset.event;
    let finished = false;
    const finish = (event) => {
      // Only this decision's answer counts, not a status poll settling meanwhile.
      const asker = event && event.detail && event.detail.requestConfig && event.detail.requestConfig.elt;
      const mine = asker && (asker === button || asker === button.form || asker.contains(button));
      if (finished || (event && !mine)) return;
      finished = true;
      ["htmx:afterSettle", "htmx:responseError", "htmx:sendError"].forEach((name) => document.removeEventListener(name, finish));
      clearTimeout(timer);
      setTimeout(sendNext, 0); // after the htmx:load handlers have moved the focus
    };
    ["htmx:afterSettle", "htmx:responseError", "htmx:sendError"].forEach((name) => document.addEventListener(name, finish));
    const timer = setTimeout(finish, SETTLE_TIMEOUT_MS);
    ensureHtmx(scope);
    button.click(); // a click, so htmx sends the button's name=value like a mouse click would
  }

  function toggleSelected() {
    const box = focusedRow() && focusedRow().querySelector("input.select");
    if (!box) return;
    box.checked = !box.checked;
    updateSelection();
  }

  function updateSelection() {
    const count = document.querySelectorAll("#results input.select:checked").length;
    document.querySelectorAll("[data-selected-count]").forEach((el) => (el.textContent = count));
    document.querySelectorAll("[data-needs-selection]").forEach((el) => (el.disabled = count === 0));
    document.querySelectorAll("[data-selection-hint]").forEach((el) => (el.hidden = count === 0));
  }

  // Content swapped in a moment ago may not be htmx's yet: take it over first, or the
  // browser would submit the plain form (a full page load).
  function ensureHtmx(element) {
    if (window.htmx) window.htmx.process(element);
  }

  function submitForm(id) {
    const form = document.getElementById(id);
    if (!form) return;
    ensureHtmx(form);
    form.requestSubmit();
  }

  function openDialog(id) {
    const dialog = document.getElementById(id);
    if (dialog && !dialog.open) dialog.showModal();
  }

  function isTyping(target) {
    return target.closest("input, textarea, select, [contenteditable]") && !target.matches("input[type=checkbox]");
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (document.querySelector("dialog[open]") && event.key !== "?") return; // the dialog has the keyboard
    const key = event.key;
    let handled = true;
    if (DECISION_KEYS[key.toLowerCase()] && !event.shiftKey) decide(DECISION_KEYS[key.toLowerCase()]);
    else if (card() && (key === "j" || key === "ArrowRight" || key === "ArrowDown")) card().querySelector("[data-key=j]")?.click();
    else if (card() && (key === "k" || key === "ArrowLeft" || key === "ArrowUp")) card().querySelector("[data-key=k]")?.click();
    else if (key === "j" || key === "ArrowDown") move(1);
    else if (key === "k" || key === "ArrowUp") move(-1);
    else if (key === "n" && !card()) goPage("next", "first");
    else if (key === "b" && !card()) goPage("prev", "first");
    else if (key === "x") toggleSelected();
    else if (key === "c") openNote();
    else if (key === "u") submitForm("undo-form");
    else if (key === "?") openDialog("keys-help");
    else handled = false;
    if (handled) event.preventDefault();
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches("input.select")) updateSelection();
  });

  document.addEventListener("click", (event) => {
    const row = event.target.closest("tr.event");
    if (row && !event.target.closest("a, button, input, summary")) focusRow(row);
    const closer = event.target.closest("[data-close-dialog]");
    if (closer && closer.closest("dialog")) {
      event.preventDefault(); // a Cancel link is for pages without JavaScript
      closer.closest("dialog").close();
    }
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) openDialog(opener.dataset.openDialog);
  });

  // The outcome header is read before the swap: the form that asked is gone afterwards.
  let lastOutcome = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    lastOutcome = event.detail.xhr && event.detail.xhr.getResponseHeader("X-Review-Outcome");
  });

  // New content (htmx:load fires on each swapped-in element): keep or advance the focus,
  // refresh the selection count, open a dialog whose body just arrived.
  document.addEventListener("htmx:load", (event) => {
    const elt = event.detail.elt;
    if (!(elt instanceof Element)) return;
    if (elt.closest("#dialog-body")) openDialog("dialog");
    if (elt.id === "results-inner" && focusAfterPaging) {
      const list = rows();
      const target = focusAfterPaging === "last" ? list[list.length - 1] : list[0];
      focusAfterPaging = null;
      document.getElementById("results").scrollIntoView({ block: "start" });
      if (target) { focusedId = null; focusRow(target); }
    }
    if (elt.id === "toast" && elt.textContent.trim()) hideLater(elt);
    if (advanceAfter && elt.id === "event-" + advanceAfter) {
      advanceAfter = null;
      focusRow(elt);
      if (lastOutcome === "applied" || lastOutcome === "unchanged") move(1);
    } else if (!advanceAfter && focusedId && (elt.id === "event-" + focusedId || elt.querySelector("#event-" + focusedId))) {
      focusRow(focusedRow()); // the row or the results reloaded (the note form saved): the same event keeps the focus
    }
    updateSelection();
  });

  // A failure the page cannot show by itself (a server error, no network): say so, keep the focus.
  function showToast(text) {
    const toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = text;
    toast.classList.add("toast-bad");
    hideLater(toast);
  }
  let hideTimer = null;
  function hideLater(toast) {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => { toast.textContent = ""; toast.classList.remove("toast-bad"); }, 7000);
  }
  document.addEventListener("htmx:responseError", (event) => {
    advanceAfter = null;
    pending.length = 0; // the server refused: do not decide the next events blindly
    const status = event.detail.xhr.status;
    showToast(status === 403 ? "Your account may view and export, not decide." : `The server answered ${status}: nothing was saved. Try again.`);
  });
  document.addEventListener("htmx:sendError", () => {
    advanceAfter = null;
    pending.length = 0;
    showToast("The server could not be reached: nothing was saved. Try again.");
  });

  // Undo asks first about an action older than the page: the page is the one loaded in
  // the browser, not the fragment the form came back in after a reload of the results.
  document.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt.id === "undo-form" && document.body.dataset.pageShownAt) {
      event.detail.parameters.page_shown_at = document.body.dataset.pageShownAt;
    }
  });

  // A refusal of a form in a dialog (the note form, a bulk confirmation) is said in the
  // dialog itself: the toast would be hidden behind it, and what was typed stays.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const asker = event.detail.requestConfig && event.detail.requestConfig.elt;
    const dialog = asker && asker.closest && asker.closest("dialog[open]");
    const slot = dialog && dialog.querySelector("[data-dialog-error]");
    if (!slot || event.detail.xhr.status < 400) return;
    slot.textContent = new DOMParser().parseFromString(event.detail.serverResponse, "text/html").body.textContent.trim();
    slot.hidden = false;
    event.detail.shouldSwap = false;
  });

  // A confirmed bulk action closes its dialog once the server answered.
  document.addEventListener("htmx:afterRequest", (event) => {
    const dialog = event.detail.elt.closest && event.detail.elt.closest("dialog");
    if (dialog && event.detail.successful) dialog.close();
  });
})();
