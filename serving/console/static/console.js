// creditgrade console: a little progressive enhancement, nothing the pages need to work.
// A form that is being submitted cannot be submitted twice (a grade is stored and audited once per click).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.target === "_blank") { return; }
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
});
