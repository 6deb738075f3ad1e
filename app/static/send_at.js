// A datetime-local value has no time zone: send the browser's offset at the chosen
// time beside it (minutes east of UTC), so the server reads the time the person meant.
(function () {
  "use strict";
  const input = document.getElementById("send_at");
  const offset = document.getElementById("utc_offset");
  if (!input || !offset) return;
  input.form.addEventListener("submit", function () {
    const when = input.value ? new Date(input.value) : new Date();
    offset.value = String(-when.getTimezoneOffset());
  });
})();
