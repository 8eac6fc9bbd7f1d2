// The staff inbox (chat/inbox/): its WebSocket frames are in docs/protocol.md, "Staff inbox".
// Text from visitors, agents and the model is only ever set as textContent.

const root = document.querySelector(".si");
const strings = JSON.parse(document.getElementById(root.dataset.stringsId).textContent);
const $ = (selector) => root.querySelector(selector);
const PING_MS = 25000;
const TYPING_MS = 3000;
const baseTitle = document.title;

const state = {
  me: null,
  conversations: new Map(),
  agents: new Map(),
  canned: [],
  opened: null,
  socket: null,
  retry: 0,
  idleSeconds: 300,
  presence: "online",
  alerted: new Set(),
  typingSent: 0,
};

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function announce(text) {
  const live = $(".si-live");
  live.textContent = "";
  // A fresh text node, so screen readers read a repeated announcement again.
  setTimeout(() => { live.textContent = text; }, 50);
}

function duration(fromIso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(fromIso)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function localTime(iso) {
  return iso ? new Date(iso).toLocaleString(document.documentElement.lang || undefined) : "";
}

function visitorName(conversation) {
  return conversation.visitor.name || strings.anonymous;
}

// -- connection --------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${root.dataset.wsPath}`);
  state.socket = socket;
  socket.addEventListener("open", () => { state.retry = 0; });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    if (event.code === 4403) {
      setStatus("offline", strings.error);
      return;
    }
    setStatus("reconnecting", strings.reconnecting);
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(connect, 500 * 2 ** state.retry);
  });
}

function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

function setStatus(name, text) {
  const status = $(".si-status");
  status.dataset.state = name;
  status.textContent = text;
}

// -- frames from the server --------------------------------------------------------

function receive(frame) {
  switch (frame.type) {
    case "snapshot": return snapshot(frame);
    case "conversation_changed": return changed(frame.conversation);
    case "conversation": return showConversation(frame);
    case "message": return message(frame);
    case "typing": return typing(frame);
    case "note": return note(frame);
    case "presence": return presence(frame);
    case "ack": return ack(frame);
    case "error": return error(frame);
    default: return undefined;
  }
}

function snapshot(frame) {
  setStatus("online", strings.connected);
  state.me = frame.me;
  state.idleSeconds = frame.agent_idle || state.idleSeconds;
  // The idle delay is the server's HANDOFF["AGENT_IDLE"]; a reconnected tab
  // counts as online on the server, so an idle one says so again.
  restartIdle();
  if (state.presence !== "online") send({ type: "presence", state: state.presence });
  state.conversations = new Map(frame.conversations.map((c) => [c.id, c]));
  for (const conversation of frame.conversations) {
    if (conversation.state === "waiting") state.alerted.add(conversation.id);
  }
  state.agents = new Map(frame.agents.map((a) => [a.id, a]));
  state.canned = frame.canned_replies;
  renderCanned();
  renderList();
  renderAgents();
  if (state.opened !== null) send({ type: "open", handoff_id: state.opened });
}

function changed(conversation) {
  const before = state.conversations.get(conversation.id);
  state.conversations.set(conversation.id, conversation);
  if (conversation.state === "waiting" && !state.alerted.has(conversation.id)) {
    state.alerted.add(conversation.id);
    alertNew(conversation);
  }
  renderList();
  if (state.opened === conversation.id) {
    renderHead(conversation);
    if (before && before.state !== conversation.state && conversation.state === "ended") {
      announce(strings.ended);
    }
  }
}

function message(frame) {
  const conversation = state.conversations.get(frame.handoff_id);
  if (state.opened === frame.handoff_id) {
    appendMessage(frame.message);
    if (frame.message.role === "user") {
      $(".si-typing").textContent = "";
      announce(`${strings.role_user}: ${frame.message.content}`);
    }
  } else if (conversation && frame.message.role === "user") {
    conversation.unread += 1;
  }
  if (conversation) {
    conversation.preview = frame.message.content.slice(0, 120);
    renderList();
  }
}

function typing(frame) {
  if (state.opened !== frame.handoff_id || frame.role !== "user") return;
  const line = $(".si-typing");
  line.textContent = frame.is_typing ? strings.visitor_typing : "";
  clearTimeout(state.typingTimer);
  if (frame.is_typing) state.typingTimer = setTimeout(() => { line.textContent = ""; }, 8000);
}

function note(frame) {
  if (state.opened === frame.handoff_id) appendNote(frame.note);
}

function presence(frame) {
  state.agents.set(frame.agent.id, { ...frame.agent, presence: frame.presence });
  renderAgents();
  const conversation = state.conversations.get(state.opened);
  if (conversation) renderHead(conversation);
}

function ack(frame) {
  if (frame.of === "claim") announce(strings.claimed);
  if (frame.of === "transfer") announce(strings.transferred);
  if (frame.of === "message" && state.opened === frame.handoff_id) {
    const text = $(".si-reply-text");
    text.value = "";
    text.focus();
  }
}

function error(frame) {
  const text = frame.message || strings.error;
  // The alert role reads it out; shown until the agent's next action.
  $(".si-error").textContent = text;
}

function clearError() {
  $(".si-error").textContent = "";
}

// -- alerts --------------------------------------------------------------------------

function alertNew(conversation) {
  const text = format(strings.new_waiting, { name: visitorName(conversation) });
  announce(text);
  if ($(".si-sound-toggle").checked) beep();
}

let audio = null;

function beep() {
  // Generated, not downloaded: two short tones through the Web Audio API.
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [offset, frequency] of [[0, 880], [0.18, 1175]]) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.2, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.15);
      tone.connect(gain).connect(audio.destination);
      tone.start(now + offset);
      tone.stop(now + offset + 0.16);
    }
    root.dataset.beeps = String(Number(root.dataset.beeps || 0) + 1);
  } catch (_error) {
    // No audio device: the title and the announcement still tell.
  }
}

function updateTitle() {
  let waiting = 0;
  let unread = 0;
  for (const conversation of state.conversations.values()) {
    if (conversation.state === "waiting") waiting += 1;
    unread += conversation.unread;
  }
  const count = waiting + unread;
  document.title = count ? `(${count}) ${baseTitle}` : baseTitle;
  $('[data-count="waiting"]').textContent = String(waiting);
}

// -- the list --------------------------------------------------------------------------

function section(conversation) {
  if (conversation.state === "waiting") return "waiting";
  if (conversation.state === "active") return "active";
  return "recent";
}

function renderList() {
  const lists = {};
  for (const list of root.querySelectorAll(".si-items")) {
    lists[list.dataset.section] = list;
    list.replaceChildren();
  }
  for (const conversation of state.conversations.values()) {
    lists[section(conversation)].append(listItem(conversation));
  }
  for (const list of Object.values(lists)) {
    if (!list.children.length) list.append(el("li", "si-empty", strings.empty));
  }
  updateTitle();
}

function listItem(conversation) {
  const item = el("li", "si-item");
  const button = el("button", "si-open");
  button.type = "button";
  button.dataset.id = String(conversation.id);
  if (state.opened === conversation.id) button.setAttribute("aria-current", "true");
  button.append(el("span", "si-name", visitorName(conversation)));
  const meta = el("span", "si-meta");
  if (conversation.state === "waiting") {
    const wait = el("span", "si-wait", format(strings.waited, { time: duration(conversation.requested_at) }));
    wait.dataset.since = conversation.requested_at;
    meta.append(wait);
  } else {
    meta.append(el("span", "si-state-label", strings[`state_${conversation.state}`] || conversation.state));
    if (conversation.agent) {
      const name = conversation.agent.id === state.me?.id ? strings.you : conversation.agent.name;
      meta.append(el("span", "si-agent", ` · ${name}`));
    }
  }
  button.append(meta);
  if (conversation.reason) button.append(el("span", "si-reason", conversation.reason));
  if (conversation.left_message) button.append(el("span", "si-left", strings.state_unavailable));
  if (conversation.preview && conversation.preview !== conversation.reason) {
    button.append(el("span", "si-preview", conversation.preview));
  }
  if (conversation.unread) {
    const badge = el("span", "si-unread", String(conversation.unread));
    badge.setAttribute("aria-label", format(strings.unread, { count: conversation.unread }));
    button.append(badge);
  }
  button.addEventListener("click", () => open(conversation.id));
  item.append(button);
  return item;
}

function renderAgents() {
  const list = $(".si-agents");
  list.replaceChildren();
  const select = $(".si-transfer-to");
  select.replaceChildren();
  for (const agent of state.agents.values()) {
    const item = el("li", `si-agent-row si-presence--${agent.presence}`);
    item.append(el("span", "si-dot"));
    item.append(el("span", "", `${agent.name} — ${strings[agent.presence] || agent.presence}`));
    list.append(item);
    if (state.me && agent.id !== state.me.id) {
      const option = el("option", "", `${agent.name} (${strings[agent.presence] || agent.presence})`);
      option.value = String(agent.id);
      select.append(option);
    }
  }
}

function renderCanned(locale = "") {
  const select = $(".si-canned");
  select.replaceChildren(el("option", "", strings.canned_none));
  select.firstChild.value = "";
  // Replies in the visitor's language (or in any) come first.
  const language = locale.toLowerCase().split("-")[0];
  const fits = (reply) => !reply.language || reply.language.toLowerCase().split("-")[0] === language;
  const ordered = [...state.canned.filter(fits), ...state.canned.filter((r) => !fits(r))];
  for (const reply of ordered) {
    const option = el("option", "", reply.language ? `${reply.title} (${reply.language})` : reply.title);
    option.value = String(reply.id);
    select.append(option);
  }
  select.hidden = !state.canned.length;
}

// -- one conversation ------------------------------------------------------------

function open(id) {
  state.opened = id;
  clearError();
  const conversation = state.conversations.get(id);
  if (conversation) conversation.unread = 0;
  renderList();
  send({ type: "open", handoff_id: id });
}

function showConversation(frame) {
  if (frame.handoff_id !== state.opened) return;
  $(".si-choose").hidden = true;
  $(".si-conversation").hidden = false;
  $(".si-transcript").replaceChildren();
  for (const item of frame.messages) appendMessage(item);
  const context = $(".si-context");
  context.replaceChildren();
  for (const part of frame.context) {
    context.append(el("h4", "", part.title));
    const list = el("dl", "si-facts");
    for (const [name, value] of Object.entries(part.facts)) {
      list.append(el("dt", "", name), el("dd", "", value));
    }
    context.append(list);
  }
  const leads = $(".si-leads");
  leads.replaceChildren();
  for (const lead of frame.leads) {
    const parts = [lead.name, lead.email, lead.phone, lead.details].filter(Boolean);
    leads.append(el("li", "", `${localTime(lead.created_at)}: ${parts.join(" · ")}`));
  }
  $(".si-leads-wrap").hidden = !frame.leads.length;
  $(".si-notes").replaceChildren();
  for (const item of frame.notes) appendNote(item);
  $(".si-typing").textContent = "";
  const conversation = state.conversations.get(frame.handoff_id);
  if (conversation) {
    renderCanned(conversation.visitor.locale || "");
    renderHead(conversation);
  }
  $(".si-who").focus();
}

function renderHead(conversation) {
  $(".si-who").textContent = visitorName(conversation);
  const mine = conversation.agent && state.me && conversation.agent.id === state.me.id;
  let line = strings[`state_${conversation.state}`] || conversation.state;
  if (conversation.state === "waiting") {
    line += ` · ${format(strings.waited, { time: duration(conversation.requested_at) })}`;
  } else if (conversation.agent) {
    line += ` · ${format(strings.agent_of, { name: mine ? strings.you : conversation.agent.name })}`;
  }
  $(".si-state").textContent = line;
  $(".si-claim").hidden = conversation.state !== "waiting";
  const holding = conversation.state === "active" && mine;
  const colleagues = $(".si-transfer-to").options.length > 0;
  $(".si-transfer").hidden = !holding || !colleagues;
  $(".si-transfer-label").hidden = !holding || !colleagues;
  $(".si-end").hidden = !holding;
  const reply = $(".si-reply");
  for (const control of reply.querySelectorAll("textarea, button, select")) {
    control.disabled = !holding;
  }
  reply.querySelector(".si-reply-hint").textContent = holding ? "" : strings.claim_first;
}

function appendMessage(item) {
  const row = el("li", `si-msg si-msg--${item.role}`);
  row.dataset.id = item.id;
  const label = item.role === "agent" && item.agent ? item.agent.name : strings[`role_${item.role}`];
  const head = el("div", "si-msg-head");
  head.append(el("span", "si-msg-role", label), el("time", "si-msg-time", localTime(item.created_at)));
  row.append(head, el("div", "si-msg-text", item.content));
  const sources = item.metadata?.sources || [];
  if (sources.length) {
    const list = el("ul", "si-sources");
    list.setAttribute("aria-label", strings.sources);
    for (const source of sources) {
      const entry = el("li");
      if (source.url && /^(https?:\/\/|\/)/.test(source.url)) {
        const link = el("a", "", source.title || source.url);
        link.href = source.url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        entry.append(link);
      } else {
        entry.textContent = source.title || "";
      }
      list.append(entry);
    }
    row.append(list);
  }
  $(".si-transcript").append(row);
  row.scrollIntoView({ block: "nearest" });
}

function appendNote(item) {
  const row = el("li", "si-note");
  row.append(el("div", "si-note-head", `${item.author} · ${localTime(item.created_at)}`));
  row.append(el("div", "si-note-text", item.content));
  $(".si-notes").append(row);
}

// -- the agent's actions --------------------------------------------------------------

$(".si-claim").addEventListener("click", () => {
  clearError();
  send({ type: "claim", handoff_id: state.opened });
});
$(".si-end").addEventListener("click", () => {
  clearError();
  send({ type: "end", handoff_id: state.opened });
});
$(".si-transfer").addEventListener("click", () => {
  clearError();
  const agentId = Number($(".si-transfer-to").value);
  if (agentId) send({ type: "transfer", handoff_id: state.opened, agent_id: agentId });
});

$(".si-reply").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $(".si-reply-text").value.trim();
  if (!text) return;
  clearError();
  send({ type: "message", handoff_id: state.opened, content: text, client_message_id: crypto.randomUUID() });
  send({ type: "typing", handoff_id: state.opened, is_typing: false });
  state.typingSent = 0;
});

$(".si-reply-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $(".si-reply").requestSubmit();
  }
});

$(".si-reply-text").addEventListener("input", () => {
  const now = Date.now();
  if (now - state.typingSent > TYPING_MS) {
    state.typingSent = now;
    send({ type: "typing", handoff_id: state.opened, is_typing: true });
  }
});

$(".si-canned").addEventListener("change", (event) => {
  const reply = state.canned.find((r) => String(r.id) === event.target.value);
  if (!reply) return;
  const text = $(".si-reply-text");
  text.value = text.value ? `${text.value} ${reply.text}` : reply.text;
  event.target.value = "";
  text.focus();
});

$(".si-note-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $(".si-note-text");
  if (text.value.trim() && send({ type: "note", handoff_id: state.opened, content: text.value })) {
    text.value = "";
  }
});

// -- presence: online while the tab is used, away after idling -----------------------

let idleTimer = null;

function restartIdle() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    state.presence = "away";
    send({ type: "presence", state: "away" });
  }, state.idleSeconds * 1000);
}

function active() {
  if (state.presence !== "online") {
    state.presence = "online";
    send({ type: "presence", state: "online" });
  }
  restartIdle();
}

for (const name of ["keydown", "pointerdown", "pointermove", "focus"]) {
  window.addEventListener(name, active, { passive: true });
}

setInterval(() => send({ type: "ping" }), PING_MS);
// Wait times shown in the list move on (from the times already received: no request).
// Updated in place, so keyboard focus stays where it is.
setInterval(() => {
  for (const wait of root.querySelectorAll(".si-wait")) {
    wait.textContent = format(strings.waited, { time: duration(wait.dataset.since) });
  }
}, 15000);

connect();
active();
