// The inbox page: a live list over MailCatcher's API and websocket, no build step.
//
// Everything that comes from a caught email is untrusted. It only ever reaches the
// DOM through textContent or attributes; the HTML body is shown in an iframe with an
// empty sandbox, and the server sends that body with a script-free CSP as well.
"use strict";

(() => {
  const FORMATS = ["html", "plain", "source", "attachments"];
  const tbody = document.querySelector("#messages tbody");
  const messageView = document.getElementById("message");
  const search = document.getElementById("search");
  const list = document.getElementById("list");
  const panels = document.getElementById("message-body");
  const PAGE = 200; // rows fetched at a time: the list stays fast at any inbox size
  const rows = new Map(); // message id -> { tr }, the rows loaded so far
  let total = 0; // how many messages the current search finds, loaded or not
  let selectedId = null;
  let preferredFormat = "html";
  let everLoaded = false;
  let retryDelay = 500;
  let reloadTimer = null;
  let arrived = 0; // messages added since the list was last loaded (announceArrivals)
  let loadSeq = 0; // a newer load wins over an older one still in flight

  const url = (path) => new URL(path, document.baseURI).toString();
  const bare = (address) => String(address ?? "").replace(/^<(.*)>$/, "$1");

  // A sender's text goes in a <bdi>: a right-to-left override in a subject stays
  // inside it, and cannot reorder the tag chips or anything else beside it.
  function cell(text, className) {
    const td = document.createElement("td");
    const bdi = document.createElement("bdi");
    td.className = className;
    bdi.textContent = text;
    td.append(bdi);
    return td;
  }

  function formatSize(bytes) {
    const n = Number(bytes);
    if (!Number.isFinite(n)) return "";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function formatDate(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso ?? "") : date.toLocaleString();
  }

  // -- the list -------------------------------------------------------------

  function makeRow(message) {
    const subject = message.subject ?? "";
    const tr = document.createElement("tr");
    tr.dataset.messageId = String(message.id);
    const subjectCell = cell(subject || "(no subject)", subject ? "subject" : "subject blank");
    for (const tag of message.tags || []) {
      const chip = document.createElement("span");
      chip.className = "tag";
      chip.textContent = tag;
      subjectCell.prepend(chip, " ");
    }
    tr.append(
      cell(bare(message.sender), "from"),
      cell((message.recipients || []).map(bare).join(", "), "to"),
      subjectCell,
      cell(formatDate(message.created_at), "created-at"),
      cell(formatSize(message.size), "size"),
    );
    return { tr };
  }

  // Shows ``messages`` (newest first) as the list, or after it with ``append``.
  function renderList(messages, append) {
    const started = performance.now();
    const fragment = document.createDocumentFragment();
    if (!append) rows.clear();
    for (const message of messages) {
      if (rows.has(message.id)) continue;
      const row = makeRow(message);
      rows.set(message.id, row);
      fragment.append(row.tr);
    }
    if (append) tbody.append(fragment);
    else tbody.replaceChildren(fragment);
    if (selectedId !== null && rows.has(selectedId)) {
      rows.get(selectedId).tr.classList.add("selected");
      rows.get(selectedId).tr.setAttribute("aria-current", "true");
    } else if (selectedId !== null && !append) {
      unselect();
    }
    updateCount();
    document.documentElement.dataset.renderMs = (performance.now() - started).toFixed(1);
  }

  function removeMessage(id) {
    const row = rows.get(id);
    if (!row) return;
    const next = id === selectedId ? neighbour(row.tr, 1) || neighbour(row.tr, -1) : null;
    row.tr.remove();
    rows.delete(id);
    total = Math.max(0, total - 1);
    if (id === selectedId) next ? select(Number(next.dataset.messageId)) : unselect();
    updateCount();
  }

  function clearMessages() {
    rows.clear();
    total = 0;
    tbody.replaceChildren();
    unselect();
    updateCount();
  }

  function updateCount() {
    document.title = `MailCatcher (${total})`;
    document.getElementById("empty").hidden = rows.size > 0;
    const more = document.getElementById("more");
    more.hidden = rows.size >= total;
    more.textContent = `Show more (${rows.size} of ${total})`;
  }

  function neighbour(tr, step) {
    return step > 0 ? tr.nextElementSibling : tr.previousElementSibling;
  }

  // -- loading pages, searching on the server -------------------------------

  // The first page again (or as many rows as are shown), for the current search.
  async function load(append = false) {
    const seq = ++loadSeq;
    const params = new URLSearchParams({
      limit: String(append ? PAGE : Math.max(PAGE, rows.size)),
      offset: String(append ? rows.size : 0),
    });
    const query = search.value.trim();
    if (query) params.set("q", query);
    const started = performance.now();
    const response = await fetch(url(`messages?${params}`));
    if (seq !== loadSeq) return; // a newer search or reload has started
    const status = document.getElementById("search-status");
    if (!response.ok) {
      status.textContent = (await response.json().catch(() => ({}))).error || "";
      return;
    }
    status.textContent = "";
    total = Number(response.headers.get("X-Total-Count") || 0);
    renderList(await response.json(), append);
    everLoaded = true;
    announceArrivals();
    const html = document.documentElement;
    // The page's own clock, from navigation to the first list shown (make bench reads it).
    if (!html.dataset.loaded) html.dataset.paintedMs = performance.now().toFixed(1);
    html.dataset.loaded = "true";
    html.dataset.answered = query; // what the list now shows, and how long it took
    html.dataset.answerMs = (performance.now() - started).toFixed(1);
  }

  // New mail is said once per load, politely (a screen reader waits for a pause),
  // however many messages a burst brought.
  function announceArrivals() {
    if (!arrived) return;
    const text = arrived === 1 ? "1 new message" : `${arrived} new messages`;
    document.getElementById("mail-news").textContent = text;
    arrived = 0;
  }

  // Coalesces bursts (typing, a flood of new mail) into one load.
  function reloadSoon(delayMs) {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load(false), delayMs);
  }

  function applySearch() {
    reloadSoon(150);
  }

  // A link can carry a search: /#search=<url-encoded text> (Work-It's page links here
  // with the start of the thought, which the email's subject holds).
  function searchFromHash() {
    const prefix = "#search=";
    if (!location.hash.startsWith(prefix)) return;
    try {
      search.value = decodeURIComponent(location.hash.slice(prefix.length));
    } catch (err) {
      return; // a malformed %-escape: leave the box as it is
    }
    if (everLoaded) applySearch();
  }

  // -- the selected message -------------------------------------------------

  // The newest selection's load, which opening a message waits for.
  let selecting = Promise.resolve();

  function select(id) {
    selecting = selectNow(id);
    return selecting;
  }

  async function selectNow(id) {
    const row = rows.get(id);
    if (!row) return;
    for (const tr of tbody.querySelectorAll("tr.selected")) {
      tr.classList.remove("selected");
      tr.removeAttribute("aria-current");
    }
    row.tr.classList.add("selected");
    row.tr.setAttribute("aria-current", "true"); // a screen reader says which one is open
    row.tr.scrollIntoView({ block: "nearest" });
    selectedId = id;
    const response = await fetch(url(`messages/${id}.json`));
    if (!response.ok || selectedId !== id) return;
    showMessage(await response.json());
  }

  function showMessage(message) {
    messageView.hidden = false;
    messageView.dataset.messageId = String(message.id);
    const meta = (name, text) => { messageView.querySelector(`dd.${name}`).textContent = text; };
    meta("from", bare(message.sender));
    meta("to", (message.recipients || []).map(bare).join(", "));
    meta("subject", message.subject ?? "");
    meta("created-at", formatDate(message.created_at));
    const available = [...message.formats];
    if (message.attachments.length) available.push("attachments");
    for (const tab of messageView.querySelectorAll("[role=tab]")) {
      tab.parentElement.hidden = !available.includes(tab.dataset.format);
    }
    document.getElementById("remote-blocked").hidden = !message.remote_content_blocked;
    document.getElementById("release-status").textContent = "";
    document.getElementById("download").href = url(`messages/${message.id}.eml`);
    document.getElementById("download").download = `message-${message.id}.eml`;
    renderAttachments(message.attachments);
    const format = available.includes(preferredFormat)
      ? preferredFormat
      : FORMATS.find((f) => available.includes(f));
    showFormat(message.id, format);
  }

  function renderAttachments(attachments) {
    const list = document.getElementById("attachments-view");
    list.replaceChildren(...attachments.map((attachment) => {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = url(attachment.href.replace(/^\//, ""));
      link.download = attachment.filename || "";
      link.textContent = attachment.filename || attachment.cid || "attachment";
      const details = document.createElement("span");
      details.className = "details";
      details.textContent = ` ${attachment.type}, ${formatSize(attachment.size)}`;
      li.append(link, details);
      return li;
    }));
  }

  async function showFormat(id, format) {
    for (const tab of messageView.querySelectorAll("[role=tab]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.format === format));
      if (tab.dataset.format === format) panels.setAttribute("aria-labelledby", tab.id);
    }
    for (const panel of messageView.querySelectorAll(".panels > [data-format]")) {
      panel.hidden = panel.dataset.format !== format;
    }
    if (format === "html") {
      document.getElementById("html-view").src = url(`messages/${id}.html`);
    } else if (format === "plain" || format === "source") {
      const pre = document.getElementById(`${format}-view`);
      pre.textContent = "";
      const response = await fetch(url(`messages/${id}.${format}`));
      if (!response.ok || selectedId !== id) return;
      const text = await response.text();
      if (format === "plain") pre.replaceChildren(...linkified(text));
      else pre.textContent = text;
    }
  }

  // Text nodes and links for the http(s) URLs in a plain-text body, built as DOM
  // nodes (never HTML), opening in a new tab without telling the target where from.
  function linkified(text) {
    const nodes = [];
    let last = 0;
    for (const match of text.matchAll(/\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g)) {
      nodes.push(document.createTextNode(text.slice(last, match.index)));
      const link = document.createElement("a");
      link.href = match[0];
      link.textContent = match[0];
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      nodes.push(link);
      last = match.index + match[0].length;
    }
    nodes.push(document.createTextNode(text.slice(last)));
    return nodes;
  }

  function unselect() {
    selectedId = null;
    messageView.hidden = true;
    delete messageView.dataset.messageId;
    document.getElementById("html-view").removeAttribute("src");
  }

  // By key, a message goes only once the person says so (the button is explicit).
  function confirmDelete() {
    if (selectedId !== null && window.confirm("Delete this message?")) deleteSelected();
  }

  async function deleteSelected() {
    const id = selectedId;
    if (id === null) return;
    const response = await fetch(url(`messages/${id}`), { method: "DELETE" });
    if (response.ok || response.status === 404) removeMessage(id);
  }

  // Send the selected message on through the relay the sink was started with.
  async function releaseSelected(event) {
    event.preventDefault();
    const id = selectedId;
    const status = document.getElementById("release-status");
    const recipients = document.getElementById("release-to").value
      .split(/[\s,;]+/).filter(Boolean);
    if (id === null || !recipients.length) return;
    status.textContent = "Releasing…";
    const response = await fetch(url(`messages/${id}/release`), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ recipients }),
    });
    const answer = await response.json().catch(() => ({}));
    status.textContent = response.ok
      ? `Released to ${answer.released_to.join(", ")}.`
      : (answer.error || `Release failed (${response.status}).`);
  }

  function move(step) {
    const current = selectedId !== null && rows.get(selectedId);
    const next = current ? neighbour(current.tr, step) : tbody.rows[0];
    if (next) select(Number(next.dataset.messageId));
  }

  // -- live updates ---------------------------------------------------------

  // New mail reloads the shown rows (so it lands in place, searched and tagged);
  // removals and clears show at once.
  function apply(frame) {
    if (frame.type === "add") {
      arrived += 1;
      reloadSoon(100);
    }
    else if (frame.type === "remove") removeMessage(frame.id);
    else if (frame.type === "clear") clearMessages();
  }

  function refresh() {
    return load(false);
  }

  function setLive(state, text) {
    document.documentElement.dataset.live = state;
    document.getElementById("live-status").textContent = text;
  }

  function connect() {
    const address = new URL("messages", document.baseURI);
    address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(address);
    socket.addEventListener("open", () => {
      retryDelay = 500;
      setLive("open", "live");
      refresh(); // again once subscribed: mail that came before the socket is not missed
    });
    socket.addEventListener("message", (event) => apply(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      setLive("closed", "reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
  }

  // -- wiring ---------------------------------------------------------------

  tbody.addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-message-id]");
    if (tr) select(Number(tr.dataset.messageId));
  });

  for (const tab of messageView.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => {
      preferredFormat = tab.dataset.format;
      if (selectedId !== null) showFormat(selectedId, preferredFormat);
    });
  }

  search.addEventListener("input", applySearch);
  window.addEventListener("hashchange", searchFromHash);
  searchFromHash();
  document.getElementById("delete").addEventListener("click", deleteSelected);
  document.getElementById("release").addEventListener("submit", releaseSelected);
  document.getElementById("more").addEventListener("click", () => load(true));
  document.getElementById("clear-all").addEventListener("click", async () => {
    if (!window.confirm("Delete all messages?")) return;
    const response = await fetch(url("messages"), { method: "DELETE" });
    if (response.ok) clearMessages();
  });

  // The keyboard: ArrowDown/ArrowUp or j/k move through the list (and show the
  // message), Enter opens it (focus goes to its view), Escape goes back to the list,
  // "/" goes to the search box. Keys typed into a field, or meant for a button or a
  // link (Enter), are theirs.
  async function openSelected() {
    if (selectedId === null) move(1);
    await selecting;
    if (selectedId !== null && !messageView.hidden) panels.focus();
  }

  function backToList() {
    list.focus();
  }

  // ArrowLeft/ArrowRight between the view tabs, as a tab list is used.
  function nextTab(tab, step) {
    const tabs = [...messageView.querySelectorAll("[role=tab]")]
      .filter((t) => !t.parentElement.hidden);
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    next.focus();
    next.click();
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest("input, textarea, select")) {
      if (event.key === "Escape" && event.target === search) backToList();
      return;
    }
    const onControl = event.target.closest("button, a, [role=tab]");
    const tab = event.target.closest("[role=tab]");
    const actions = {
      ArrowDown: () => move(1),
      ArrowUp: () => move(-1),
      j: () => move(1),
      k: () => move(-1),
      "/": () => search.focus(),
      Escape: backToList,
      Delete: confirmDelete,
      Backspace: confirmDelete,
    };
    if (!onControl) actions.Enter = openSelected;
    if (tab) {
      actions.ArrowRight = () => nextTab(tab, 1);
      actions.ArrowLeft = () => nextTab(tab, -1);
    }
    if (!actions[event.key]) return;
    event.preventDefault();
    actions[event.key]();
  });

  refresh(); // the list at once, while the websocket connects
  connect();
})();
