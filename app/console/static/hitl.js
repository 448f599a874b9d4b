// hitl.js owns a paused run's requirements: for each pending tool call a
// confirm/reject choice with a note, a form generated from its
// `user_input_schema`, or a result box for a client tool. It gathers the
// answers as the `tools` list of POST /v1/runs/{id}/continue.

import {fold, h, pretty} from "./dom.js";

/** The form for `requirements`; `submit(decisions)` sends them and may throw. */
export function renderRequirements(requirements, submit) {
  const readers = [];
  const problems = h("p", {class: "form-error", role: "alert", hidden: true});
  const button = h("button", {type: "submit"}, "Continue run");
  const form = h("form", {class: "item requirements", novalidate: true},
    h("div", {class: "label"}, `The run waits for ${requirements.length} answer${requirements.length === 1 ? "" : "s"}`));
  for (const requirement of requirements) {
    const part = REQUIREMENTS[requirement.kind] || resultBox;
    const {node, read} = part(requirement);
    node.classList.add("requirement");
    node.dataset.toolCallId = requirement.tool_call_id;
    node.dataset.kind = requirement.kind;
    form.append(node);
    readers.push(read);
  }
  form.append(problems, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.dataset.answered) return;
    problems.hidden = true;
    let decisions;
    try {
      decisions = readers.map((read) => read());
    } catch (error) {
      return showProblem(problems, error.message);
    }
    button.disabled = true;
    try {
      form.dataset.answered = "true";
      await submit(decisions);
    } catch (error) {
      delete form.dataset.answered;
      showProblem(problems, error.describe ? error.describe() : String(error));
    } finally {
      button.disabled = Boolean(form.dataset.answered);
    }
  });
  return form;
}

function showProblem(node, text) {
  node.textContent = text;
  node.hidden = false;
}

function heading(requirement, what) {
  return h("div", {class: "requirement-head"},
    h("span", {class: "label"}, `${what}: ${requirement.tool_name}`),
    fold("arguments", h("pre", {}, pretty(requirement.tool_args ?? {}))));
}

function confirmation(requirement) {
  const name = `confirm-${requirement.tool_call_id}`;
  const yes = h("input", {type: "radio", name, value: "confirm", class: "confirm"});
  const no = h("input", {type: "radio", name, value: "reject", class: "reject"});
  const note = h("input", {type: "text", class: "note", placeholder: "note for the model (when rejecting)"});
  const node = h("fieldset", {}, heading(requirement, "Confirm"),
    h("label", {class: "inline"}, yes, " Confirm"),
    h("label", {class: "inline"}, no, " Reject"),
    note);
  const read = () => {
    if (!yes.checked && !no.checked) throw new Error(`Confirm or reject ${requirement.tool_name}.`);
    const decision = {tool_call_id: requirement.tool_call_id, confirmed: yes.checked};
    if (no.checked && note.value.trim()) decision.note = note.value.trim();
    return decision;
  };
  return {node, read};
}

function userInput(requirement) {
  const schema = requirement.user_input_schema || {type: "object", properties: {}};
  const fields = Object.entries(schema.properties || {}).map(([name, property]) =>
    schemaField(name, property, (schema.required || []).includes(name)));
  const node = h("fieldset", {}, heading(requirement, "Input for"), fields.map((field) => field.node));
  const read = () => {
    const values = {};
    for (const field of fields) {
      const value = field.read();
      if (value !== undefined) values[field.name] = value;
    }
    return {tool_call_id: requirement.tool_call_id, user_input: values};
  };
  return {node, read};
}

function resultBox(requirement) {
  const box = h("textarea", {class: "result", rows: 3, spellcheck: "false", placeholder: "the tool's result (JSON or text)"});
  const node = h("fieldset", {}, heading(requirement, "Run client tool"), box);
  const read = () => ({tool_call_id: requirement.tool_call_id, result: parseLoose(box.value)});
  return {node, read};
}

const REQUIREMENTS = {confirmation, user_input: userInput, external_execution: resultBox};

/** JSON when the text is JSON, else the text itself. */
function parseLoose(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function typeOf(property) {
  let type = property.type;
  if (!type && Array.isArray(property.anyOf)) type = property.anyOf.map((option) => option.type);
  if (Array.isArray(type)) type = type.find((kind) => kind !== "null");
  return type || "any";
}

/** One input for a schema property: text, number, checkbox, select, or JSON. */
export function schemaField(name, property, required) {
  const type = typeOf(property);
  const title = property.title || name;
  let input;
  let read;
  if (Array.isArray(property.enum)) {
    input = h("select", {name}, required ? null : h("option", {value: ""}, "–"),
      property.enum.map((value, index) => h("option", {value: String(index)}, pretty(value))));
    read = () => (input.value === "" ? undefined : property.enum[Number(input.value)]);
  } else if (type === "boolean") {
    input = h("input", {type: "checkbox", name, checked: property.default === true});
    read = () => input.checked;
  } else if (type === "integer" || type === "number") {
    input = h("input", {type: "number", name, step: type === "integer" ? "1" : "any", value: property.default ?? ""});
    read = () => {
      if (input.value.trim() === "") return required ? fail(`${title} is required.`) : undefined;
      const value = Number(input.value);
      if (Number.isNaN(value) || (type === "integer" && !Number.isInteger(value))) fail(`${title} must be ${type === "integer" ? "an integer" : "a number"}.`);
      return value;
    };
  } else if (type === "string") {
    input = h("input", {type: "text", name, value: property.default ?? ""});
    read = () => (input.value === "" && !required ? undefined : input.value);
  } else {
    input = h("textarea", {name, rows: 3, spellcheck: "false", placeholder: "JSON", value: property.default === undefined ? "" : JSON.stringify(property.default)});
    read = () => {
      if (input.value.trim() === "") return required ? fail(`${title} is required.`) : undefined;
      try {
        return JSON.parse(input.value);
      } catch {
        return fail(`${title} must be JSON.`);
      }
    };
  }
  const label = h("label", {class: "field"}, h("span", {}, `${title}${required ? " *" : ""}`), input,
    property.description ? h("small", {class: "hint"}, property.description) : null);
  return {name, node: label, read};
}

function fail(message) {
  throw new Error(message);
}
