// The <sophie-chat> element: sophie-chat's chat widget (wire protocol v1).
//
// A plain ES module with no dependencies and no build step. It works under
// `Content-Security-Policy: script-src 'self'; style-src 'self'`: no inline
// script, no inline style, no eval, and every piece of model or user text is
// put in the page with textContent / Text nodes, never as HTML.
//
// Configuration comes from the element's data-* attributes, written by the
// {% sophie_chat_widget %} template tag (see docs/widget.md), and the UI
// strings from the application/json block named by data-strings-id.

const PROTOCOL_VERSION = 1;
const DEFAULT_WS_PATH = "/ws/chat/";
const STORAGE_PREFIX = "sophie-chat:";
const PING_INTERVAL_MS = 25_000;
// No frame at all within this long after a ping: the connection is dead.
const PONG_TIMEOUT_MS = 10_000;
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
// The server refused us (forbidden, too many connections): retrying would not help.
const NO_RECONNECT_CODES = new Set([4403, 4429]);
const RESUME_ERRORS = new Set(["session_not_found", "session_closed"]);
// Errors for a message that resending cannot fix.
const FINAL_MESSAGE_ERRORS = new Set(["empty_message", "message_too_long", "invalid_message"]);
const ROLES = new Set(["user", "assistant", "agent", "system"]);
const TYPING_TIMEOUT_MS = 30_000;
// Stay scrolled to the end when the reader is this close to it.
const STICKY_SCROLL_PX = 80;
// The server refuses, rather than truncates, oversize context fields.
const MAX_PAGE_URL = 2000;
const MAX_PAGE_TITLE = 300;
const MAX_LOCALE = 16;
const SVG_NS = "http://www.w3.org/2000/svg";
const STYLESHEET_TIMEOUT_MS = 5_000;

// English fallbacks; the template tag passes translated ones.
const DEFAULT_STRINGS = {
  open: "Chat with %(name)s",
  close: "Close chat",
  dialog: "Chat with %(name)s",
  log: "Conversation",
  input: "Your message",
  placeholder: "Type your message…",
  send: "Send",
  you: "You",
  agent: "Support agent",
  connecting: "Connecting…",
  online: "Online",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  typing: "%(name)s is typing…",
  agent_typing: "A support agent is typing…",
  pending: "Sending…",
  queued: "Waiting for the connection…",
  failed: "Not sent",
  retry: "Try again",
  sources: "Sources",
  retry_in: "You can send again in %(seconds)s s.",
  error: "Something went wrong. Please try again.",
  ended: "This conversation has ended. Your next message starts a new one.",
  new_session: "Your previous conversation could not be continued, so a new one has started.",
  refused: "The chat is not available right now.",
};

/** Create an element; string children become Text nodes (never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

function chatIcon() {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute(
    "d",
    "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
  );
  svg.append(path);
  return svg;
}

/**
 * A link target that is safe to put in href: an absolute http(s) URL, or a
 * path on this site beginning with "/". Anything else (javascript:, data:,
 * protocol-relative "//host", backslash tricks) gives null.
 */
export function safeUrl(value) {
  if (typeof value !== "string") return null;
  const url = value.trim();
  if (!url) return null;
  if (url.startsWith("/")) {
    // Browsers drop tabs/newlines and read "\" as "/", so "/\t/evil.example"
    // would become protocol-relative: refuse them before resolving.
    if (/[\u0000-\u0020\u007f\\]/.test(url) || url.startsWith("//")) return null;
    try {
      const resolved = new URL(url, window.location.href);
      return resolved.origin === window.location.origin ? resolved.href : null;
    } catch {
      return null;
    }
  }
  try {
    const resolved = new URL(url);
    return resolved.protocol === "http:" || resolved.protocol === "https:" ? resolved.href : null;
  } catch {
    return null;
  }
}

/**
 * The WebSocket URL for a path, on this page's host, ws: or wss: to match
 * http: or https:. The locale goes in the query string, so the server's
 * welcome greeting and errors are in the page's language from the start.
 */
export function webSocketUrl(path, locale = "") {
  const absolute = /^wss?:\/\//i.test(path);
  const url = new URL(path || DEFAULT_WS_PATH, window.location.href);
  if (!absolute) url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  if (locale && !url.searchParams.has("locale")) url.searchParams.set("locale", locale);
  return url.href;
}

/** A random UUID; crypto.randomUUID() exists only on https: and localhost. */
export function newClientMessageId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const parts = [
    [0, 8],
    [8, 12],
    [12, 16],
    [16, 20],
    [20, 32],
  ];
  return parts.map(([start, end]) => hex.slice(start, end)).join("-");
}

/** Exponential backoff with jitter: between half and all of min(30 s, 1 s * 2^attempt). */
export function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 15));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function format(template, values) {
  return String(template).replace(/%\((\w+)\)s/g, (match, key) =>
    Object.hasOwn(values, key) ? String(values[key]) : match,
  );
}

function readStrings(id) {
  if (!id) return {};
  const node = document.getElementById(id);
  if (!node) return {};
  try {
    const data = JSON.parse(node.textContent);
    return data && typeof data === "object" ? data : {};
  } catch {
    return {};
  }
}

// Storage can be disabled or full (private browsing, quotas): never let that break the chat.
function storageGet(storage, key) {
  try {
    return window[storage].getItem(key);
  } catch {
    return null;
  }
}

function storageSet(storage, key, value) {
  try {
    if (value === null) window[storage].removeItem(key);
    else window[storage].setItem(key, value);
  } catch {
    // Not stored: the conversation just won't survive a reload.
  }
}

/** The stylesheet URL: data-stylesheet, or widget.css next to this module. */
function stylesheetUrl(element) {
  return element.dataset.stylesheet || new URL("widget.css", import.meta.url).href;
}

/** The nonce of the <script> that loaded this module, for the shadow root's <link>. */
function ownNonce() {
  for (const script of document.querySelectorAll("script[type=module][src]")) {
    if (script.src === import.meta.url) return script.nonce || "";
  }
  return "";
}

export class SophieChatElement extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._built = false;
    this._socket = null;
    this._ready = false; // a `session` frame arrived on the current socket
    this._awaitingSession = false;
    this._resuming = false;
    this._freshInits = 0;
    this._refused = false;
    this._started = false; // connected at least once: stay connected while on the page
    this._attempt = 0;
    this._state = "idle";
    this._messages = new Map(); // server message id -> record
    this._pending = new Map(); // client_message_id -> {content, record, acked, sentOn}
    this._outbox = []; // client_message_ids not yet acknowledged, in order
    this._streaming = new Set();
    this._timers = { reconnect: 0, ping: 0, pong: 0, typing: 0, countdown: 0 };
    this._rateLimitedUntil = 0;
    this._onOnline = () => this._handleOnline();
    this._onOffline = () => this._handleOffline();
  }

  connectedCallback() {
    if (!this._built) this._build();
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    const startOpen =
      this.dataset.open === "true" || storageGet("sessionStorage", this._openKey) === "1";
    if (startOpen) this.open({ focus: false });
    else if (this._started) this._connect();
  }

  disconnectedCallback() {
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    for (const name of Object.keys(this._timers)) this._clearTimer(name);
    const socket = this._socket;
    this._detachSocket();
    if (socket) socket.close(1000);
  }

  // ---------------------------------------------------------------- public API

  /** Open the panel (connecting if needed); moves focus to the text box unless focus is false. */
  open({ focus = true } = {}) {
    if (!this._built) this._build();
    this._ui.panel.hidden = false;
    this._ui.launcher.setAttribute("aria-expanded", "true");
    this.setAttribute("data-expanded", "true");
    storageSet("sessionStorage", this._openKey, "1");
    this._connect();
    this._scrollToEnd(true);
    if (focus) this._ui.input.focus();
  }

  /** Close the panel; focus returns to the launcher unless focus is false. */
  close({ focus = true } = {}) {
    if (!this._built) return;
    this._ui.panel.hidden = true;
    this._ui.launcher.setAttribute("aria-expanded", "false");
    this.removeAttribute("data-expanded");
    storageSet("sessionStorage", this._openKey, null);
    if (focus) this._ui.launcher.focus();
  }

  toggle() {
    if (this._ui && !this._ui.panel.hidden) this.close();
    else this.open();
  }

  // --------------------------------------------------------------- building

  _build() {
    this._built = true;
    const data = this.dataset;
    const name = data.name || "Sophie";
    const strings = { ...DEFAULT_STRINGS, ...readStrings(data.stringsId) };
    for (const key of Object.keys(strings)) strings[key] = format(strings[key], { name });
    this._config = {
      name,
      wsPath: data.wsPath || DEFAULT_WS_PATH,
      locale: (data.locale || document.documentElement.lang || "").slice(0, MAX_LOCALE),
      greeting: data.greeting || "",
      keepGreeting: data.keepGreeting === "true",
      avatarUrl: safeUrl(data.avatarUrl),
    };
    this._strings = strings;
    this._wsUrl = webSocketUrl(this._config.wsPath, this._config.locale);
    this._sessionKey = `${STORAGE_PREFIX}session:${this._config.wsPath}`;
    this._openKey = `${STORAGE_PREFIX}open:${this._config.wsPath}`;

    const s = strings;
    const ui = {};
    ui.stylesheet = h("link", { rel: "stylesheet", href: stylesheetUrl(this) });
    const nonce = ownNonce();
    if (nonce) ui.stylesheet.nonce = nonce;

    ui.launcher = h(
      "button",
      {
        type: "button",
        class: "launcher",
        part: "launcher",
        "aria-label": s.open,
        "aria-expanded": "false",
        "aria-controls": "sophie-chat-panel",
      },
      chatIcon(),
    );

    ui.name = h("span", { class: "name" }, name);
    ui.status = h("span", { class: "status", role: "status" });
    ui.close = h("button", { type: "button", class: "close", "aria-label": s.close }, "×");
    const avatar = this._config.avatarUrl
      ? h("img", { class: "avatar", src: this._config.avatarUrl, alt: "", width: 32, height: 32 })
      : null;
    ui.header = h(
      "div",
      { class: "header", part: "header" },
      avatar,
      h("div", { class: "title" }, ui.name, ui.status),
      ui.close,
    );

    ui.greeting = h("p", { class: "msg__text" }, this._config.greeting);
    const greeting = h(
      "div",
      {
        class: "msg msg--assistant msg--greeting",
        part: "message message-assistant greeting",
        "data-role": "assistant",
      },
      h("div", { class: "msg__bubble" }, ui.greeting),
    );
    ui.log = h(
      "div",
      {
        class: "log",
        part: "log",
        role: "log",
        "aria-live": "polite",
        "aria-label": s.log,
        "aria-busy": "false",
        // Scrollable region: keyboard users must be able to reach it.
        tabindex: "0",
      },
      greeting,
    );

    ui.typing = h(
      "div",
      { class: "typing", hidden: true },
      h("span", { class: "typing__text" }),
      h("span", { class: "typing__dots", "aria-hidden": "true" }),
    );

    ui.input = h("textarea", {
      class: "input",
      part: "input",
      id: "sophie-chat-input",
      name: "message",
      rows: "1",
      placeholder: s.placeholder,
      autocomplete: "off",
      enterkeyhint: "send",
    });
    ui.send = h("button", { type: "submit", class: "send", part: "send" }, s.send);
    ui.form = h(
      "form",
      { class: "composer", part: "composer", novalidate: true },
      h("label", { class: "sr-only", for: "sophie-chat-input" }, s.input),
      ui.input,
      ui.send,
    );

    ui.panel = h(
      "div",
      {
        class: "panel",
        part: "panel",
        id: "sophie-chat-panel",
        role: "dialog",
        "aria-label": s.dialog,
        hidden: true,
      },
      ui.header,
      ui.log,
      ui.typing,
      ui.form,
    );
    // Hidden until the stylesheet has loaded, so the page never flashes unstyled controls.
    ui.root = h("div", { class: "root", hidden: true }, ui.launcher, ui.panel);
    const reveal = () => {
      window.clearTimeout(revealTimer);
      ui.root.hidden = false;
    };
    // Unstyled is better than invisible if the stylesheet never answers.
    const revealTimer = window.setTimeout(reveal, STYLESHEET_TIMEOUT_MS);
    ui.stylesheet.addEventListener("load", reveal, { once: true });
    ui.stylesheet.addEventListener("error", reveal, { once: true });
    this.shadowRoot.replaceChildren(ui.stylesheet, ui.root);
    this._ui = ui;

    ui.launcher.addEventListener("click", () => this.toggle());
    ui.close.addEventListener("click", () => this.close());
    ui.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.isComposing) {
        event.preventDefault();
        this.close();
      }
    });
    ui.input.addEventListener("keydown", (event) => {
      // isComposing / 229: Enter confirming an IME composition is not "send".
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        ui.form.requestSubmit();
      }
    });
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._submit();
    });
    this._setState(navigator.onLine === false ? "offline" : "idle");
  }

  // ------------------------------------------------------------- connection

  _connect() {
    this._started = true;
    if (this._socket || this._refused) return;
    this._clearTimer("reconnect");
    if (navigator.onLine === false) {
      this._setState("offline");
      return;
    }
    if (this._state !== "reconnecting") this._setState("connecting");
    let socket;
    try {
      socket = new WebSocket(this._wsUrl);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.addEventListener("open", () => {
      if (socket === this._socket) this._handleOpen();
    });
    socket.addEventListener("message", (event) => {
      if (socket === this._socket) this._handleFrame(event.data);
    });
    // An "error" event is always followed by "close": handle it there.
    socket.addEventListener("close", (event) => {
      if (socket === this._socket) this._handleClose(event.code);
    });
  }

  _handleOpen() {
    this._freshInits = 0;
    this._startSession(true);
    this._timers.ping = window.setInterval(() => this._ping(), PING_INTERVAL_MS);
  }

  _ping() {
    if (!this._send({ type: "ping" })) return;
    if (this._timers.pong) return;
    const socket = this._socket;
    this._timers.pong = window.setTimeout(() => {
      this._timers.pong = 0;
      if (socket !== this._socket) return;
      // Half-open connection: don't wait for the browser to notice.
      this._detachSocket();
      socket.close(4000, "ping timeout");
      this._scheduleReconnect();
    }, PONG_TIMEOUT_MS);
  }

  _handleClose(code) {
    this._detachSocket();
    if (NO_RECONNECT_CODES.has(code)) {
      this._refused = true;
      this._setState("offline");
      if (!this._ui.log.querySelector(".notice[data-code]")) this._notice(this._strings.refused);
      this._markOutbox("failed");
      return;
    }
    this._scheduleReconnect();
  }

  /** Forget the current socket (already closed or about to be) and what depended on it. */
  _detachSocket() {
    this._socket = null;
    this._ready = false;
    this._awaitingSession = false;
    this._clearTimer("ping");
    this._clearTimer("pong");
    this._showTyping(false);
    // Answers cut off mid-stream: the server stores what was said; the next
    // `session` history brings the stored version.
    for (const id of this._streaming) this._messages.get(id)?.el.classList.remove("msg--streaming");
    this._streaming.clear();
    this._updateBusy();
  }

  _scheduleReconnect() {
    this._markOutbox("queued");
    if (navigator.onLine === false) {
      this._setState("offline");
      return;
    }
    this._setState("reconnecting");
    const delay = backoffDelay(this._attempt);
    this._attempt += 1;
    this._clearTimer("reconnect");
    this._timers.reconnect = window.setTimeout(() => {
      this._timers.reconnect = 0;
      this._connect();
    }, delay);
  }

  _handleOnline() {
    if (!this._started || this._socket || this._refused) return;
    this._attempt = 0;
    this._connect();
  }

  _handleOffline() {
    const socket = this._socket;
    if (!socket) {
      this._clearTimer("reconnect");
      if (this._started) this._setState("offline");
      return;
    }
    this._detachSocket();
    socket.close(1000);
    this._markOutbox("queued");
    this._setState("offline");
  }

  _send(frame) {
    const socket = this._socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  _setState(state) {
    this._state = state;
    if (!this._ui) return;
    this._ui.panel.dataset.connection = state;
    this._ui.status.textContent = state === "idle" ? "" : this._strings[state] || "";
  }

  // ---------------------------------------------------------------- session

  _loadSession() {
    const raw = storageGet("localStorage", this._sessionKey);
    if (!raw) return null;
    try {
      const data = JSON.parse(raw);
      if (data && typeof data.session_id === "string" && typeof data.resume_token === "string") {
        return data;
      }
    } catch {
      // Corrupt entry: start afresh.
    }
    storageSet("localStorage", this._sessionKey, null);
    return null;
  }

  _saveSession(sessionId, resumeToken) {
    storageSet(
      "localStorage",
      this._sessionKey,
      JSON.stringify({ session_id: sessionId, resume_token: resumeToken || "" }),
    );
  }

  _forgetSession() {
    storageSet("localStorage", this._sessionKey, null);
  }

  /** Send `session_init`, resuming the stored session when resume is true and there is one. */
  _startSession(resume) {
    const frame = {
      type: "session_init",
      context: {
        page_url: window.location.href.slice(0, MAX_PAGE_URL),
        page_title: document.title.slice(0, MAX_PAGE_TITLE),
        locale: this._config.locale,
      },
    };
    const stored = resume ? this._loadSession() : null;
    if (stored) {
      frame.session_id = stored.session_id;
      if (stored.resume_token) frame.resume_token = stored.resume_token;
    } else {
      this._freshInits += 1;
    }
    this._resuming = Boolean(stored);
    this._awaitingSession = this._send(frame);
  }

  /** Start a session when connected without one (after `session_closed`). */
  _ensureSession() {
    if (
      this._socket &&
      this._socket.readyState === WebSocket.OPEN &&
      !this._ready &&
      !this._awaitingSession
    ) {
      this._startSession(true);
    }
  }

  _onSession(frame) {
    if (typeof frame.session_id !== "string" || !frame.session_id) return;
    this._saveSession(
      frame.session_id,
      typeof frame.resume_token === "string" ? frame.resume_token : "",
    );
    this._awaitingSession = false;
    this._resuming = false;
    this._ready = true;
    this._attempt = 0;
    this._setState("online");
    if (Array.isArray(frame.history)) {
      this._stickToEnd(() => {
        for (const message of frame.history) this._upsertMessage(message, { fromHistory: true });
      });
    }
    this._flushOutbox();
  }

  /** The stored session cannot be resumed, or the current one ended: start a new one. */
  _restartSession(notice) {
    this._forgetSession();
    this._ready = false;
    // A server that refuses every new session must not get a loop of session_init.
    if (this._freshInits >= 3) return;
    if (notice && this._ui.log.querySelector(".msg:not(.msg--greeting)")) this._notice(notice);
    // Whatever was sent to the old session was not stored: send it again.
    this._markOutbox("pending");
    this._startSession(false);
  }

  // --------------------------------------------------------------- messages

  _submit() {
    const input = this._ui.input;
    const content = input.value.trim();
    if (!content || this._rateLimitedUntil > Date.now()) return;
    const clientId = newClientMessageId();
    let record;
    this._stickToEnd(() => {
      record = this._renderMessage({ role: "user", content });
    }, true);
    record.el.dataset.clientMessageId = clientId;
    this._pending.set(clientId, { content, record, acked: false, sentOn: null });
    this._outbox.push(clientId);
    input.value = "";
    this._connect();
    if (this._ready) this._flushOutbox();
    else if (this._refused) this._fail(clientId, false);
    else {
      this._setMessageState(record, this._socket ? "pending" : "queued");
      this._ensureSession();
    }
  }

  /** Send every unacknowledged message not yet sent on this connection, oldest first. */
  _flushOutbox() {
    if (!this._ready) return;
    for (const clientId of this._outbox) {
      const entry = this._pending.get(clientId);
      if (!entry || entry.acked || entry.sentOn === this._socket) continue;
      if (!this._send({ type: "message", content: entry.content, client_message_id: clientId }))
        return;
      entry.sentOn = this._socket;
      this._setMessageState(entry.record, "pending");
    }
  }

  _markOutbox(state) {
    for (const clientId of this._outbox) {
      const entry = this._pending.get(clientId);
      if (entry && !entry.acked) {
        entry.sentOn = null;
        this._setMessageState(entry.record, state);
      }
    }
  }

  _acknowledge(clientId, message) {
    const entry = this._pending.get(clientId);
    if (!entry) return;
    this._outbox = this._outbox.filter((id) => id !== clientId);
    if (entry.acked) return;
    entry.acked = true;
    this._setMessageState(entry.record, "sent");
    if (message && typeof message.id === "string" && message.id) {
      entry.record.el.dataset.id = message.id;
      this._messages.set(message.id, entry.record);
    }
  }

  _fail(clientId, retryable) {
    const entry = this._pending.get(clientId);
    if (!entry || entry.acked) return;
    this._outbox = this._outbox.filter((id) => id !== clientId);
    entry.sentOn = null;
    this._setMessageState(entry.record, "failed", retryable ? clientId : null);
  }

  _retry(clientId) {
    const entry = this._pending.get(clientId);
    if (!entry || entry.acked || this._rateLimitedUntil > Date.now()) return;
    if (!this._outbox.includes(clientId)) this._outbox.push(clientId);
    this._setMessageState(entry.record, this._socket ? "pending" : "queued");
    this._connect();
    if (this._ready) this._flushOutbox();
    else this._ensureSession();
  }

  _setMessageState(record, state, retryId = null) {
    record.el.dataset.state = state;
    record.meta.replaceChildren();
    const label = {
      pending: this._strings.pending,
      queued: this._strings.queued,
      failed: this._strings.failed,
    }[state];
    if (label) record.meta.append(label);
    if (retryId) {
      const button = h("button", { type: "button", class: "msg__retry" }, this._strings.retry);
      button.addEventListener("click", () => this._retry(retryId));
      record.meta.append(" ", button);
    }
  }

  _speaker(role) {
    if (role === "user") return this._strings.you;
    if (role === "agent") return this._strings.agent;
    return this._config.name;
  }

  /** Create a message element at the end of the log (or before `before`). */
  _renderMessage({ role, content, id = null, metadata = null }, before = null) {
    const safeRole = ROLES.has(role) ? role : "system";
    const text = h("p", { class: "msg__text" }, typeof content === "string" ? content : "");
    const meta = h("div", { class: "msg__meta" });
    const speaker = h("span", { class: "sr-only" }, `${this._speaker(safeRole)}: `);
    const bubble = h("div", { class: "msg__bubble" }, speaker, text);
    const el = h(
      "div",
      { class: `msg msg--${safeRole}`, part: `message message-${safeRole}`, "data-role": safeRole },
      bubble,
      meta,
    );
    const record = { el, bubble, text, meta, sources: null };
    if (id) {
      el.dataset.id = id;
      this._messages.set(id, record);
    }
    if (metadata) this._renderSources(record, metadata);
    if (before) this._ui.log.insertBefore(el, before);
    else this._ui.log.append(el);
    return record;
  }

  /** Add a complete message, or update the one with the same id (history, other tabs, replays). */
  _upsertMessage(message, { fromHistory = false } = {}) {
    if (!message || typeof message !== "object") return;
    const id = typeof message.id === "string" && message.id ? message.id : null;
    const clientId =
      typeof message.client_message_id === "string" ? message.client_message_id : null;
    if (message.role === "user" && clientId && this._pending.has(clientId)) {
      this._acknowledge(clientId, message);
      return;
    }
    const existing = id ? this._messages.get(id) : null;
    if (existing) {
      if (typeof message.content === "string") existing.text.textContent = message.content;
      existing.el.classList.remove("msg--streaming");
      if (message.metadata) this._renderSources(existing, message.metadata);
      return;
    }
    // Stored messages go before what this tab has not had acknowledged yet.
    const before = fromHistory ? this._firstUnacknowledged() : null;
    this._renderMessage(
      { role: message.role, content: message.content, id, metadata: message.metadata },
      before,
    );
  }

  _firstUnacknowledged() {
    for (const clientId of this._outbox) {
      const entry = this._pending.get(clientId);
      if (entry && !entry.acked && entry.record.el.isConnected) return entry.record.el;
    }
    return null;
  }

  _renderSources(record, metadata) {
    const sources = Array.isArray(metadata && metadata.sources) ? metadata.sources : [];
    const items = [];
    for (const source of sources) {
      if (!source || typeof source !== "object") continue;
      const href = safeUrl(source.url);
      const title = typeof source.title === "string" && source.title.trim() ? source.title : href;
      if (!title) continue;
      let content = title;
      if (href) {
        const sameSite = new URL(href).origin === window.location.origin;
        content = h(
          "a",
          sameSite ? { href } : { href, target: "_blank", rel: "noopener noreferrer" },
          title,
        );
      }
      items.push(h("li", {}, content));
    }
    if (record.sources) record.sources.remove();
    record.sources = null;
    if (!items.length) return;
    record.sources = h(
      "div",
      { class: "msg__sources" },
      h("p", { class: "msg__sources-title" }, this._strings.sources),
      h("ul", {}, ...items),
    );
    record.bubble.append(record.sources);
  }

  // -------------------------------------------------------------- streaming

  _streamRecord(messageId) {
    let record = this._messages.get(messageId);
    if (!record) {
      this._stickToEnd(() => {
        record = this._renderMessage({ role: "assistant", content: "", id: messageId });
      });
    }
    return record;
  }

  _onStreamStart(frame) {
    if (typeof frame.message_id !== "string" || !frame.message_id) return;
    // The server answers only stored messages: this one was received.
    if (typeof frame.reply_to === "string" && this._pending.has(frame.reply_to)) {
      this._acknowledge(frame.reply_to, null);
    }
    if (this._messages.has(frame.message_id) && !this._streaming.has(frame.message_id)) return;
    this._showTyping(false);
    const record = this._streamRecord(frame.message_id);
    record.el.classList.add("msg--streaming");
    this._streaming.add(frame.message_id);
    this._updateBusy();
  }

  _onStreamDelta(frame) {
    if (typeof frame.message_id !== "string" || typeof frame.delta !== "string") return;
    if (!this._streaming.has(frame.message_id)) {
      // Joined mid-answer (another tab started it): show it from here on.
      if (this._messages.has(frame.message_id)) return;
      this._onStreamStart({ message_id: frame.message_id });
    }
    const record = this._messages.get(frame.message_id);
    this._stickToEnd(() => record.text.append(frame.delta));
  }

  _onStreamEnd(frame) {
    const message = frame.message;
    if (!message || typeof message !== "object" || typeof message.id !== "string") return;
    this._streaming.delete(message.id);
    this._stickToEnd(() => this._upsertMessage(message));
    this._updateBusy();
  }

  _updateBusy() {
    if (this._ui) this._ui.log.setAttribute("aria-busy", this._streaming.size ? "true" : "false");
  }

  _showTyping(isTyping, role = "assistant") {
    if (!this._ui) return;
    this._clearTimer("typing");
    this._ui.typing.hidden = !isTyping;
    if (!isTyping) return;
    this._ui.typing.firstChild.textContent =
      role === "agent" ? this._strings.agent_typing : this._strings.typing;
    // A lost "stopped typing" frame must not leave the indicator on forever.
    this._timers.typing = window.setTimeout(() => this._showTyping(false), TYPING_TIMEOUT_MS);
  }

  // ----------------------------------------------------------------- frames

  _handleFrame(raw) {
    this._clearTimer("pong"); // any frame proves the connection is alive
    if (typeof raw !== "string") return;
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "welcome":
        this._onWelcome(frame);
        break;
      case "session":
        this._onSession(frame);
        break;
      case "message":
        this._stickToEnd(() => this._upsertMessage(frame.message));
        break;
      case "stream_start":
        this._onStreamStart(frame);
        break;
      case "stream_delta":
        this._onStreamDelta(frame);
        break;
      case "stream_end":
        this._onStreamEnd(frame);
        break;
      case "typing":
        if (frame.role !== "user") this._showTyping(frame.is_typing === true, frame.role);
        break;
      case "error":
        this._onError(frame);
        break;
      case "session_closed":
        this._onSessionClosed(frame);
        break;
      default:
        // pong, ack and types added by later protocol versions.
        break;
    }
  }

  _onWelcome(frame) {
    if (frame.protocol !== undefined && frame.protocol !== PROTOCOL_VERSION) {
      console.warn(
        `sophie-chat: server speaks protocol ${frame.protocol}, widget ${PROTOCOL_VERSION}`,
      );
    }
    const limit = Number(frame.limits && frame.limits.max_message_length);
    if (Number.isInteger(limit) && limit > 0) this._ui.input.maxLength = limit;
    if (!this._config.keepGreeting && typeof frame.greeting === "string" && frame.greeting) {
      this._ui.greeting.textContent = frame.greeting;
    }
  }

  _onSessionClosed(frame) {
    const stored = this._loadSession();
    if (stored && frame.session_id && stored.session_id !== frame.session_id) return;
    this._forgetSession();
    this._ready = false;
    this._notice(this._strings.ended);
  }

  _onError(frame) {
    const code = typeof frame.code === "string" ? frame.code : "internal_error";
    const text =
      typeof frame.message === "string" && frame.message ? frame.message : this._strings.error;
    if (RESUME_ERRORS.has(code)) {
      // A stored session that can't be resumed, or the session ended
      // meanwhile: start a new one and re-send what was not acknowledged.
      const failedResume = this._awaitingSession && this._resuming;
      this._awaitingSession = false;
      this._restartSession(failedResume ? this._strings.new_session : text);
      return;
    }
    const replyTo = typeof frame.reply_to === "string" ? frame.reply_to : null;
    const entry = replyTo ? this._pending.get(replyTo) : null;
    if (entry && !entry.acked) this._fail(replyTo, !FINAL_MESSAGE_ERRORS.has(code));
    if (code === "rate_limited") {
      this._startCountdown(text, Number(frame.retry_after));
      return;
    }
    this._notice(text, code);
  }

  // ---------------------------------------------------------------- notices

  _notice(text, code = "") {
    let notice;
    this._stickToEnd(() => {
      if (code) {
        for (const old of this._ui.log.querySelectorAll(".notice")) {
          if (old.dataset.code === code) old.remove();
        }
      }
      notice = h("div", { class: `notice${code ? " notice--error" : ""}` }, h("p", {}, text));
      if (code) notice.dataset.code = code;
      this._ui.log.append(notice);
    });
    return notice;
  }

  _startCountdown(text, retryAfter) {
    const seconds = Number.isFinite(retryAfter) && retryAfter > 0 ? Math.ceil(retryAfter) : 1;
    this._rateLimitedUntil = Date.now() + seconds * 1000;
    const notice = this._notice(text, "rate_limited");
    // The countdown is visual only: a screen reader would read every tick.
    const countdown = h("p", { class: "notice__countdown", "aria-hidden": "true" });
    notice.append(countdown);
    this._ui.send.disabled = true;
    const tick = () => {
      const left = Math.ceil((this._rateLimitedUntil - Date.now()) / 1000);
      if (left <= 0) {
        this._clearTimer("countdown");
        this._rateLimitedUntil = 0;
        this._ui.send.disabled = false;
        countdown.remove();
        return;
      }
      countdown.textContent = format(this._strings.retry_in, { seconds: left });
    };
    this._clearTimer("countdown");
    tick();
    this._timers.countdown = window.setInterval(tick, 1000);
  }

  // -------------------------------------------------------------- utilities

  _isNearEnd() {
    const log = this._ui.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < STICKY_SCROLL_PX;
  }

  /** Run change(), then keep the log scrolled to the end if the reader was there (or force). */
  _stickToEnd(change, force = false) {
    const near = force || this._isNearEnd();
    change();
    if (near) this._scrollToEnd(true);
  }

  _scrollToEnd() {
    const log = this._ui.log;
    log.scrollTop = log.scrollHeight;
  }

  _clearTimer(name) {
    const id = this._timers[name];
    if (!id) return;
    window.clearTimeout(id);
    window.clearInterval(id);
    this._timers[name] = 0;
  }
}

if (!customElements.get("sophie-chat")) {
  customElements.define("sophie-chat", SophieChatElement);
}
