/* The Slack playground page: renders the server's snapshots of a pretend
 * #approvals channel and sends what the person does back to the server.
 *
 * Safety rule for this whole file: server text reaches the DOM only through
 * textContent / text nodes, never innerHTML. Tool inputs come from an AI agent
 * and may carry <script>, <img onerror>, mentions or mrkdwn.
 */
"use strict";

const EMOJI = {
  white_check_mark: "✅", x: "❌", warning: "⚠️", hourglass_flowing_sand: "⏳", no_entry: "⛔",
  pencil2: "✏️", speech_balloon: "💬", moneybag: "💰", rotating_light: "🚨", bell: "🔔", lock: "🔒",
  question: "❓",
};
const STORAGE_KEY = "approvals-playground.user";
// The per-start secret the server put in the page; the page's API refuses requests without it.
const TOKEN = document.querySelector('meta[name="playground-token"]')?.content ?? "";
const TOKEN_HEADER = "X-Playground-Token";
const TOAST_MS = 6000;
const RETRY_MS = 2000;
const AGENT_KINDS = {
  ask: "asked", allow: "allowed", deny: "denied", answers: "answered", info: "info", error: "error",
};
const AGENT_MODES = { scripted: "scripted model", claude: "Claude" };

const app = {
  me: initialUser(),
  // This page, for the server: a modal opens on the page that was clicked, as in Slack. A reload or a
  // switch of person is a new client, so a modal nobody closed is never brought back.
  client: newClient(),
  snap: null,
  source: null,
  threadTs: null,
  viewKey: null, // "id:hash" of the modal on screen; a new one is drawn only when it changes
  modalFields: [], // {blockId, actionId, read} for every input block of the open modal
  pendingClicks: new Set(), // buttons waiting for the server, kept disabled across re-renders
  peopleKey: "",
  nextId: 0,
};

/* ---------- DOM helpers ---------- */

/** Creates an element. Props are set as attributes (or listeners for "on…"); children may be strings. */
function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...[children].flat().filter((child) => child !== null && child !== undefined));
  return node;
}

const $ = (selector) => document.querySelector(selector);

/** A random client id (crypto.randomUUID needs a secure context, which a LAN address is not). */
function newClient() {
  return [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function uniqueId(prefix) {
  app.nextId += 1;
  return `${prefix}-${app.nextId}`;
}

function isSafeUrl(url) {
  return /^(https?:\/\/|mailto:)/i.test(url);
}

function isAtBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

/** Replaces a scrolling list's content, staying pinned to the bottom if it was there. */
function replaceKeepingScroll(list, nodes) {
  const pinned = isAtBottom(list);
  const top = list.scrollTop;
  list.replaceChildren(...nodes);
  list.scrollTop = pinned ? list.scrollHeight : top;
}

/* ---------- mrkdwn ---------- */

// Slack's word-boundary rule: a marker counts only when no letter or digit touches it outside.
const INLINE_FORMAT = new RegExp([
  "`([^`]+)`",
  "(?<![\\p{L}\\p{N}*])\\*(?=\\S)([^*]*?\\S)\\*(?![\\p{L}\\p{N}*])",
  "(?<![\\p{L}\\p{N}_])_(?=\\S)([^_]*?\\S)_(?![\\p{L}\\p{N}_])",
  "(?<![\\p{L}\\p{N}~])~(?=\\S)([^~]*?\\S)~(?![\\p{L}\\p{N}~])",
].join("|"), "gu");
const FORMAT_TAGS = [null, "code", "strong", "em", "s"]; // indexed by the capture group that matched
const CONTROL = /<([^<>]*)>/g;
const PLACEHOLDER = "\uE000"; // stands for one control sequence while formatting is parsed
const QUOTE_LINE = /^&gt;(?: |$)/;

function decodeEntities(text) {
  return text.replace(/&(amp|lt|gt);/g, (_, name) => ({ amp: "&", lt: "<", gt: ">" })[name]);
}

function emojify(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (code, name) => EMOJI[name] ?? code);
}

/** A mrkdwn string as a <div class="mrkdwn">. */
function renderMrkdwn(text) {
  const root = h("div", { class: "mrkdwn" });
  for (const part of splitPreformatted(text)) {
    if (part.pre) root.append(h("pre", { class: "code-block" }, renderInline(part.text, false)));
    else appendLines(root, part.text);
  }
  return root;
}

/** Splits out ```preformatted``` runs, dropping the newlines that only frame them. */
function splitPreformatted(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(/```([\s\S]*?)```/g)) {
    parts.push({ pre: false, text: text.slice(last, match.index).replace(/\n$/, "") });
    parts.push({ pre: true, text: match[1].replace(/^\n/, "").replace(/\n$/, "") });
    last = match.index + match[0].length;
  }
  parts.push({ pre: false, text: parts.length ? text.slice(last).replace(/^\n/, "") : text });
  return parts.filter((part) => part.pre || part.text);
}

/** Lines with <br> between them; consecutive "> " lines become one block quote. */
function appendLines(parent, text) {
  let quote = null;
  let afterText = false;
  for (const line of text.split("\n")) {
    const marker = QUOTE_LINE.exec(line);
    if (marker) {
      if (quote) quote.append(h("br"));
      else parent.append((quote = h("blockquote")));
      quote.append(...renderInline(line.slice(marker[0].length), true));
      afterText = false;
    } else {
      if (afterText) parent.append(h("br"));
      parent.append(...renderInline(line, true));
      quote = null;
      afterText = true;
    }
  }
}

/** One line of mrkdwn as nodes. Control sequences are swapped for placeholders first so
 *  that a "_" or "*" inside a link or mention can never start formatting. */
function renderInline(text, formatting) {
  const controls = [];
  const masked = text.replaceAll(PLACEHOLDER, "\uFFFD").replace(CONTROL, (_, inner) => {
    controls.push(inner);
    return PLACEHOLDER;
  });
  const cursor = { controls, next: 0 };
  return formatting ? formatRuns(masked, cursor) : textRun(masked, cursor, false);
}

function formatRuns(text, cursor) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(INLINE_FORMAT)) {
    nodes.push(...textRun(text.slice(last, match.index), cursor, true));
    const group = match.findIndex((value, index) => index > 0 && value !== undefined);
    const inner = match[group];
    // Code shows its content verbatim; the other styles may nest (*_bold italic_*).
    const content = group === 1 ? textRun(inner, cursor, false) : formatRuns(inner, cursor);
    nodes.push(h(FORMAT_TAGS[group], group === 1 ? { class: "inline-code" } : {}, content));
    last = match.index + match[0].length;
  }
  nodes.push(...textRun(text.slice(last), cursor, true));
  return nodes;
}

/** Plain text with its placeholders turned back into rendered control sequences. */
function textRun(text, cursor, withEmoji) {
  const nodes = [];
  text.split(PLACEHOLDER).forEach((piece, index) => {
    if (index > 0) nodes.push(renderControl(cursor.controls[cursor.next++] ?? ""));
    const decoded = decodeEntities(piece);
    if (decoded) nodes.push(withEmoji ? emojify(decoded) : decoded);
  });
  return nodes;
}

/** A <…> control sequence: mention, channel, special mention, date or link. */
function renderControl(inner) {
  const bar = inner.indexOf("|");
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? "" : decodeEntities(inner.slice(bar + 1));
  const { users = {}, usergroups = {}, channels = {} } = app.snap ?? {};
  if (target.startsWith("@")) {
    const id = target.slice(1);
    const name = users[id] ?? (label.replace(/^@/, "") || id);
    return h("span", { class: id === app.me ? "mention mention-me" : "mention", "data-user": id }, `@${name}`);
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    return h("span", { class: "mention" }, `#${channels[id] ?? (label || id)}`);
  }
  if (target.startsWith("!subteam^")) {
    const id = target.slice("!subteam^".length);
    const handle = usergroups[id] ?? (label.replace(/^@/, "") || id);
    return h("span", { class: "mention mention-group" }, `@${handle}`);
  }
  if (target.startsWith("!date^")) return renderDate(target, label);
  if (target.startsWith("!")) {
    return h("span", { class: "mention mention-group" }, `@${label.replace(/^@/, "") || target.slice(1)}`);
  }
  const url = decodeEntities(target);
  if (!isSafeUrl(url)) return document.createTextNode(label || url);
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label || url);
}

/* ---------- <!date^…> ---------- */

const DAY_MS = 86400000;

/** "today", "yesterday", "tomorrow" in the browser's language, or null for other days. */
function nearbyDay(date) {
  const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((midnight(date) - midnight(new Date())) / DAY_MS);
  if (Math.abs(days) > 1) return null;
  return new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(days, "day");
}

function timeAgo(date) {
  const seconds = (date.getTime() - Date.now()) / 1000;
  const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  const [unit, size] = units.find(([, length]) => Math.abs(seconds) >= length) ?? ["second", 1];
  return new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(Math.round(seconds / size), unit);
}

const LONG = { year: "numeric", month: "long", day: "numeric" };
const DATE_TOKENS = {
  date_num: (d) => [d.getFullYear(), d.getMonth() + 1, d.getDate()].map((n) => String(n).padStart(2, "0")).join("-"),
  date: (d) => d.toLocaleDateString(undefined, LONG),
  date_short: (d) => d.toLocaleDateString(undefined, { ...LONG, month: "short" }),
  date_long: (d) => d.toLocaleDateString(undefined, { ...LONG, weekday: "long" }),
  date_pretty: (d) => nearbyDay(d) ?? DATE_TOKENS.date(d),
  date_short_pretty: (d) => nearbyDay(d) ?? DATE_TOKENS.date_short(d),
  date_long_pretty: (d) => nearbyDay(d) ?? DATE_TOKENS.date_long(d),
  time: (d) => d.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" }),
  time_secs: (d) => d.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" }),
  ago: timeAgo,
};

/** <!date^EPOCH^FORMAT[^LINK]|fallback> in the reader's locale and time zone. */
function renderDate(target, fallback) {
  const [, epoch, format = "", link = ""] = target.split("^");
  const date = new Date(Number(epoch) * 1000);
  let known = !Number.isNaN(date.getTime());
  const shown = known
    ? format.replace(/\{(\w+)\}/g, (_, token) => {
        known &&= token in DATE_TOKENS;
        return known ? DATE_TOKENS[token](date) : "";
      })
    : "";
  const text = known ? shown : fallback;
  const url = decodeEntities(link);
  const props = { class: "date", title: known ? date.toLocaleString() : null };
  if (!isSafeUrl(url)) return h("time", props, text);
  return h("a", { ...props, href: url, target: "_blank", rel: "noopener noreferrer" }, text);
}

/* ---------- Block Kit ---------- */

/** A text object (plain_text or mrkdwn) as a node. */
function renderText(object) {
  if (!object) return null;
  if (object.type === "mrkdwn") return renderMrkdwn(object.text ?? "");
  return h("span", { class: "plain" }, plainText(object));
}

function plainText(object) {
  const text = object?.text ?? "";
  return object?.emoji === false ? text : emojify(text);
}

const BLOCKS = {
  header: (block) => h("h3", { class: "block block-header" }, plainText(block.text)),
  divider: () => h("hr", { class: "block block-divider" }),
  section: renderSection,
  context: renderContext,
  actions: renderActions,
  input: renderInputBlock,
  image: renderImageBlock,
};

/** ctx: {onAction(block, element, selected, control) | null, fields: array to collect inputs into} */
function renderBlocks(blocks, ctx) {
  return (blocks ?? []).map((block) => {
    const render = BLOCKS[block.type];
    if (render) return render(block, ctx);
    return h("p", { class: "block block-unsupported" }, `[unsupported block: ${block.type}]`);
  });
}

function renderSection(block, ctx) {
  const body = h("div", { class: "section-body" }, renderText(block.text));
  if (block.fields?.length) {
    body.append(h("div", { class: "section-fields" }, block.fields.map((field) => h("div", {}, renderText(field)))));
  }
  const accessory = block.accessory && (block.accessory.type === "image"
    ? renderImage(block.accessory, "accessory-image")
    : renderElement(block, block.accessory, ctx));
  return h("div", { class: "block block-section", "data-block-id": block.block_id }, [body, accessory]);
}

function renderContext(block) {
  const parts = (block.elements ?? []).map((element) =>
    element.type === "image" ? renderImage(element, "context-image") : renderText(element));
  return h("div", { class: "block block-context" }, parts);
}

function renderActions(block, ctx) {
  const elements = (block.elements ?? []).map((element) => renderElement(block, element, ctx));
  return h("div", { class: "block block-actions", "data-block-id": block.block_id }, elements);
}

function renderImageBlock(block) {
  return h("figure", { class: "block block-image" }, [
    block.title ? h("figcaption", {}, plainText(block.title)) : null,
    renderImage(block, "image") ?? h("span", { class: "image-alt" }, `[image: ${block.alt_text ?? ""}]`),
  ]);
}

/** An <img> only for http(s) addresses; anything else (slack_file, data:, javascript:) shows nothing. */
function renderImage(element, className) {
  const url = element.image_url ?? "";
  if (!/^https?:\/\//i.test(url)) return null;
  return h("img", { class: className, src: url, alt: element.alt_text ?? "", loading: "lazy" });
}

/** An interactive element of a section accessory or actions block; it acts at once. */
function renderElement(block, element, ctx) {
  const act = (selected, control) => ctx.onAction?.(block, element, selected, control);
  const common = { "data-block-id": block.block_id, "data-action-id": element.action_id, disabled: !ctx.onAction };
  if (element.type === "button") {
    const pending = app.pendingClicks.has(clickKey(ctx.ts, block, element));
    const style = element.style === "primary" || element.style === "danger" ? ` btn-${element.style}` : "";
    const props = { ...common, type: "button", class: `btn${style}`, disabled: common.disabled || pending };
    const button = h("button", props, plainText(element.text));
    button.addEventListener("click", () => act(null, button));
    return button;
  }
  if (element.type === "overflow") {
    const props = { ...common, class: "overflow", "aria-label": "More actions" };
    const menu = renderSelect({ ...element, placeholder: { text: "…" } }, props);
    menu.addEventListener("change", () => {
      act(menu.value, menu);
      menu.selectedIndex = 0; // an overflow menu is a list of commands, not a setting
    });
    return menu;
  }
  const field = renderField(element, { ...common, "aria-label": plainText(element.placeholder) || "Select an option" });
  if (!field) return h("span", { class: "block-unsupported" }, `[unsupported element: ${element.type}]`);
  field.node.addEventListener("change", () => {
    const value = field.read();
    if (value !== null) act(value, field.node); // back on the placeholder: Slack sends nothing
  });
  return field.node;
}

/** A text input, select, or checkbox / radio group, and how to read its value as the server wants it. */
function renderField(element, props) {
  let node;
  switch (element.type) {
    case "plain_text_input":
      node = renderTextInput(element, props);
      return { node, read: () => node.value };
    case "static_select":
    case "multi_static_select":
      node = renderSelect(element, props);
      return { node, read: () => readSelect(node) };
    case "checkboxes":
    case "radio_buttons":
      node = renderChoices(element, props);
      return { node, read: () => readChoices(node, element.type) };
    default:
      return null;
  }
}

/** The option values an element starts with (initial_option or initial_options). */
function initialValues(element) {
  return new Set([element.initial_option, ...(element.initial_options ?? [])].filter(Boolean).map((o) => o.value));
}

/** A <select> (multiple for multi_static_select) with the element's initial choice(s). */
function renderSelect(element, props) {
  const multiple = element.type === "multi_static_select";
  const chosen = initialValues(element);
  const options = (element.options ?? []).map((option) => h("option", {
    value: option.value, title: option.description ? plainText(option.description) : null,
    selected: chosen.has(option.value),
  }, plainText(option.text)));
  if (!multiple && !chosen.size) {
    // Like Slack, nothing is picked until the person picks; the empty choice reads as null.
    options.unshift(h("option", { value: "" }, plainText(element.placeholder) || "Select an option"));
  }
  return h("select", { ...props, multiple }, options);
}

function readSelect(select) {
  if (select.multiple) return [...select.selectedOptions].map((option) => option.value);
  return select.value || null;
}

/** Checkboxes or radio buttons, each found by its option text; descriptions are described-by. */
function renderChoices(element, props) {
  const radio = element.type === "radio_buttons";
  const name = uniqueId("choice");
  const chosen = initialValues(element);
  const rows = (element.options ?? []).map((option) => {
    const id = uniqueId("option");
    const description = option.description && h("div", { class: "choice-description", id: `${id}-description` },
      renderText(option.description));
    return h("div", { class: "choice" }, [
      h("input", {
        type: radio ? "radio" : "checkbox", id, name, value: option.value, checked: chosen.has(option.value),
        disabled: props.disabled, "aria-describedby": description ? `${id}-description` : null,
      }),
      h("label", { for: id }, renderText(option.text)),
      description,
    ]);
  });
  return h("div", { ...props, disabled: null, class: "choices", role: radio ? "radiogroup" : "group" }, rows);
}

function readChoices(group, type) {
  const values = [...group.querySelectorAll("input:checked")].map((input) => input.value);
  return type === "checkboxes" ? values : values[0] ?? null;
}

/** An input block: label, control, hint, and a slot for the error the server may return. */
function renderInputBlock(block, ctx) {
  const id = uniqueId("field");
  const element = block.element ?? {};
  const describedBy = [block.hint && `${id}-hint`, `${id}-error`].filter(Boolean).join(" ");
  const field = renderField(element, {
    id, "aria-labelledby": `${id}-label`, "aria-describedby": describedBy,
    "aria-required": block.optional ? null : "true",
  });
  if (field) ctx.fields?.push({ blockId: block.block_id, actionId: element.action_id, read: field.read });
  const control = field?.node ?? h("p", { class: "block-unsupported" }, `[unsupported input: ${element.type}]`);
  const labelFor = control.matches("input, textarea, select") ? id : null;
  const label = plainText(block.label);
  // "(optional)" sits outside the <label> so the field's accessible name is exactly its label.
  const optional = block.optional;
  return h("div", { class: "block block-input", "data-block-id": block.block_id }, [
    h("div", { class: "input-label-row" }, [
      h("label", { class: "input-label", id: `${id}-label`, for: labelFor }, label),
      optional ? h("span", { class: "optional" }, " (optional)") : null,
    ]),
    control,
    block.hint ? h("p", { class: "input-hint", id: `${id}-hint` }, plainText(block.hint)) : null,
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }),
  ]);
}

function renderTextInput(element, props) {
  const attrs = {
    ...props, placeholder: element.placeholder ? plainText(element.placeholder) : null, maxlength: element.max_length,
  };
  const control = element.multiline ? h("textarea", { ...attrs, rows: 4 }) : h("input", { ...attrs, type: "text" });
  control.value = element.initial_value ?? "";
  return control;
}

/* ---------- Messages ---------- */

function authorName(message) {
  return app.snap.users[message.user] ?? (message.bot ? "approvals" : message.user);
}

/** A person's avatar is a circle with their initial, in a hue from their id; the app's is a
 *  rounded square with its own mark, as in Slack, so "approvals" and "alice" never look alike. */
function avatar(message, name) {
  if (message.bot) return h("div", { class: "avatar avatar-bot", "aria-hidden": "true" }, "✓");
  const hue = [...String(message.user)].reduce((sum, ch) => (sum * 31 + ch.charCodeAt(0)) % 360, 7);
  return h("div", { class: "avatar", style: `background: hsl(${hue} 55% 45%)`, "aria-hidden": "true" },
    (name[0] ?? "?").toUpperCase());
}

function renderMessage(message, { inThread }) {
  const name = authorName(message);
  const when = new Date(Number(String(message.ts).split(".")[0]) * 1000);
  const ctx = { ts: message.ts, onAction: (...action) => sendClick(message, ...action) };
  const body = message.blocks?.length ? renderBlocks(message.blocks, ctx) : [renderMrkdwn(message.text ?? "")];
  return h("article", {
    class: message.ephemeral ? "message ephemeral" : "message",
    "data-ts": message.ts, "data-user": message.user, "data-ephemeral": message.ephemeral ? "true" : null,
  }, [
    avatar(message, name),
    h("div", { class: "message-main" }, [
      message.ephemeral ? h("p", { class: "ephemeral-note" }, "Only visible to you") : null,
      h("div", { class: "message-meta" }, [
        h("span", { class: "author" }, name),
        message.bot ? h("span", { class: "app-badge" }, "APP") : null,
        h("time", { datetime: when.toISOString(), title: when.toLocaleString() },
          when.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" })),
        message.edited ? h("span", { class: "edited" }, "(edited)") : null,
      ]),
      h("div", { class: "message-body" }, body),
      inThread || message.ephemeral ? null : threadLink(message),
    ]),
  ]);
}

function threadLink(message) {
  const count = message.reply_count ?? 0;
  const label = count === 0 ? "Reply in thread" : count === 1 ? "1 reply" : `${count} replies`;
  return h("button", {
    type: "button", class: count ? "thread-link has-replies" : "thread-link", onclick: () => openThread(message.ts),
  }, label);
}

function renderChannel(snap) {
  const messages = snap.messages.map((message) => renderMessage(message, { inThread: false }));
  const empty = h("p", { class: "empty" }, "No messages yet. The agent's requests will appear here.");
  replaceKeepingScroll($("#messages"), messages.length ? messages : [empty]);
}

/* ---------- Thread pane ---------- */

function openThread(ts) {
  app.threadTs = ts;
  renderThread(app.snap);
  $("#thread-messages").scrollTop = $("#thread-messages").scrollHeight;
  $("#thread-text").focus();
}

function closeThread() {
  app.threadTs = null;
  renderThread(app.snap);
}

function renderThread(snap) {
  const root = app.threadTs && snap?.messages.find((m) => m.ts === app.threadTs && !m.ephemeral);
  // Showing or hiding the pane re-flows the channel; keep it pinned to the bottom if it was.
  const channel = $("#messages");
  const pinned = isAtBottom(channel);
  $("#thread").hidden = !root;
  $("#app").classList.toggle("thread-open", Boolean(root));
  if (pinned) channel.scrollTop = channel.scrollHeight;
  if (!root) {
    app.threadTs = null;
    return;
  }
  const replies = snap.threads[root.ts] ?? [];
  const count = replies.length === 1 ? "1 reply" : `${replies.length} replies`;
  replaceKeepingScroll($("#thread-messages"), [
    renderMessage(root, { inThread: true }),
    h("div", { class: "reply-count" }, replies.length ? count : "No replies yet"),
    ...replies.map((reply) => renderMessage(reply, { inThread: true })),
  ]);
}

/* ---------- Modal ---------- */

function renderModal(view) {
  const key = view ? `${view.id}:${view.hash}` : null;
  if (key === app.viewKey) return; // same modal: keep what the person typed
  app.viewKey = key;
  app.modalFields = [];
  const root = $("#modal-root");
  root.replaceChildren();
  // Like Slack, the channel behind a modal cannot be used (and is hidden from assistive tech).
  // The top bar stays usable so one can switch person with a modal open.
  const shell = $("#app");
  shell.inert = Boolean(view);
  if (view) shell.setAttribute("aria-hidden", "true");
  else shell.removeAttribute("aria-hidden");
  if (!view) return;

  const title = plainText(view.title);
  const closeText = view.close ? plainText(view.close) : view.submit ? "Cancel" : "Close";
  const closeButton = h("button", { type: "button", class: "btn", onclick: () => closeModal(view) }, closeText);
  const submitButton = view.submit && h("button", { type: "button", class: "btn btn-primary" }, plainText(view.submit));
  submitButton?.addEventListener("click", () => submitModal(view, submitButton));
  const dialog = h("div", {
    class: "modal", role: "dialog", "aria-modal": "true", "aria-label": title, "data-view-id": view.id,
    onkeydown: (event) => event.key === "Escape" && closeModal(view),
  }, [
    h("header", { class: "modal-header" }, [
      h("h2", {}, title),
      h("button", { type: "button", class: "icon-button", "aria-label": "Dismiss", onclick: () => closeModal(view) },
        "×"),
    ]),
    h("div", { class: "modal-body" }, renderBlocks(view.blocks, { onAction: null, fields: app.modalFields })),
    h("footer", { class: "modal-footer" }, [closeButton, submitButton]),
  ]);
  root.append(h("div", { class: "modal-backdrop" }, dialog));
  (dialog.querySelector(".modal-body input, .modal-body textarea, .modal-body select") ?? closeButton).focus();
}

/** Tells the server this page no longer shows ``user``: the modals open here close (and the bot hears
 *  of it when it asked). ``keepalive`` lets the request outlive a page being unloaded. */
function leave(user, client, keepalive = false) {
  if (!user) return Promise.resolve({ ok: true });
  return post("/demo/leave", { user, client }, { keepalive });
}

async function closeModal(view) {
  reportFailure(await post("/demo/close", { user: app.me, view_id: view.id }));
}

async function submitModal(view, button) {
  const key = app.viewKey;
  const values = {};
  for (const field of app.modalFields) (values[field.blockId] ??= {})[field.actionId] = field.read();
  showFieldErrors({});
  button.disabled = true;
  const answer = await post("/demo/submit", { user: app.me, view_id: view.id, values });
  button.disabled = false;
  if (app.viewKey !== key) return; // the modal changed meanwhile: its old errors mean nothing
  if (answer.errors) showFieldErrors(answer.errors);
  else reportFailure(answer);
}

/** Shows each error under its input block; an empty object clears them all. */
function showFieldErrors(errors) {
  for (const block of document.querySelectorAll("#modal-root .block-input")) {
    const message = errors[block.dataset.blockId];
    const slot = block.querySelector(".field-error");
    slot.textContent = message ?? "";
    slot.hidden = !message;
    const control = block.querySelector("[aria-describedby]");
    if (message) control?.setAttribute("aria-invalid", "true");
    else control?.removeAttribute("aria-invalid");
  }
}

/* ---------- Agent panel ---------- */

function renderAgent(agent) {
  $("#agent-mode").textContent = AGENT_MODES[agent.mode] ?? agent.mode ?? "";
  $("#agent-status").textContent = agent.running ? "running" : "stopped";
  $("#agent-status").classList.toggle("running", Boolean(agent.running));
  const workdir = agent.workdir ? h("span", {}, ["Work folder: ", h("code", {}, agent.workdir)]) : "";
  $("#agent-workdir").replaceChildren(workdir);
  $("#agent-run").hidden = Boolean(agent.running);

  const log = agent.log ?? [];
  const entries = log.map((entry, index) => renderLogEntry(entry, index === log.length - 1));
  const waiting = h("li", { class: "log-empty" }, "Nothing yet: the agent's tool calls show up here.");
  replaceKeepingScroll($("#agent-log"), entries.length ? entries : [waiting]);
}

function renderLogEntry(entry, isLast) {
  const when = new Date(entry.at * 1000);
  // The hint tells a newcomer what to try, so it only matters while that ask is the latest news.
  const showHint = isLast && entry.kind === "ask" && entry.hint;
  return h("li", { class: "log-entry", "data-kind": entry.kind }, [
    h("div", { class: "log-head" }, [
      h("span", { class: `tag tag-${entry.kind}` }, AGENT_KINDS[entry.kind] ?? entry.kind),
      h("span", { class: "log-title" }, entry.title),
      h("time", { datetime: when.toISOString(), class: "log-time" }, when.toLocaleTimeString()),
    ]),
    entry.detail ? h("pre", { class: "log-detail" }, entry.detail) : null,
    showHint ? h("p", { class: "log-hint" }, [h("strong", {}, "Try: "), entry.hint]) : null,
  ]);
}

async function runAgent(button) {
  button.disabled = true;
  reportFailure(await post("/demo/agent/run"));
  button.disabled = false;
}

/* ---------- Talking to the server ---------- */

/** POSTs JSON with the page's secret; always resolves to {ok, error?, errors?} (network failures included). */
async function post(path, body = {}, { keepalive = false } = {}) {
  try {
    const response = await fetch(path, {
      method: "POST",
      keepalive,
      // The server takes JSON bodies only and wants the secret in a header: neither can be sent
      // by another site's form, nor by its script without a CORS preflight the server never grants.
      headers: { "Content-Type": "application/json", [TOKEN_HEADER]: TOKEN },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok && answer.ok !== false) return { ok: true };
    return { ok: false, error: answer.error ?? `${response.status} ${response.statusText}`, errors: answer.errors };
  } catch (error) {
    return { ok: false, error: `Cannot reach the playground server (${error.message})` };
  }
}

function reportFailure(answer) {
  if (!answer.ok) toast(answer.error ?? "Something went wrong");
}

function clickKey(ts, block, element) {
  return `${ts}|${block.block_id}|${element.action_id}`;
}

async function sendClick(message, block, element, selected, control) {
  const key = clickKey(message.ts, block, element);
  const isButton = control.tagName === "BUTTON";
  if (isButton) app.pendingClicks.add(key);
  // A pick in a menu (static_select) is sent like a click, once: no second pick while it travels.
  control.disabled = true;
  const answer = await post("/demo/click", {
    user: app.me, channel: app.snap.channel.id, ts: message.ts, block_id: block.block_id ?? null,
    action_id: element.action_id, selected, ephemeral: Boolean(message.ephemeral), client: app.client,
  });
  control.disabled = false;
  if (isButton) {
    app.pendingClicks.delete(key);
    if (!control.isConnected) renderConversation(); // a snapshot redrew it, still disabled
  }
  reportFailure(answer);
}

function toast(text) {
  const node = h("div", { class: "toast", role: "alert" }, text);
  node.addEventListener("click", () => node.remove());
  $("#toasts").append(node);
  setTimeout(() => node.remove(), TOAST_MS);
}

/* ---------- Identity and the live stream ---------- */

/** The URL's ?as= wins over the remembered choice; null lets the server pick its first person. */
function initialUser() {
  return new URLSearchParams(location.search).get("as") || localStorage.getItem(STORAGE_KEY) || null;
}

function rememberUser(id) {
  localStorage.setItem(STORAGE_KEY, id);
  const url = new URL(location.href);
  url.searchParams.set("as", id);
  history.replaceState(null, "", url);
}

function switchIdentity(id) {
  leave(app.me, app.client).then(reportFailure);
  app.client = newClient();
  app.me = id;
  rememberUser(id);
  app.pendingClicks.clear();
  renderModal(null); // the next person's own modal (if any) arrives with their first snapshot
  connect();
}

function streamUrl() {
  // EventSource cannot send headers: the stream takes the secret as a query parameter.
  const query = new URLSearchParams({ token: TOKEN, client: app.client });
  if (app.me) query.set("user", app.me);
  return `/demo/stream?${query}`;
}

function connect() {
  app.source?.close();
  const source = new EventSource(streamUrl());
  let received = false;
  source.onmessage = (event) => {
    received = true;
    setConnected(true);
    applySnapshot(JSON.parse(event.data));
  };
  source.onerror = async () => {
    setConnected(false);
    // EventSource retries network drops itself but gives up on an HTTP error status.
    if (source.readyState !== EventSource.CLOSED || source !== app.source) return;
    // It does not say which status: ask once with a plain request.
    const status = await fetch(streamUrl().replace("/demo/stream", "/demo/state"))
      .then((response) => response.status, () => 0);
    if (source !== app.source) return;
    if (status === 403) {
      // The secret is refused: the playground was restarted with a new one. Only a reload has it.
      setConnected(false, "restarted: reload the page");
      return;
    }
    if (status === 400 && !received && app.me && !app.snap) {
      // A remembered person the server no longer knows.
      localStorage.removeItem(STORAGE_KEY);
      app.me = null;
    }
    setTimeout(() => source === app.source && connect(), RETRY_MS);
  };
  app.source = source;
}

function setConnected(connected, why = "reconnecting…") {
  $("#connection").hidden = connected;
  $("#connection").textContent = why;
}

function applySnapshot(snap) {
  if (app.me && snap.me !== app.me) return; // a late event meant for the previous identity
  app.me = snap.me;
  app.snap = snap;
  renderIdentity(snap);
  $("#channel-name").textContent = `#${snap.channel.name}`;
  renderConversation();
  renderModal(snap.view);
  renderAgent(snap.agent);
}

function renderConversation() {
  renderChannel(app.snap);
  renderThread(app.snap);
}

function renderIdentity(snap) {
  const select = $("#identity");
  const key = JSON.stringify(snap.people);
  if (key !== app.peopleKey) {
    // Only rebuilt when the people change, so an open drop-down is not yanked away.
    app.peopleKey = key;
    select.replaceChildren(...snap.people.map((person) =>
      h("option", { value: person.id }, person.title ? `${person.name} (${person.title})` : person.name)));
  }
  select.value = snap.me;
}

/* ---------- Composers ---------- */

/** Enter sends, Shift+Enter adds a line; the text stays put if sending fails. */
function setUpComposer(form, textarea, threadTs) {
  const fit = () => {
    textarea.style.height = "auto";
    textarea.style.height = `${textarea.scrollHeight}px`;
  };
  textarea.addEventListener("input", fit);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    // Sent as typed: a leading space is how one posts a message that starts with "/".
    const text = textarea.value;
    const button = form.querySelector("button[type=submit]");
    if (!text.trim() || button.disabled) return;
    button.disabled = true;
    const answer = await post("/demo/post", { user: app.me, text, thread_ts: threadTs() });
    button.disabled = false;
    if (answer.ok) {
      textarea.value = "";
      fit();
    }
    reportFailure(answer);
  });
}

function start() {
  setUpComposer($("#composer"), $("#composer-text"), () => null);
  setUpComposer($("#thread-composer"), $("#thread-text"), () => app.threadTs);
  $("#thread-close").addEventListener("click", closeThread);
  $("#identity").addEventListener("change", (event) => switchIdentity(event.target.value));
  $("#agent-run").addEventListener("click", (event) => runAgent(event.currentTarget));
  // Leaving (reload, close, navigation): this page's modals close with it, as Slack's do.
  window.addEventListener("pagehide", () => leave(app.me, app.client, true));
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    // Back from the back/forward cache: a page like a new one, with nothing left open.
    app.client = newClient();
    renderModal(null);
    connect();
  });
  connect();
}

start();
