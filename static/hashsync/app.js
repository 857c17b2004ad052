/* hashsync pages: small progressive enhancements. No inline script anywhere (strict CSP);
   everything here is optional — every page works without it. */
(function () {
  "use strict";

  // <time datetime="…"> shows UTC; hovering shows the reader's local time.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.localised) return;
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      el.title = "Your local time: " + when.toLocaleString();
      el.dataset.localised = "1";
    });
  }

  // Copy buttons: data-copy="text" or data-copy-target="element id".
  function copyText(button) {
    var text = button.dataset.copy;
    if (text === undefined && button.dataset.copyTarget) {
      var target = document.getElementById(button.dataset.copyTarget);
      text = target ? (target.value !== undefined && target.tagName !== "OL" ? target.value : target.innerText) : "";
    }
    if (!text) return;
    var done = function () {
      button.classList.add("copied");
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
      area.remove();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-target]");
    if (button) { event.preventDefault(); copyText(button); }
  });

  // Forms that ask before doing something that cannot be undone.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);

  // Error summaries take the focus, so keyboard and screen-reader users land on them.
  function focusErrors(root) {
    var summary = root.querySelector(".error-summary");
    if (summary) summary.focus();
  }

  // Keyboard shortcuts for lists marked data-keyboard-list: j/k move, Enter opens.
  function keyboardLists() {
    var list = document.querySelector("[data-keyboard-list]");
    if (!list) return;
    var rows = function () { return Array.prototype.slice.call(list.querySelectorAll("[data-row-link]")); };
    var index = -1;
    var select = function (i) {
      var all = rows();
      if (!all.length) return;
      index = Math.max(0, Math.min(all.length - 1, i));
      all.forEach(function (row, n) { row.classList.toggle("selected", n === index); });
      var link = all[index].querySelector("a");
      if (link) link.focus();
    };
    document.addEventListener("keydown", function (event) {
      var tag = (event.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "j") { select(index + 1); event.preventDefault(); }
      if (event.key === "k") { select(index - 1); event.preventDefault(); }
    });
  }

  // Propose (web/views/propose.py): "Add another hash" posts the form and the server adds a
  // blank row; with this, the row is cloned in place from the form's <template> instead.
  // Markup: button[data-add-row=PREFIX][data-max], #PREFIX-rows, template#PREFIX-row-template.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-add-row]");
    if (!button) return;
    var prefix = button.dataset.addRow;
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var rows = document.getElementById(prefix + "-rows");
    var template = document.getElementById(prefix + "-row-template");
    if (!total || !rows || !template) return;  // the server adds the row
    event.preventDefault();
    var index = parseInt(total.value, 10);
    var max = parseInt(button.dataset.max || "1000", 10);
    if (isNaN(index) || index >= max) return;
    rows.insertAdjacentHTML("beforeend", template.innerHTML
      .replace(/__prefix__/g, String(index)).replace(/__number__/g, String(index + 1)));
    total.value = String(index + 1);
    if (index + 1 >= max) button.disabled = true;
    var first = rows.lastElementChild && rows.lastElementChild.querySelector("select, input");
    if (first) first.focus();
  });

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    focusErrors(document);
    keyboardLists();
  });
  document.addEventListener("htmx:afterSettle", function (event) { localTimes(event.target); });
})();
