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
  const rows = new Map(); // message id -> { tr, haystack }
  let selectedId = null;
  let preferredFormat = "html";
  let loading = false;
  let pending = []; // frames that arrived while the list was loading
  let everLoaded = false;
  let retryDelay = 500;

  const url = (path) => new URL(path, document.baseURI).toString();
  const bare = (address) => String(address ?? "").replace(/^<(.*)>$/, "$1");

  function cell(text, className) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = text;
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
    const sender = bare(message.sender);
    const recipients = (message.recipients || []).map(bare).join(", ");
    const subject = message.subject ?? "";
    const tr = document.createElement("tr");
    tr.dataset.messageId = String(message.id);
    tr.append(
      cell(sender, "from"),
      cell(recipients, "to"),
      cell(subject || "(no subject)", subject ? "subject" : "subject blank"),
      cell(formatDate(message.created_at), "created-at"),
      cell(formatSize(message.size), "size"),
    );
    const haystack = `${sender} ${recipients} ${subject}`.toLowerCase();
    tr.hidden = !matchesSearch(haystack);
    return { tr, haystack };
  }

  function renderList(messages) {
    const started = performance.now();
    const fragment = document.createDocumentFragment();
    rows.clear();
    for (let i = messages.length - 1; i >= 0; i -= 1) {
      const row = makeRow(messages[i]);
      rows.set(messages[i].id, row);
      fragment.append(row.tr);
    }
    tbody.replaceChildren(fragment);
    if (selectedId !== null && rows.has(selectedId)) {
      rows.get(selectedId).tr.classList.add("selected");
    } else {
      unselect();
    }
    updateCount();
    document.documentElement.dataset.renderMs = (performance.now() - started).toFixed(1);
  }

  function addMessage(message) {
    if (rows.has(message.id)) return;
    const row = makeRow(message);
    rows.set(message.id, row);
    tbody.prepend(row.tr);
    updateCount();
  }

  function removeMessage(id) {
    const row = rows.get(id);
    if (!row) return;
    const next = id === selectedId ? neighbour(row.tr, 1) || neighbour(row.tr, -1) : null;
    row.tr.remove();
    rows.delete(id);
    if (id === selectedId) next ? select(Number(next.dataset.messageId)) : unselect();
    updateCount();
  }

  function clearMessages() {
    rows.clear();
    tbody.replaceChildren();
    unselect();
    updateCount();
  }

  function updateCount() {
    document.title = `MailCatcher (${rows.size})`;
    document.getElementById("empty").hidden = rows.size > 0;
  }

  function neighbour(tr, step) {
    let next = step > 0 ? tr.nextElementSibling : tr.previousElementSibling;
    while (next && next.hidden) {
      next = step > 0 ? next.nextElementSibling : next.previousElementSibling;
    }
    return next;
  }

  // -- search ---------------------------------------------------------------

  function matchesSearch(haystack) {
    const tokens = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return tokens.every((token) => haystack.includes(token));
  }

  function applySearch() {
    for (const { tr, haystack } of rows.values()) tr.hidden = !matchesSearch(haystack);
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
    applySearch();
  }

  // -- the selected message -------------------------------------------------

  async function select(id) {
    const row = rows.get(id);
    if (!row) return;
    for (const tr of tbody.querySelectorAll("tr.selected")) tr.classList.remove("selected");
    row.tr.classList.add("selected");
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
      if (response.ok && selectedId === id) pre.textContent = await response.text();
    }
  }

  function unselect() {
    selectedId = null;
    messageView.hidden = true;
    delete messageView.dataset.messageId;
    document.getElementById("html-view").removeAttribute("src");
  }

  async function deleteSelected() {
    const id = selectedId;
    if (id === null) return;
    const response = await fetch(url(`messages/${id}`), { method: "DELETE" });
    if (response.ok || response.status === 404) removeMessage(id);
  }

  function move(step) {
    const current = selectedId !== null && rows.get(selectedId);
    const next = current
      ? neighbour(current.tr, step)
      : [...tbody.rows].find((tr) => !tr.hidden);
    if (next) select(Number(next.dataset.messageId));
  }

  // -- live updates ---------------------------------------------------------

  function apply(frame) {
    if (frame.type === "add") addMessage(frame.message);
    else if (frame.type === "remove") removeMessage(frame.id);
    else if (frame.type === "clear") clearMessages();
  }

  async function refresh() {
    loading = true;
    try {
      const response = await fetch(url("messages"));
      if (response.ok) renderList(await response.json());
      everLoaded = true;
      document.documentElement.dataset.loaded = "true";
    } finally {
      loading = false;
      const frames = pending;
      pending = [];
      frames.forEach(apply);
    }
  }

  function setLive(state, text) {
    document.documentElement.dataset.live = state;
    document.getElementById("live-status").textContent = text;
  }

  function connect() {
    const address = new URL("messages", document.baseURI);
    address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(address);
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      retryDelay = 500;
      setLive("open", "live");
      refresh(); // after subscribing, so nothing sent in between is missed
    });
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      if (loading) pending.push(frame);
      else apply(frame);
    });
    socket.addEventListener("close", () => {
      setLive("closed", "reconnecting…");
      if (!opened && !everLoaded) refresh(); // no websocket at all: still show the list
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
  document.getElementById("clear-all").addEventListener("click", async () => {
    if (!window.confirm("Delete all messages?")) return;
    const response = await fetch(url("messages"), { method: "DELETE" });
    if (response.ok) clearMessages();
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select") || event.altKey) return;
    const actions = {
      ArrowDown: () => move(1),
      ArrowUp: () => move(-1),
      Delete: deleteSelected,
      Backspace: deleteSelected,
    };
    if (!actions[event.key]) return;
    event.preventDefault();
    actions[event.key]();
  });

  connect();
})();
