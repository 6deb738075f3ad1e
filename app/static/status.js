// Follows a submission's job until it is sent or has failed, without a reload.
// Polls the JSON API; text goes in with textContent, never as HTML.
(function () {
  "use strict";
  const section = document.getElementById("submission");
  if (!section) return;
  const DETAIL = {
    queued: "Waiting for a worker to pick it up.",
    scheduled: "Scheduled: a worker sends it when its time comes.",
    sending: "A worker is sending it now.",
    sent: "Sent! Look for it in the mail catcher.",
    failed: "The email could not be sent.",
    unconfirmed: "The mail server took the email but never confirmed it; it was not sent again.",
    cancelled: "Its job was cancelled: this email will not be sent.",
  };
  let delayMs = 500;

  function show(data) {
    section.dataset.status = data.status;
    section.className = "status status-" + data.status;
    document.getElementById("status").textContent = data.status;
    document.getElementById("attempts").textContent = String(data.attempts);
    const wait = document.getElementById("queue-wait");
    if (wait && data.queue_wait) wait.textContent = String(data.queue_wait);
    let detail = DETAIL[data.status] || "";
    if (data.last_error && data.status !== "sent") detail += " Last error: " + data.last_error;
    document.getElementById("status-detail").textContent = detail;
    if (Array.isArray(data.journey)) showJourney(data.journey);
  }

  // The same markup as templates/thoughts/show.html, built from the API's events.
  function showJourney(events) {
    const list = document.getElementById("journey");
    if (!list) return;
    list.replaceChildren(...events.map(journeyItem));
  }

  function journeyItem(step) {
    const when = document.createElement("time");
    when.className = "when";
    when.dateTime = String(step.at ?? "");
    when.textContent = String(step.since_accepted ?? "");
    const event = document.createElement("strong");
    event.className = "event";
    event.textContent = String(step.event ?? "");
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = String(step.detail ?? "");
    const item = document.createElement("li");
    item.append(when, " ", event, " ", detail);
    return item;
  }

  async function poll() {
    try {
      const response = await fetch(section.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        show(data);
        if (data.final) return;  // app/submissions.py says which states are final
      }
    } catch (err) {
      // Network hiccup: keep polling, a little slower.
    }
    delayMs = Math.min(delayMs * 1.5, 5000);
    setTimeout(poll, delayMs);
  }

  if (section.dataset.final !== "true") setTimeout(poll, delayMs);
})();
