// sessions.js owns the sessions view: the stored sessions, newest first
// (filtered by agent or user, a page at a time), each opened in the chat or
// deleted.

import {api, seg} from "./api.js";
import {byId, h} from "./dom.js";

let cursor = null;

export function initSessions(notify) {
  byId("session-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    showSessions().catch((error) => notify(error.describe ? error.describe() : String(error)));
  });
  byId("sessions-more").addEventListener("click", () => loadPage(notify).catch((error) => notify(String(error))));
  byId("session-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-delete]");
    if (button) remove(button.dataset.delete, notify);
  });
}

export async function showSessions() {
  cursor = null;
  byId("session-rows").replaceChildren();
  await loadPage();
}

async function loadPage() {
  const query = new URLSearchParams({limit: "50"});
  if (byId("filter-agent").value.trim()) query.set("agent_id", byId("filter-agent").value.trim());
  if (byId("filter-user").value.trim()) query.set("user_id", byId("filter-user").value.trim());
  if (cursor) query.set("cursor", cursor);
  const page = await api.get(`/v1/sessions?${query}`);
  cursor = page.next_cursor;
  byId("sessions-more").hidden = !cursor;
  const rows = page.data.map(sessionRow);
  if (!rows.length && !byId("session-rows").childElementCount) {
    rows.push(h("tr", {}, h("td", {colspan: "7", class: "muted"}, "No sessions yet: start one in the chat.")));
  }
  byId("session-rows").append(...rows);
}

function sessionRow(session) {
  const link = new URLSearchParams({session: session.session_id});
  if (session.agent_id) link.set("agent", session.agent_id);
  return h("tr", {dataset: {sessionId: session.session_id}},
    h("td", {}, h("a", {href: `#chat?${link}`, class: "open-session"}, session.session_id)),
    h("td", {}, session.agent_id || ""),
    h("td", {}, session.user_id || ""),
    h("td", {}, String(session.run_ids.length)),
    h("td", {}, session.active_run_id ? h("code", {}, session.active_run_id) : ""),
    h("td", {}, new Date(session.updated_at).toLocaleString()),
    h("td", {}, h("button", {type: "button", class: "danger", dataset: {delete: session.session_id}}, "Delete")));
}

async function remove(sessionId, notify) {
  try {
    await api.delete(`/v1/sessions/${seg(sessionId)}`);
    byId("session-rows").querySelector(`tr[data-session-id="${CSS.escape(sessionId)}"]`)?.remove();
  } catch (error) {
    notify(error.describe ? error.describe() : String(error));
  }
}
