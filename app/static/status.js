// Follows a submission's job until it is sent or has failed, without a reload.
// Polls the JSON API; text goes in with textContent, never as HTML.
(function () {
  "use strict";
  const section = document.getElementById("submission");
  if (!section) return;
  const DONE = new Set(["sent", "failed"]);
  const DETAIL = {
    queued: "Waiting for a worker to pick it up.",
    sending: "A worker is sending it now.",
    sent: "Sent! Look for it in the mail catcher.",
    failed: "The email could not be sent.",
  };
  let delayMs = 500;

  function show(data) {
    section.dataset.status = data.status;
    section.className = "status status-" + data.status;
    document.getElementById("status").textContent = data.status;
    document.getElementById("attempts").textContent = String(data.attempts);
    let detail = DETAIL[data.status] || "";
    if (data.last_error && data.status !== "sent") detail += " Last error: " + data.last_error;
    document.getElementById("status-detail").textContent = detail;
  }

  async function poll() {
    try {
      const response = await fetch(section.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        show(data);
        if (DONE.has(data.status)) return;
      }
    } catch (err) {
      // Network hiccup: keep polling, a little slower.
    }
    delayMs = Math.min(delayMs * 1.5, 5000);
    setTimeout(poll, delayMs);
  }

  if (!DONE.has(section.dataset.status)) setTimeout(poll, delayMs);
})();
