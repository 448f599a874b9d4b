// agent-form.js owns the agent definition form: one input per field of the
// definition (tools from GET /v1/tools, handoffs from the stored agents),
// turning a definition into the form and back, and showing each 422 error
// (problem+json `errors[].loc`) under the field it names.

import {h, pretty} from "./dom.js";

const READ_ONLY = ["version", "created_at", "updated_at"];
const MODELS = ["test:echo", "test:tools", "openai:gpt-4o-mini", "anthropic:claude-sonnet-4-5"];
const TOOL_MODES = [["off", "off"], ["on", "on"], ["confirm", "needs confirmation"], ["input", "asks the user"]];

/** A field's input could not be read (e.g. a JSON box that is not JSON). */
export class FieldError extends Error {
  constructor(key, message) {
    super(message);
    this.key = key;
  }
}

/** The definition without what the server sets. */
export function editable(definition) {
  const result = {...definition};
  for (const key of READ_ONLY) delete result[key];
  return result;
}

function textField(key, {type = "text", placeholder = "", list} = {}) {
  const input = h("input", {type, name: key, placeholder, list, autocomplete: "off", spellcheck: "false"});
  return {
    input,
    fill: (value) => { input.value = value ?? ""; },
    read: () => input.value,
  };
}

function jsonField(key, empty, rows = 4) {
  const input = h("textarea", {name: key, rows, spellcheck: "false", class: "code"});
  return {
    input,
    fill: (value) => { input.value = value === null || value === undefined ? "" : pretty(value); },
    read: () => {
      if (!input.value.trim()) return empty;
      try {
        return JSON.parse(input.value);
      } catch (error) {
        throw new FieldError(key, `not JSON: ${error.message}`);
      }
    },
  };
}

function instructionsField() {
  const input = h("textarea", {name: "instructions", rows: 5});
  let asList = false;
  return {
    input,
    fill: (value) => {
      asList = Array.isArray(value);
      input.value = asList ? value.join("\n") : value ?? "";
    },
    read: () => (asList ? input.value.split("\n").filter((line) => line.trim()) : input.value),
  };
}

function modelField() {
  const field = textField("model", {list: "known-models", placeholder: "provider:name"});
  const list = h("datalist", {id: "known-models"}, MODELS.map((model) => h("option", {value: model})));
  return {
    control: field.input,
    input: h("span", {class: "stack"}, field.input, list),
    fill: (value) => field.fill(typeof value === "string" ? value : JSON.stringify(value)),
    read: () => {
      const text = field.read().trim();
      if (!text.startsWith("{")) return text;
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new FieldError("model", `not JSON: ${error.message}`);
      }
    },
  };
}

function numberField(key) {
  const input = h("input", {type: "number", name: key, min: "1", step: "1"});
  return {
    input,
    fill: (value) => { input.value = value ?? ""; },
    read: () => (input.value === "" ? undefined : Number(input.value)),
  };
}

function historyField() {
  const enabled = h("input", {type: "checkbox", name: "history.enabled"});
  const runs = h("input", {type: "number", name: "history.num_runs", min: "0", step: "1"});
  return {
    input: h("span", {class: "row"}, h("label", {class: "inline"}, enabled, " earlier runs of the session"), "last", runs, "runs"),
    fill: (value) => {
      enabled.checked = value ? value.enabled !== false : true;
      runs.value = value && value.num_runs !== undefined ? value.num_runs : 10;
    },
    read: () => ({enabled: enabled.checked, num_runs: runs.value === "" ? 10 : Number(runs.value)}),
  };
}

/** Registered tools, each with a mode; other entries (client tools...) as JSON. */
function toolsField(catalog) {
  const modes = new Map();
  const fields = new Map(); // user_input_fields kept as they were
  let order = []; // the definition's order of entries, kept on save
  const rows = catalog.map((tool) => {
    const select = h("select", {name: `tool.${tool.name}`, dataset: {tool: tool.name}},
      TOOL_MODES.map(([value, text]) => h("option", {value}, text)));
    modes.set(tool.name, select);
    return h("tr", {}, h("td", {}, h("code", {}, tool.name)), h("td", {}, select),
      h("td", {class: "muted"}, (tool.description || "").split("\n")[0]));
  });
  const others = jsonField("tools", [], 3);
  others.input.placeholder = '[{"type": "client", "name": "get_location"}]';
  return {
    input: h("div", {class: "stack"},
      rows.length ? h("table", {class: "table compact"}, h("tbody", {}, rows)) : h("p", {class: "muted"}, "No tools are registered."),
      h("span", {class: "hint"}, "Other entries (client tools, JSON list)"), others.input),
    fill: (entries) => {
      for (const select of modes.values()) select.value = "off";
      fields.clear();
      order = (entries || []).map((entry) => (typeof entry === "string" ? entry : entry.name));
      const rest = [];
      for (const entry of entries || []) {
        const name = typeof entry === "string" ? entry : entry.name;
        const server = typeof entry === "string" || !entry.type || entry.type === "function";
        if (!server || !modes.has(name)) { rest.push(entry); continue; }
        let mode = "on";
        if (typeof entry === "object" && entry.requires_confirmation) mode = "confirm";
        if (typeof entry === "object" && entry.requires_user_input) {
          mode = "input";
          if (entry.user_input_fields) fields.set(name, entry.user_input_fields);
        }
        modes.get(name).value = mode;
      }
      others.fill(rest.length ? rest : null);
    },
    read: () => {
      const entries = [];
      for (const [name, select] of modes) {
        if (select.value === "on") entries.push(name);
        if (select.value === "confirm") entries.push({name, requires_confirmation: true});
        if (select.value === "input") {
          const entry = {name, requires_user_input: true};
          if (fields.has(name)) entry.user_input_fields = fields.get(name);
          entries.push(entry);
        }
      }
      const rest = others.read();
      if (!Array.isArray(rest)) throw new FieldError("tools", "other entries must be a JSON list");
      const rank = (entry) => {
        const index = order.indexOf(typeof entry === "string" ? entry : entry.name);
        return index < 0 ? order.length : index;
      };
      return entries.concat(rest).map((entry, index) => [rank(entry), index, entry])
        .sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, , entry]) => entry);
    },
  };
}

function handoffsField(agents) {
  const box = h("div", {class: "checks"});
  let self = null;
  const render = (chosen) => {
    const ids = [...new Set([...agents.map((agent) => agent.id), ...chosen])].filter((id) => id !== self);
    box.replaceChildren(...ids.map((id) => h("label", {class: "inline"},
      h("input", {type: "checkbox", name: "handoffs", value: id, checked: chosen.includes(id)}), ` ${id}`)));
    if (!ids.length) box.append(h("span", {class: "muted"}, "no other agents"));
  };
  return {
    input: box,
    setSelf: (id) => { self = id; },
    fill: (value) => render(value || []),
    read: () => [...box.querySelectorAll("input:checked")].map((input) => input.value),
  };
}

/** The form: `fill(definition)`, `read()`, `showErrors(errors)`. */
export class AgentForm {
  constructor({catalog, agents}) {
    this.base = {};
    const fields = {
      id: [textField("id", {placeholder: "generated when empty"}), "Id", "a slug: a-z, 0-9, _ and -"],
      name: [textField("name"), "Name"],
      description: [textField("description"), "Description"],
      instructions: [instructionsField(), "Instructions"],
      model: [modelField(), "Model", "provider:name, e.g. test:tools (calls each tool once)"],
      model_settings: [jsonField("model_settings", {}), "Model settings", 'JSON, e.g. {"temperature": 0.2}'],
      tools: [toolsField(catalog), "Tools"],
      handoffs: [handoffsField(agents), "Handoffs"],
      max_turns: [numberField("max_turns"), "Max turns"],
      history: [historyField(), "History"],
      output_schema: [jsonField("output_schema", null, 5), "Output schema", "JSON Schema for structured output"],
      input_guardrails: [jsonField("input_guardrails", []), "Input guardrails", "JSON list"],
      output_guardrails: [jsonField("output_guardrails", []), "Output guardrails", "JSON list"],
      metadata: [jsonField("metadata", {}), "Metadata", "JSON object"],
    };
    this.fields = new Map();
    this.el = h("form", {class: "agent-form", novalidate: true});
    for (const [key, [field, label, hint]] of Object.entries(fields)) {
      const error = h("p", {class: "field-error", dataset: {errorFor: key}, role: "alert", hidden: true});
      field.error = error;
      this.fields.set(key, field);
      this.el.append(h("div", {class: "field", dataset: {field: key}},
        h("label", {class: "field-label", for: `agent-field-${key}`}, label),
        field.input, hint ? h("small", {class: "hint"}, hint) : null, error));
      const control = field.control || (field.input.matches("input, textarea, select") ? field.input : null);
      if (control) control.id = `agent-field-${key}`;
    }
  }

  /** Shows `definition`; `creating` lets the id be chosen. */
  fill(definition, creating) {
    this.base = editable(definition);
    this.fields.get("handoffs").setSelf(definition.id || null);
    for (const [key, field] of this.fields) field.fill(definition[key]);
    const id = this.fields.get("id").input;
    id.disabled = !creating;
    this.clearErrors();
  }

  /** The definition the form shows (fields it has no input for are kept). */
  read() {
    const result = {...this.base};
    for (const [key, field] of this.fields) {
      const value = field.read();
      if (value === undefined) delete result[key];
      else result[key] = value;
    }
    if (!result.id) delete result.id;
    return result;
  }

  clearErrors() {
    for (const field of this.fields.values()) {
      field.error.hidden = true;
      field.error.textContent = "";
      field.input.classList.remove("invalid");
    }
  }

  /** Puts each error under its field; returns those that name no field here. */
  showErrors(errors) {
    const unplaced = [];
    for (const error of errors) {
      const loc = (error.loc || []).filter((part) => part !== "body");
      const field = this.fields.get(String(loc[0]));
      if (!field) { unplaced.push(error); continue; }
      const where = loc.length > 1 ? `${loc.slice(1).join(".")}: ` : "";
      field.error.append(field.error.textContent ? "\n" : "", `${where}${error.msg}`);
      field.error.hidden = false;
      field.input.classList.add("invalid");
    }
    return unplaced;
  }
}
