/*! chatdesk chat widget. Embed it with
 *   <script src="https://CHATDESK_HOST/widget.js" data-site-key="cd_live_…" async></script>
 * and optionally data-api="https://CHATDESK_HOST" (default: where this script came from).
 * Commands: chatdesk('identify', {externalId, traits, userHash}), chatdesk('on', 'ready' | 'content', cb),
 * chatdesk('open'), chatdesk('close'). Calls made before the script loads are queued in chatdesk.q.
 * Hand-written, no dependencies, no build step. It adds no global but window.chatdesk, never
 * throws into the page, and adds nothing to the page while the chat may not open. */
(() => {
  "use strict";
  const w = window;
  const doc = document;
  const previous = w.chatdesk;
  if (previous && previous.loaded) return; // embedded twice: the first copy serves

  const REFRESH_MS = 60000;
  const TIMEOUT_MS = 15000;
  const ASK_TIMEOUT_MS = 120000;
  const QUESTION_MAX = 2000;
  const KEY_PREFIX = "chatdesk:";
  const GATE_CODES = ["SITE_NOT_MAPPED", "FEATURE_LOCKED", "WIDGET_DISABLED", "WIDGET_NOT_PUBLISHED", "WIDGET_PAUSED"];
  const FIELD_LABELS = { content: "Your question", email: "Email", subject: "Subject", body: "Message" };
  const WENT_WRONG = "Something went wrong. Please try again.";

  const noop = () => {};
  // Every entry point from the page or the browser goes through guard: a
  // failure inside the widget is never the page's uncaught error.
  const guard = (fn) => function guarded(...args) {
    try {
      const result = fn.apply(this, args);
      if (result && typeof result.catch === "function") result.catch(noop);
      return result;
    } catch (error) {
      return undefined;
    }
  };
  const later = (fn) => setTimeout(guard(fn), 0);
  const fetchFn = typeof w.fetch === "function" ? w.fetch : null;

  // ---- the embedding script tag --------------------------------------------------------------
  const tag = doc.currentScript || doc.querySelector("script[data-site-key]");
  const siteKey = tag ? (tag.getAttribute("data-site-key") || "").trim() : "";
  let api = "";
  try {
    const base = tag && tag.getAttribute("data-api");
    api = (base ? new URL(base, doc.baseURI).href : new URL(tag.src, doc.baseURI).origin).replace(/\/+$/, "");
  } catch (error) {
    api = "";
  }

  // ---- storage, with a fallback in memory when the browser refuses it --------------------------
  const memory = new Map();
  function store(kind) {
    try {
      return w[kind] || null;
    } catch (error) {
      return null;
    }
  }
  function load(kind, key) {
    try {
      const s = store(kind);
      const value = s ? s.getItem(KEY_PREFIX + key) : null;
      if (value !== null) return value;
    } catch (error) {
      // fall through to memory
    }
    return memory.has(kind + key) ? memory.get(kind + key) : null;
  }
  function save(kind, key, value) {
    if (value === null) memory.delete(kind + key);
    else memory.set(kind + key, value);
    try {
      const s = store(kind);
      if (!s) return;
      if (value === null) s.removeItem(KEY_PREFIX + key);
      else s.setItem(KEY_PREFIX + key, value);
    } catch (error) {
      // kept in memory only
    }
  }
  function randomId() {
    const c = w.crypto;
    try {
      if (c && typeof c.randomUUID === "function") return c.randomUUID();
    } catch (error) {
      // not a secure context: build one below
    }
    const bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (let i = 0; i < 16; i += 1) bytes[i] = Math.floor(Math.random() * 256);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function anonymousId(fresh) {
    let id = fresh ? null : load("localStorage", "anonymousId");
    if (!id) {
      id = randomId();
      save("localStorage", "anonymousId", id);
    }
    return id;
  }

  // ---- state ----------------------------------------------------------------------------------
  const handlers = { ready: [], content: [] };
  let readyDetail = null;
  let identity = null; // {externalId, traits, userHash}
  let widget = null; // the config's widget while the chat may open
  let ui = null;
  let wantOpen = false;
  let session = null; // {id, token, who}
  let opening = null;
  let busy = false;
  let restored = false;
  let ticketSession = null; // the session of the latest down vote
  const downVoted = new Set();
  const sessionKey = "session:" + siteKey;
  const who = () => (identity && identity.externalId) || "";

  function emit(event, detail) {
    for (const cb of handlers[event] || []) {
      try {
        cb(detail);
      } catch (error) {
        // the page's own handler failed; the widget goes on
      }
    }
  }

  // ---- the API --------------------------------------------------------------------------------
  async function call(method, path, options = {}) {
    if (!fetchFn || !api) return { status: 0, ok: false, data: null, headers: null };
    const headers = { "X-Chatdesk-Site-Key": siteKey };
    if (options.session) headers["X-Chatdesk-Session"] = options.session.token;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    Object.assign(headers, options.headers || {});
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), options.timeout || TIMEOUT_MS) : 0;
    try {
      const res = await fetchFn.call(w, api + path, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        credentials: "omit",
        mode: "cors",
        cache: "no-store",
        signal: controller ? controller.signal : undefined,
      });
      let data = null;
      try {
        data = await res.json();
      } catch (error) {
        data = null;
      }
      return { status: res.status, ok: res.ok, data, headers: res.headers };
    } catch (error) {
      return { status: 0, ok: false, data: null, headers: null };
    } finally {
      clearTimeout(timer);
    }
  }

  class Refused extends Error {
    constructor(reply) {
      super("refused");
      this.reply = reply;
    }
  }

  function keepSession(value) {
    session = value;
    save("sessionStorage", sessionKey, value ? JSON.stringify(value) : null);
  }
  function storedSession() {
    try {
      const value = JSON.parse(load("sessionStorage", sessionKey) || "null");
      if (value && typeof value.id === "string" && typeof value.token === "string" && value.who === who()) return value;
    } catch (error) {
      // unreadable: start a new one
    }
    return null;
  }

  async function openSession(freshVisitor) {
    const body = { anonymousId: anonymousId(freshVisitor) };
    if (identity) {
      if (identity.externalId) body.externalId = identity.externalId;
      if (identity.traits) body.traits = identity.traits;
      if (identity.userHash) body.userHash = identity.userHash;
    }
    const reply = await call("POST", "/api/v1/sdk/chat/sessions", { body });
    const data = reply.data || {};
    if (reply.ok && typeof data.sessionId === "string" && typeof data.sessionToken === "string") {
      keepSession({ id: data.sessionId, token: data.sessionToken, who: who() });
      return session;
    }
    // This browser's id belongs to someone else (signed out, or another
    // account): start over as a new visitor, once.
    if (reply.status === 409 && data.code === "IDENTITY_CONFLICT" && !freshVisitor) return openSession(true);
    throw new Refused(reply);
  }
  function ensureSession() {
    if (session) return Promise.resolve(session);
    if (!opening) opening = openSession(false).finally(() => { opening = null; });
    return opening;
  }

  // ---- the config gate ------------------------------------------------------------------------
  async function refresh(first) {
    try {
      if (!first && doc.visibilityState === "hidden") return;
      const reply = await call("GET", "/api/v1/sdk/chat/config");
      const data = reply.data;
      if (reply.ok && data && typeof data.enabled === "boolean") {
        widget = data.enabled && data.widget ? data.widget : null;
        if (widget) mount();
        else unmount();
        if (first) {
          readyDetail = widget ? { enabled: true } : { enabled: false, reason: data.reason || "WIDGET_DISABLED" };
          emit("ready", readyDetail);
        }
        return;
      }
      // A key that no longer works closes the chat; an outage keeps what is shown.
      if (reply.status === 401 || reply.status === 403) {
        widget = null;
        unmount();
      }
      if (first) {
        const code = data && typeof data.code === "string" ? data.code : reply.status ? "ERROR" : "UNREACHABLE";
        readyDetail = { enabled: false, reason: code };
        emit("ready", readyDetail);
      }
    } finally {
      setTimeout(guard(() => refresh(false)), REFRESH_MS * (0.9 + Math.random() * 0.2));
    }
  }

  // ---- building the DOM -----------------------------------------------------------------------
  function h(name, attrs, ...children) {
    const el = doc.createElement(name);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") el.textContent = value;
      else if (key === "on") for (const [event, fn] of Object.entries(value)) el.addEventListener(event, guard(fn));
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child) el.append(child);
    return el;
  }
  // Sized and painted by attributes too, so they look right even where
  // the stylesheet cannot apply.
  function icon(path, size, stroked) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = doc.createElementNS(ns, "svg");
    const attrs = { viewBox: "0 0 24 24", width: size, height: size, "aria-hidden": "true", focusable: "false" };
    for (const [k, v] of Object.entries(attrs)) svg.setAttribute(k, String(v));
    const p = doc.createElementNS(ns, "path");
    p.setAttribute("d", path);
    p.setAttribute("fill", stroked ? "none" : "currentColor");
    if (stroked) {
      p.setAttribute("stroke", "currentColor");
      p.setAttribute("stroke-width", "2.5");
      p.setAttribute("stroke-linecap", "round");
    }
    svg.append(p);
    return svg;
  }
  const ICON_CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  const ICON_CLOSE = "M6 6l12 12M18 6L6 18";
  const ICON_UP = "M7 11v9H4v-9h3zm2 9h8.5a2 2 0 0 0 2-1.6l1.3-6A2 2 0 0 0 18.8 10H14V6a2 2 0 0 0-2-2l-3 7v9z";
  const ICON_DOWN = "M17 13V4h3v9h-3zm-2-9H6.5a2 2 0 0 0-2 1.6l-1.3 6A2 2 0 0 0 5.2 14H10v4a2 2 0 0 0 2 2l3-7V4z";

  const CSS = `
:host{all:initial}
.launcher,.panel{font-family:var(--cd-font,system-ui,sans-serif);font-size:15px;line-height:1.4;text-align:left;letter-spacing:normal}
[hidden]{display:none!important}
*{box-sizing:border-box;font:inherit;color:inherit}
button{cursor:pointer;border:0;background:none;padding:0}
:focus-visible{outline:3px solid var(--cd-primary,#4f46e5);outline-offset:2px;box-shadow:0 0 0 5px #fff}
.launcher{position:fixed;z-index:2147483000;width:56px;height:56px;border-radius:50%;background:var(--cd-primary,#4f46e5);color:var(--cd-on-primary,#fff);display:flex;align-items:center;justify-content:center;box-shadow:0 6px 20px rgba(0,0,0,.25)}
.panel{position:fixed;z-index:2147483001;width:min(380px,calc(100vw - 24px));height:min(560px,calc(100vh - 110px));display:flex;flex-direction:column;background:var(--cd-bg,#fff);color:var(--cd-text,#111827);border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.3);overflow:hidden}
.bottom{bottom:20px}.top{top:20px}.right{right:20px}.left{left:20px}
.panel.bottom{bottom:88px}.panel.top{top:88px}
header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--cd-primary,#4f46e5);color:var(--cd-on-primary,#fff)}
header h2{flex:1;margin:0;font-weight:600;font-size:16px}
.close{width:32px;height:32px;border-radius:8px;display:flex;align-items:center;justify-content:center}
.intro{padding:10px 14px;border-bottom:1px solid rgba(127,127,127,.25)}
.intro p{margin:0 0 4px}
.disclaimer{font-size:12px;opacity:.75}
.log{flex:1;overflow-y:auto;padding:12px 14px;display:flex;flex-direction:column;gap:10px}
.msg{max-width:88%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}
.msg p{margin:0}
.msg[data-role=USER]{align-self:flex-end;background:var(--cd-primary,#4f46e5);color:var(--cd-on-primary,#fff)}
.msg[data-unanswered]{opacity:.6}
.msg[data-role=ASSISTANT]{align-self:flex-start;background:rgba(127,127,127,.14)}
.msg .guide{display:block;margin-top:8px;padding:6px 10px;border-radius:8px;background:var(--cd-primary,#4f46e5);color:var(--cd-on-primary,#fff);font-weight:600;text-align:left}
.votes{display:flex;gap:6px;margin-top:8px}
.votes button{display:flex;align-items:center;gap:4px;padding:3px 8px;border-radius:999px;border:1px solid rgba(127,127,127,.45);font-size:12px}
.votes button[aria-pressed=true]{background:var(--cd-primary,#4f46e5);color:var(--cd-on-primary,#fff);border-color:transparent}
.thinking{align-self:flex-start;opacity:.7;font-style:italic}
.note{align-self:center;font-size:13px;text-align:center;opacity:.9}
.offer{align-self:flex-start}
.offer button,.actions button{padding:7px 12px;border-radius:8px;border:1px solid var(--cd-primary,#4f46e5);font-weight:600}
.alert{margin:0 14px 8px;padding:8px 10px;border-radius:8px;background:#fef2f2;color:#991b1b;font-size:14px}
.composer{display:flex;gap:8px;padding:10px 14px;border-top:1px solid rgba(127,127,127,.25)}
textarea,input{width:100%;border:1px solid rgba(127,127,127,.6);border-radius:8px;padding:8px 10px;background:var(--cd-bg,#fff);color:var(--cd-text,#111827)}
.composer textarea{resize:none;height:40px}
.send,.actions .primary{padding:8px 14px;border-radius:8px;background:var(--cd-primary,#4f46e5);color:var(--cd-on-primary,#fff);font-weight:600;border:0}
button[aria-disabled=true]{opacity:.55;cursor:default}
form{display:flex;flex-direction:column;gap:8px;padding:10px 14px;border-top:1px solid rgba(127,127,127,.25)}
form h3{margin:0;font-size:15px;font-weight:600}
.field{display:flex;flex-direction:column;gap:3px}label{font-size:13px}
form textarea{min-height:80px;resize:vertical}
.actions{display:flex;gap:8px;justify-content:flex-end}
@media (prefers-reduced-motion:no-preference){.launcher{transition:transform .15s}.launcher:hover{transform:scale(1.05)}}
`;

  function readableOn(hex) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
    if (!m) return "#fff";
    const [r, g, b] = m.slice(1).map((x) => {
      const c = parseInt(x, 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 ? "#111" : "#fff";
  }

  function adoptStyles(root, host) {
    try {
      if ("adoptedStyleSheets" in root && typeof CSSStyleSheet === "function") {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
        return true;
      }
    } catch (error) {
      // an older browser: the minimal styles below
    }
    return false;
  }

  function build() {
    const host = h("div", { id: "chatdesk-widget" });
    // Nothing of the page's own styles is inherited into the widget (an
    // inline CSSOM property: allowed under any Content-Security-Policy).
    host.style.setProperty("all", "initial");
    const root = host.attachShadow({ mode: "open" });
    const styled = adoptStyles(root, host);
    const ids = "chatdesk-" + randomId().slice(0, 8);
    const launcher = h("button", {
      type: "button", class: "launcher", "aria-label": "Open chat", "aria-expanded": "false", "aria-controls": ids + "-panel",
      on: { click: () => (ui.panel.hidden ? openPanel() : closePanel(true)) },
    }, icon(ICON_CHAT, 26));
    const title = h("h2", { id: ids + "-title" });
    const close = h("button", { type: "button", class: "close", "aria-label": "Close chat", on: { click: () => closePanel(true) } }, icon(ICON_CLOSE, 20, true));
    const welcome = h("p", { class: "welcome" });
    const disclaimer = h("p", { class: "disclaimer" });
    const log = h("div", { role: "log", "aria-label": "Conversation", "aria-live": "polite", class: "log", tabindex: "-1" });
    const alert = h("div", { role: "alert", class: "alert", hidden: true });
    const input = h("textarea", {
      "aria-label": "Your question", rows: "1", maxlength: String(QUESTION_MAX), placeholder: "Ask a question…",
      on: {
        keydown: (event) => {
          if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            submitQuestion();
          }
        },
      },
    });
    const send = h("button", { type: "button", class: "send", on: { click: () => submitQuestion() } }, "Send");
    const composer = h("div", { class: "composer" }, input, send);
    const panel = h("div", {
      role: "dialog", "aria-label": "Chat", id: ids + "-panel", class: "panel", hidden: true,
      on: {
        keydown: (event) => {
          if (event.key === "Escape") {
            event.stopPropagation();
            closePanel(true);
          }
        },
      },
    }, h("header", null, title, close), h("div", { class: "intro" }, welcome, disclaimer), log, alert, composer);
    root.append(launcher, panel);
    ui = { host, root, styled, launcher, panel, title, welcome, disclaimer, log, alert, input, send, composer, offer: null, form: null };
    return ui;
  }

  function applyConfig() {
    const theme = widget.theme || {};
    const colour = (value, fallback) => (/^#[0-9a-f]{6}$/i.test(value || "") ? value : fallback);
    const style = ui.host.style;
    const primary = colour(theme.primaryColor, "#4f46e5");
    style.setProperty("--cd-primary", primary);
    style.setProperty("--cd-on-primary", readableOn(primary));
    style.setProperty("--cd-bg", colour(theme.backgroundColor, "#ffffff"));
    style.setProperty("--cd-text", colour(theme.textColor, "#111827"));
    if (typeof theme.fontFamily === "string" && theme.fontFamily) style.setProperty("--cd-font", theme.fontFamily);
    const position = String(widget.position || "BOTTOM_RIGHT").toLowerCase().split("_");
    const corner = [position[0] === "top" ? "top" : "bottom", position[1] === "left" ? "left" : "right"];
    ui.launcher.setAttribute("class", "launcher " + corner.join(" "));
    ui.panel.setAttribute("class", "panel " + corner.join(" "));
    if (!ui.styled) fallbackStyles(corner);
    ui.title.textContent = widget.siteName || "Chat";
    ui.welcome.textContent = widget.welcomeMessage || "";
    ui.disclaimer.textContent = widget.disclaimer || "";
    ui.disclaimer.hidden = !widget.disclaimer;
  }

  // Without constructable stylesheets: place the launcher and the panel
  // with CSSOM properties, which no Content-Security-Policy blocks.
  function fallbackStyles(corner) {
    const place = (el, offset, props) => {
      el.style.setProperty("position", "fixed");
      el.style.setProperty("z-index", "2147483000");
      el.style.setProperty(corner[0], offset);
      el.style.setProperty(corner[1], "20px");
      for (const [k, v] of Object.entries(props)) el.style.setProperty(k, v);
    };
    place(ui.launcher, "20px", {
      width: "56px", height: "56px", background: "var(--cd-primary)", color: "var(--cd-on-primary)", border: "0", "border-radius": "50%",
    });
    place(ui.panel, "88px", {
      background: "var(--cd-bg)", color: "var(--cd-text)", "font-family": "var(--cd-font, sans-serif)", width: "340px", "max-height": "70vh",
      overflow: "auto", padding: "8px 12px", border: "1px solid #999", "border-radius": "12px",
    });
  }

  function mount() {
    if (!doc.body) {
      doc.addEventListener("DOMContentLoaded", guard(mount), { once: true });
      return;
    }
    if (!ui) build();
    applyConfig();
    if (!ui.host.isConnected) doc.body.appendChild(ui.host);
    if (wantOpen && ui.panel.hidden) openPanel();
  }
  function unmount() {
    if (ui && ui.host.isConnected) ui.host.remove();
  }

  function openPanel() {
    wantOpen = true;
    if (!ui || !ui.host.isConnected) return;
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    const target = ui.form ? ui.form.querySelector("input, textarea") : ui.input;
    if (target) target.focus();
    if (!restored) {
      restored = true;
      restore();
    }
  }
  function closePanel(returnFocus) {
    wantOpen = false;
    if (!ui) return;
    // Focus inside the panel would be lost with it: it goes to the launcher.
    const focusInside = ui.panel.contains(ui.root.activeElement);
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    if ((returnFocus || focusInside) && ui.host.isConnected) ui.launcher.focus();
  }

  // ---- the conversation -----------------------------------------------------------------------
  function scrollDown() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }
  function showAlert(text) {
    ui.alert.textContent = text;
    ui.alert.hidden = false;
  }
  function clearAlert() {
    ui.alert.hidden = true;
    ui.alert.textContent = "";
  }
  function sentence(text) {
    const t = String(text || "").trim();
    return t && !/[.!?]$/.test(t) ? t + "." : t;
  }

  /** A refused or failed call, in words. */
  function problemText(reply) {
    const data = reply && reply.data && typeof reply.data === "object" ? reply.data : {};
    const code = data.code;
    if (reply.status === 429 || code === "RATE_LIMITED") {
      const seconds = Number(reply.headers && reply.headers.get("Retry-After"));
      const wait = seconds > 0 ? ` You can ask again in about ${Math.max(1, Math.round(seconds / 60))} minute${seconds >= 90 ? "s" : ""}.` : " Please try again later.";
      return "You have reached this chat's question limit." + wait;
    }
    if (reply.status === 403 && GATE_CODES.includes(code)) return "The chat is not available right now.";
    if (code === "IDENTITY_NOT_VERIFIED") return "Something went wrong: your sign-in could not be confirmed, so the chat cannot start.";
    if ((reply.status === 409 || reply.status === 422) && (data.detail || Array.isArray(data.errors))) {
      const fields = Array.isArray(data.errors)
        ? data.errors.map((e) => `${FIELD_LABELS[e.field] || e.field}: ${sentence(e.message)}`)
        : [];
      return fields.length ? fields.join(" ") : sentence(data.detail);
    }
    return WENT_WRONG;
  }

  function addUser(text) {
    const bubble = h("div", { class: "msg", "data-role": "USER" }, h("p", { text }));
    ui.log.append(bubble);
    return bubble;
  }

  function addReply(message, owner) {
    const assistant = message.role === "ASSISTANT";
    const bubble = h("div", { class: "msg", "data-role": "ASSISTANT", "data-status": message.status || "" }, h("p", { text: message.content || "" }));
    const ref = message.contentRef;
    if (ref && (message.status === "MATCHED_CONTENT" || message.status === "GENERATED_CONTENT")) {
      const detail = { kind: ref.kind, id: ref.id, name: ref.name };
      bubble.append(h("button", { type: "button", class: "guide", on: { click: () => emit("content", detail) } }, "Open guide: " + ref.name));
    }
    if (assistant && message.id) bubble.append(votes(message, owner));
    ui.log.append(bubble);
    return bubble;
  }

  function votes(message, owner) {
    const make = (vote, label, path) => h("button", {
      type: "button", "aria-pressed": message.feedback === vote ? "true" : "false", "data-vote": vote,
      on: { click: () => castVote(message.id, vote, owner, group) },
    }, icon(path, 14), h("span", { text: label }));
    const group = h("div", { class: "votes", role: "group", "aria-label": "Rate this answer" },
      make("UP", "Helpful", ICON_UP), make("DOWN", "Not helpful", ICON_DOWN));
    return group;
  }

  // A button whose request is in flight is aria-disabled and ignores
  // clicks; disabling it would drop the keyboard focus.
  function pending(el, value) {
    el.setAttribute("aria-disabled", value ? "true" : "false");
  }
  const isPending = (el) => el.getAttribute("aria-disabled") === "true";

  async function castVote(id, vote, owner, group) {
    const buttons = Array.from(group.querySelectorAll("button"));
    if (buttons.some(isPending)) return;
    buttons.forEach((b) => pending(b, true));
    try {
      const reply = await call("PUT", `/api/v1/sdk/chat/messages/${encodeURIComponent(id)}/feedback`, { body: { vote }, session: owner });
      if (!reply.ok || !reply.data) {
        showAlert(reply.status === 404 ? "This conversation has ended, so the answer can no longer be rated." : problemText(reply));
        return;
      }
      clearAlert();
      const now = reply.data.vote || vote;
      buttons.forEach((b) => b.setAttribute("aria-pressed", b.getAttribute("data-vote") === now ? "true" : "false"));
      if (now === "DOWN") {
        downVoted.add(id);
        ticketSession = owner;
        const followUp = Array.isArray(reply.data.followUp) ? reply.data.followUp : [];
        if (followUp.includes("OPEN_TICKET")) offerTicket();
      } else {
        downVoted.delete(id);
        if (!downVoted.size) withdrawOffer();
      }
    } finally {
      buttons.forEach((b) => pending(b, false));
    }
  }

  function setBusy(value) {
    busy = value;
    pending(ui.send, value);
    ui.log.setAttribute("aria-busy", value ? "true" : "false");
  }

  function submitQuestion() {
    const text = ui.input.value.trim();
    if (!text || busy) return;
    ui.input.value = "";
    ask(text);
  }

  async function ask(text) {
    clearAlert();
    const bubble = addUser(text);
    const thinking = h("p", { class: "thinking", text: "Thinking…" });
    ui.log.append(thinking);
    scrollDown();
    setBusy(true);
    let reply = null;
    let owner = null;
    try {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        owner = await ensureSession();
        reply = await call("POST", `/api/v1/sdk/chat/sessions/${encodeURIComponent(owner.id)}/messages`, {
          body: { content: text }, session: owner, timeout: ASK_TIMEOUT_MS,
        });
        // The session ended (idle, or too old): open a new one and ask again.
        if (reply.status === 404 && attempt === 0) {
          keepSession(null);
          continue;
        }
        break;
      }
    } catch (error) {
      reply = error instanceof Refused ? error.reply : { status: 0, data: null };
    } finally {
      thinking.remove();
      setBusy(false);
    }
    if (reply && reply.ok && reply.data && reply.data.assistantMessage) {
      const answer = reply.data.assistantMessage;
      if (answer.status === "INSUFFICIENT_CREDITS") showAlert(answer.content || WENT_WRONG);
      else {
        addReply(answer, owner);
        if (answer.status === "FAILED") showAlert(WENT_WRONG);
      }
    } else {
      // Not asked: the bubble fades and the words go back in the box.
      bubble.setAttribute("data-unanswered", "true");
      showAlert(problemText(reply || {}));
      if (reply && reply.status === 403 && GATE_CODES.includes(reply.data && reply.data.code)) later(() => refresh(false));
      if (!ui.input.value) ui.input.value = text;
    }
    scrollDown();
  }

  /** The conversation of a session kept from an earlier page of this visit. */
  async function restore() {
    const kept = session ? null : storedSession();
    if (!kept) return;
    session = kept;
    let cursor = null;
    const items = [];
    for (let page = 0; page < 5; page += 1) {
      const query = "?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
      const reply = await call("GET", `/api/v1/sdk/chat/sessions/${encodeURIComponent(kept.id)}/messages${query}`, { session: kept });
      if (!reply.ok || !reply.data || !Array.isArray(reply.data.items)) {
        if (reply.status === 404 || reply.status === 401) keepSession(null);
        return;
      }
      items.push(...reply.data.items);
      cursor = reply.data.nextCursor;
      if (!cursor) break;
    }
    const first = ui.log.firstChild;
    for (const message of items) {
      const bubble = message.role === "USER" ? addUser(message.content || "") : addReply(message, kept);
      if (first) ui.log.insertBefore(bubble, first);
    }
    scrollDown();
  }

  // ---- support tickets ------------------------------------------------------------------------
  function offerTicket() {
    if (ui.form) return;
    if (!ui.offer) {
      ui.offer = h("div", { class: "offer" },
        h("button", { type: "button", on: { click: () => openTicketForm() } }, "Open a support ticket"));
    }
    ui.log.append(ui.offer);
    scrollDown();
  }
  function withdrawOffer() {
    if (ui.offer) ui.offer.remove();
  }

  function field(label, control) {
    const id = "chatdesk-field-" + randomId().slice(0, 8);
    control.id = id;
    control.setAttribute("aria-label", label);
    return h("div", { class: "field" }, h("label", { for: id, text: label }), control);
  }

  function openTicketForm() {
    if (ui.form) return;
    withdrawOffer();
    clearAlert();
    const traits = identity && identity.traits;
    const email = h("input", {
      type: "email", name: "email", autocomplete: "email", maxlength: "254",
      value: traits && typeof traits.email === "string" ? traits.email : null,
    });
    const subject = h("input", { type: "text", name: "subject", maxlength: "200", required: true });
    const message = h("textarea", { name: "body", maxlength: "5000", required: true });
    const submit = h("button", { type: "submit", class: "primary" }, "Send ticket");
    const cancel = h("button", { type: "button", on: { click: () => closeTicketForm(true) } }, "Cancel");
    const keys = new Map(); // body → Idempotency-Key, so a retry of the same ticket never makes two
    const form = h("form", {
      "aria-label": "Support ticket", novalidate: true,
      on: {
        submit: (event) => {
          event.preventDefault();
          sendTicket({ email, subject, message, submit, keys });
        },
      },
    }, h("h3", { text: "Open a support ticket" }), field("Email", email), field("Subject", subject), field("Message", message),
    h("div", { class: "actions" }, cancel, submit));
    ui.form = form;
    ui.composer.hidden = true;
    ui.panel.insertBefore(form, ui.composer);
    (email.value ? subject : email).focus();
  }

  function closeTicketForm(offerAgain) {
    if (!ui.form) return;
    ui.form.remove();
    ui.form = null;
    ui.composer.hidden = false;
    if (offerAgain && downVoted.size) {
      offerTicket();
      ui.offer.querySelector("button").focus();
    } else ui.input.focus();
  }

  async function sendTicket(f) {
    if (isPending(f.submit)) return;
    const body = { subject: f.subject.value.trim(), body: f.message.value.trim() };
    const address = f.email.value.trim();
    if (address) body.email = address;
    const text = JSON.stringify(body);
    if (!f.keys.has(text)) f.keys.set(text, randomId());
    pending(f.submit, true);
    clearAlert();
    let reply;
    try {
      const owner = ticketSession || (await ensureSession());
      reply = await call("POST", `/api/v1/sdk/chat/sessions/${encodeURIComponent(owner.id)}/tickets`, {
        body, session: owner, headers: { "Idempotency-Key": f.keys.get(text) },
      });
    } catch (error) {
      reply = error instanceof Refused ? error.reply : { status: 0, data: null };
    } finally {
      pending(f.submit, false);
    }
    if (reply && reply.ok && reply.data) {
      downVoted.clear();
      closeTicketForm(false);
      const to = reply.data.email ? ` The team will reply to ${reply.data.email}.` : "";
      ui.log.append(h("p", { class: "note", role: "status", text: "Ticket sent." + to }));
      scrollDown();
      return;
    }
    showAlert(reply && reply.status === 404 ? "This conversation has ended, so no ticket can be opened from it." : problemText(reply || {}));
  }

  // ---- commands -------------------------------------------------------------------------------
  function identify(value) {
    if (!value || typeof value !== "object") return;
    const next = {};
    if (typeof value.externalId === "string" && value.externalId) next.externalId = value.externalId;
    if (value.traits && typeof value.traits === "object" && !Array.isArray(value.traits)) next.traits = value.traits;
    if (typeof value.userHash === "string" && value.userHash) next.userHash = value.userHash;
    identity = next;
    // A session opened for someone else is not this visitor's: the next
    // question opens theirs.
    if (session && session.who !== who()) keepSession(null);
    if (ui && ui.form) {
      const email = ui.form.querySelector("input[type=email]");
      if (email && !email.value && next.traits && typeof next.traits.email === "string") email.value = next.traits.email;
    }
  }

  function command(name, ...args) {
    switch (name) {
      case "identify":
        identify(args[0]);
        break;
      case "on": {
        const [event, cb] = args;
        if (!Object.prototype.hasOwnProperty.call(handlers, event) || typeof cb !== "function") break;
        handlers[event].push(cb);
        if (event === "ready" && readyDetail) {
          const detail = readyDetail;
          later(() => cb(detail));
        }
        break;
      }
      case "open":
        if (ui && widget) openPanel();
        else wantOpen = true;
        break;
      case "close":
        closePanel(false);
        break;
      default:
        break;
    }
  }

  const chatdesk = function chatdesk(...args) {
    try {
      command(...args);
    } catch (error) {
      // a malformed call does nothing
    }
  };
  Object.defineProperty(chatdesk, "loaded", { value: true });
  const queued = previous && previous.q && typeof previous.q.length === "number" ? Array.from(previous.q) : [];
  w.chatdesk = chatdesk;
  for (const args of queued) chatdesk(...Array.from(args));

  if (!siteKey || !api) {
    readyDetail = { enabled: false, reason: "MISSING_SITE_KEY" };
    later(() => emit("ready", readyDetail));
    return;
  }
  later(() => refresh(true));
})();
