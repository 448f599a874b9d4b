// agents.js owns the agents view: the stored agents, the editor (a form and
// a JSON view of one definition; save creates with POST or changes with
// PATCH, each change a new version; a 422 shows at its fields), the agent's
// versions, and deleting it.

import {AgentForm, editable, FieldError} from "./agent-form.js";
import {api, seg} from "./api.js";
import {byId, h, pretty} from "./dom.js";

const NEW_AGENT = {model: "test:echo", tools: [], handoffs: [], max_turns: 10, history: {enabled: true, num_runs: 10}};

let catalog = null; // GET /v1/tools, once
let agents = [];
let editor = null; // {agent (null when new), form, mode}

export function initAgents() {
  byId("agent-new").addEventListener("click", () => { location.hash = "#agents/new"; });
}

/** Shows the list and the editor for `agentId` ("new": an empty definition). */
export async function showAgents(agentId) {
  catalog = catalog || await allPages("/v1/tools");
  agents = await allPages("/v1/agents");
  renderList(agentId);
  if (agentId === "new") return openEditor(null);
  const chosen = agentId || (agents[0] && agents[0].id);
  if (!chosen) return openEditor(null);
  openEditor(await api.get(`/v1/agents/${seg(chosen)}`));
}

async function allPages(path) {
  const items = [];
  for (let cursor = null, more = true; more;) {
    const page = await api.get(`${path}?limit=200${cursor ? `&cursor=${seg(cursor)}` : ""}`);
    items.push(...page.data);
    cursor = page.next_cursor;
    more = Boolean(cursor);
  }
  return items;
}

function renderList(selected) {
  const list = byId("agent-list");
  list.replaceChildren(...agents.map((agent) => h("li", {class: agent.id === selected ? "selected" : "", dataset: {agentId: agent.id}},
    h("a", {href: `#agents/${encodeURIComponent(agent.id)}`},
      h("strong", {}, agent.name || agent.id), " ", h("span", {class: "muted"}, `${agent.id} · v${agent.version}`)))));
  if (!agents.length) list.append(h("li", {class: "muted"}, "No agents yet."));
}

function openEditor(agent) {
  const form = new AgentForm({catalog, agents});
  form.fill(agent || NEW_AGENT, !agent);
  const json = h("textarea", {id: "agent-json", class: "code", rows: 28, spellcheck: "false", hidden: true});
  const jsonErrors = h("ul", {id: "agent-json-errors", class: "field-error", hidden: true});
  const summary = h("p", {id: "agent-status", class: "status-line", role: "status"});
  editor = {agent, form, json, jsonErrors, summary, mode: "form", errors: []};
  const tab = (mode, label) => h("button", {type: "button", class: "tab", dataset: {mode}, onclick: () => switchMode(mode)}, label);
  const actions = h("div", {class: "row"},
    h("button", {type: "button", id: "agent-save", class: "primary", onclick: save}, agent ? "Save new version" : "Create agent"),
    agent ? h("a", {class: "button", href: `#chat?agent=${encodeURIComponent(agent.id)}`, id: "agent-chat", onclick: chatWith}, "Chat with it") : null,
    agent ? h("button", {type: "button", id: "agent-delete", class: "danger", onclick: remove}, "Delete") : null);
  const title = agent ? `${agent.name || agent.id} · version ${agent.version}` : "New agent";
  byId("agent-editor").replaceChildren(
    h("div", {class: "sidebar-head"}, h("h2", {}, title), h("div", {class: "tabs"}, tab("form", "Form"), tab("json", "JSON"))),
    summary, form.el, json, jsonErrors, actions,
    agent ? versionsBox(agent) : null);
  switchMode("form");
}

function chatWith(event) {
  event.preventDefault();
  const params = new URLSearchParams({agent: editor.agent.id, session: `console-${Date.now().toString(36)}`});
  location.hash = `#chat?${params}`;
}

function status(text, kind = "") {
  editor.summary.textContent = text;
  editor.summary.dataset.kind = kind;
}

/** The definition as the current mode shows it; throws FieldError. */
function current() {
  if (editor.mode === "form") return editor.form.read();
  try {
    return JSON.parse(editor.json.value);
  } catch (error) {
    throw new FieldError("json", `The JSON view is not JSON: ${error.message}`);
  }
}

function switchMode(mode) {
  if (mode !== editor.mode) {
    let definition;
    try {
      definition = current();
    } catch (error) {
      return showFieldError(error);
    }
    if (mode === "json") editor.json.value = pretty(editable(definition));
    else {
      editor.form.fill({...definition, id: definition.id ?? (editor.agent && editor.agent.id)}, !editor.agent);
      editor.form.showErrors(editor.errors);
    }
  }
  editor.mode = mode;
  editor.form.el.hidden = mode !== "form";
  editor.json.hidden = mode !== "json";
  editor.jsonErrors.hidden = mode !== "json" || !editor.jsonErrors.childElementCount;
  for (const button of byId("agent-editor").querySelectorAll(".tab")) button.classList.toggle("active", button.dataset.mode === mode);
}

function showFieldError(error) {
  if (error instanceof FieldError && error.key !== "json") {
    editor.form.showErrors([{loc: [error.key], msg: error.message}]);
    status("Fix the marked field.", "error");
  } else {
    status(error.message, "error");
  }
}

function showProblem(error) {
  editor.errors = error.errors;
  editor.form.clearErrors();
  const unplaced = editor.form.showErrors(error.errors);
  editor.jsonErrors.replaceChildren(...error.errors.map((item) =>
    h("li", {dataset: {loc: (item.loc || []).join(".")}}, `${(item.loc || []).join(".") || "body"}: ${item.msg}`)));
  editor.jsonErrors.hidden = editor.mode !== "json" || !error.errors.length;
  const extra = unplaced.map((item) => `${(item.loc || []).join(".")}: ${item.msg}`);
  status([`${error.code}: ${error.message}`, ...extra].join("\n"), "error");
}

async function save() {
  editor.errors = [];
  editor.form.clearErrors();
  editor.jsonErrors.replaceChildren();
  let definition;
  try {
    definition = editable(current());
  } catch (error) {
    return showFieldError(error);
  }
  try {
    let saved;
    if (!editor.agent) {
      saved = await api.post("/v1/agents", definition);
    } else {
      const changes = changed(definition, editable(editor.agent));
      delete changes.id;
      if (!Object.keys(changes).length) return status("Nothing changed.");
      saved = await api.patch(`/v1/agents/${seg(editor.agent.id)}`, changes);
    }
    history.pushState(null, "", `#agents/${encodeURIComponent(saved.id)}`);
    await showAgents(saved.id);
    status(`Saved ${saved.id} as version ${saved.version}.`, "ok");
  } catch (error) {
    if (!error.describe) throw error;
    showProblem(error);
  }
}

function changed(definition, stored) {
  const changes = {};
  for (const [key, value] of Object.entries(definition)) {
    if (JSON.stringify(value) !== JSON.stringify(stored[key])) changes[key] = value;
  }
  return changes;
}

async function remove(event) {
  const button = event.currentTarget;
  if (!button.dataset.armed) {
    button.dataset.armed = "true";
    button.textContent = "Click again to delete";
    return;
  }
  try {
    await api.delete(`/v1/agents/${seg(editor.agent.id)}`);
    history.pushState(null, "", "#agents");
    await showAgents(null);
  } catch (error) {
    status(error.describe ? error.describe() : String(error), "error");
  }
}

function versionsBox(agent) {
  const list = h("ol", {id: "agent-versions", class: "list versions"});
  const shown = h("div", {class: "version-view"});
  const box = h("details", {class: "versions-box", open: true}, h("summary", {}, "Versions"), list, shown);
  api.get(`/v1/agents/${seg(agent.id)}/versions?limit=50`).then((page) => {
    list.replaceChildren(...page.data.map((version) => h("li", {dataset: {version: version.version}},
      h("button", {type: "button", class: "link", onclick: () => showVersion(version, shown)}, `v${version.version}`),
      " ", h("span", {class: "muted"}, `${new Date(version.created_at).toLocaleString()} · ${version.model}`))));
  }).catch((error) => list.replaceChildren(h("li", {class: "field-error"}, error.describe ? error.describe() : String(error))));
  return box;
}

function showVersion(version, shown) {
  const load = () => {
    editor.mode = "form";
    editor.form.fill({...version, id: editor.agent.id}, false);
    switchMode("form");
    status(`Version ${version.version} is in the editor: saving makes it a new version.`);
  };
  shown.replaceChildren(
    h("div", {class: "row"}, h("strong", {}, `version ${version.version}`),
      h("button", {type: "button", onclick: load}, "Load into editor")),
    h("pre", {}, pretty(editable(version))));
}
