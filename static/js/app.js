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
