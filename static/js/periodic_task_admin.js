// The admin's periodic task form (django-celery-beat): show the crontab chosen in words under its field, as the
// package's inline script does (templates/admin/djcelery/change_periodictask_form.html loads this instead).
(function () {
  var script = document.currentScript;
  var $ = django.jQuery;
  var readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  var help = script.getAttribute("data-crontab-help") || "";
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    var box = $(".field-crontab .help").text(help);
    box.append(document.createElement("br"));
    box.append(document.createTextNode("Translation: " + (readable[$("#id_crontab").val()] || "")));
  });
})();
