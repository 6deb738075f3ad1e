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
  // What the live region (#status-live) says now: the page came with the status, and
  // its last error is learnt from the first poll. The region is written only when
  // these change, so a screen reader announces each change once, not every poll.
  let shownStatus = section.dataset.status;
  let shownError = null;
  let shownJourney = null;

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element && element.textContent !== text) element.textContent = text;
  }

  function show(data) {
    const error = data.status !== "sent" ? String(data.last_error || "") : "";
    const firstLook = shownError === null && data.status === shownStatus;
    if (!firstLook && (data.status !== shownStatus || error !== shownError)) {
      section.dataset.status = data.status;
      section.className = "status status-" + data.status;
      let detail = DETAIL[data.status] || "";
      if (error) detail += " Last error: " + error;
      setText("status", data.status);
      setText("status-detail", detail);
    }
    shownStatus = data.status;
    shownError = error;
    setText("attempts", String(data.attempts));
    if (data.queue_wait) setText("queue-wait", String(data.queue_wait));
    if (Array.isArray(data.journey)) showJourney(data.journey);
  }

  // The same markup as templates/thoughts/show.html, built from the API's events,
  // rebuilt only when they changed.
  function showJourney(events) {
    const list = document.getElementById("journey");
    const seen = JSON.stringify(events);
    if (!list || seen === shownJourney) return;
    if (shownJourney !== null || list.children.length !== events.length) {
      list.replaceChildren(...events.map(journeyItem));
    }
    shownJourney = seen;
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

  // After the form's redirect, start where the answer is (the heading has tabindex="-1").
  const heading = document.getElementById("status-heading");
  if (heading && document.activeElement === document.body) heading.focus();

  if (section.dataset.final !== "true") setTimeout(poll, delayMs);
})();
