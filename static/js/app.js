// Small glue htmx cannot do by itself: say when a request failed instead of failing silently.
document.addEventListener("htmx:responseError", function (evt) {
  var status = evt.detail.xhr.status;
  if (status === 400 || status === 409 || status === 413 || status === 422) return; // swapped in by the page
  var flash = document.getElementById("flash");
  if (!flash) return;
  var msg = document.createElement("div");
  msg.className = "msg error";
  msg.textContent = status === 403
    ? "You do not have the role this action needs (403)."
    : "The request failed: HTTP " + status + " " + (evt.detail.xhr.statusText || "");
  flash.appendChild(msg);
});
document.addEventListener("htmx:sendError", function () {
  var flash = document.getElementById("flash");
  if (!flash) return;
  var msg = document.createElement("div");
  msg.className = "msg error";
  msg.textContent = "The server could not be reached.";
  flash.appendChild(msg);
});
// A form with data-max-bytes refuses, before sending, text larger than the server accepts (the server answers
// 413 up to Django's upload limit, and only a generic 400 beyond it).
document.addEventListener("htmx:beforeRequest", function (evt) {
  var form = evt.detail.elt;
  if (!form || !form.matches || !form.matches("form[data-max-bytes]")) return;
  var limit = parseInt(form.getAttribute("data-max-bytes"), 10);
  var size = 0;
  form.querySelectorAll("textarea").forEach(function (t) { size += new TextEncoder().encode(t.value).length; });
  if (size <= limit) return;
  evt.preventDefault();
  var box = form.querySelector("[data-size-error]");
  if (box) {
    box.hidden = false;
    box.textContent = "The paste is larger than " + Math.round(limit / 1024) + " KiB; an nvidia-smi capture is a few KiB.";
  }
});
// htmx checks a request's inputs (hx-include ones too) and, when one is invalid, sends nothing and shows nothing:
// the browser only draws its bubble for a form it submits itself. Put the message under the field
// (#error-<name>, where the page has one, as the server's 400 answers do), else ask the browser to show it.
document.addEventListener("htmx:validation:failed", function (evt) {
  var elt = evt.detail.elt;
  var box = elt.name ? document.getElementById("error-" + elt.name) : null;
  if (!box) {
    elt.reportValidity();
    return;
  }
  box.textContent = elt.validationMessage;
  box.setAttribute("data-client-error", "");
});
// Errors of the request's other fields answered an earlier request (a stale "VM name" error under a refused
// hold would point at the wrong field): clear them when this one is halted; a field's own browser message
// goes when a request with it valid is sent (the server's answer then speaks for it).
document.addEventListener("htmx:configRequest", function (evt) {
  var failed = (evt.detail.errors || []).map(function (e) { return e.elt.name; });
  Object.keys(evt.detail.parameters).forEach(function (name) {
    if (failed.indexOf(name) >= 0) return;
    var box = document.getElementById("error-" + name);
    if (box && (failed.length || box.hasAttribute("data-client-error"))) {
      box.textContent = "";
      box.removeAttribute("data-client-error");
    }
  });
});
// A sort or page link reloads only its table (outerHTML): htmx puts the focus back on the link with the same id,
// but a link the new table no longer has ("next" on the last page) leaves the focus nowhere, and the next Tab
// starts again at the top of the page. Put it on the page the table now shows instead.
document.addEventListener("htmx:afterSettle", function (evt) {
  var wrap = evt.target;
  if (!wrap.classList || !wrap.classList.contains("table-wrap") || !wrap.isConnected) return;
  if (document.activeElement && document.activeElement !== document.body) return;
  var current = wrap.querySelector(".pagination li.active a");
  if (current) current.focus();
});
// An error box (#error-<name>) that htmx filled or emptied out of band says whether its field is invalid: mark
// the controls that name it (aria-invalid), as a page drawn with the error does. When the swap took the focus
// with it (a refused "Reserve" redraws the results and its button), put it on the first field with an error.
function markInvalidFields() {
  var first = null;
  document.querySelectorAll(".field-error[id^='error-']").forEach(function (box) {
    var invalid = box.textContent.trim() !== "";
    document.querySelectorAll("[aria-describedby~='" + box.id + "']").forEach(function (control) {
      if (control.matches("input, select, textarea")) {
        if (invalid) control.setAttribute("aria-invalid", "true");
        else control.removeAttribute("aria-invalid");
        if (invalid && !first) first = control;
      }
    });
  });
  return first;
}
document.addEventListener("htmx:afterSettle", function () {
  var first = markInvalidFields();
  if (first && (!document.activeElement || document.activeElement === document.body)) first.focus();
});
document.addEventListener("htmx:validation:failed", function () { markInvalidFields(); });
// A page answering a refused form (an error summary marked data-focus-on-load) gives that summary the focus, so the
// keyboard and screen-reader user starts where the errors are, not at the top of the page.
document.addEventListener("DOMContentLoaded", function () {
  var box = document.querySelector("[data-focus-on-load]");
  if (box) box.focus();
});
