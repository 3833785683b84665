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
