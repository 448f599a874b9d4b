// dom.js owns building the page's nodes. Text always goes in as text
// (textContent, Text nodes): nothing here parses HTML, so whatever an agent,
// a tool or a user writes is shown, never run.

/** An element: `h("div", {class: "x", onclick: fn}, "text", child)`. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "selected") element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

/** Adds children (nodes or strings, as text; null and false are skipped). */
export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

export const byId = (id) => document.getElementById(id);

/** A value as readable text: strings as they are, anything else as indented JSON. */
export function pretty(value) {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  return JSON.stringify(value, null, 2);
}

/** A folded block: a summary line and, when opened, its body. */
export function fold(summary, body, {open = false, cls = ""} = {}) {
  return h("details", {class: cls, open}, h("summary", {}, summary), body);
}

export function formatSeconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

/** A short id for new sessions (crypto.randomUUID needs a secure context). */
export function newSessionId() {
  const random = Math.random().toString(36).slice(2, 10);
  return `console-${Date.now().toString(36)}-${random}`;
}
