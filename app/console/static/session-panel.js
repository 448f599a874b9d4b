// session-panel.js owns the chat's side panel for the open session: its
// state, shown as JSON and saved with PATCH /v1/sessions/{id} (a JSON merge
// patch), and its history messages (GET /v1/sessions/{id}/messages).

import {api, seg} from "./api.js";
import {byId, h, pretty} from "./dom.js";

let sessionId = null;

export function initSessionPanel() {
  byId("session-state-save").addEventListener("click", saveState);
}

/** Shows `session` (null: the session has no run yet). */
export function showSession(id, session) {
  sessionId = id;
  byId("session-state").value = pretty(session ? session.session_state : {});
  status(session ? "" : "A new session: it is stored with its first run.");
  loadMessages().catch(() => {});
}

/** Reads the session again (after a run changed its state or history). */
export async function refreshSession() {
  if (!sessionId) return;
  const id = sessionId;
  try {
    const session = await api.get(`/v1/sessions/${seg(id)}`);
    if (id === sessionId) showSession(id, session);
  } catch {
    // not stored yet, or gone: the panel keeps what it shows
  }
}

function status(text, kind = "") {
  const line = byId("session-state-status");
  line.textContent = text;
  line.dataset.kind = kind;
}

async function saveState() {
  let state;
  try {
    state = JSON.parse(byId("session-state").value || "{}");
  } catch (error) {
    return status(`Not JSON: ${error.message}`, "error");
  }
  if (state === null || typeof state !== "object" || Array.isArray(state)) {
    return status("The state must be a JSON object.", "error");
  }
  try {
    const session = await api.patch(`/v1/sessions/${seg(sessionId)}`, {session_state: state});
    byId("session-state").value = pretty(session.session_state);
    status("Saved.", "ok");
  } catch (error) {
    const text = error.status === 404 ? "The session is stored with its first run: send a message first." : error.describe();
    status(text, "error");
  }
}

async function loadMessages() {
  const list = byId("session-messages");
  const id = sessionId;
  let messages = [];
  try {
    messages = (await api.get(`/v1/sessions/${seg(id)}/messages`)).messages;
  } catch {
    messages = [];
  }
  if (id !== sessionId) return;
  list.replaceChildren(...messages.map((message) => h("li", {dataset: {role: message.role}},
    h("span", {class: "label"}, message.role), " ", messageText(message))));
  byId("session-history-box").querySelector("summary").textContent = `History messages (${messages.length})`;
}

/** A message's text, or its tool calls and parts as JSON. */
export function messageText(message) {
  const parts = [];
  if (typeof message.content === "string") parts.push(message.content);
  else if (Array.isArray(message.content)) {
    for (const part of message.content) parts.push(part.type === "text" ? part.text : pretty(part));
  }
  if (message.tool_calls) parts.push(pretty(message.tool_calls.map((call) => call.function || call)));
  return parts.join("\n");
}
