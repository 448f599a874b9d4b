// run-view.js owns showing one run: its input, then every event in seq order
// (streamed text, folded reasoning, tool calls with arguments and results,
// handoffs, guardrail trips, custom events, memories and summaries, hooks,
// errors with their code, unknown events as their JSON), the requirements of a
// pause, the raw event log, and the run's metrics.

import {fold, formatSeconds, h, pretty} from "./dom.js";
import {renderRequirements} from "./hitl.js";

const END_EVENTS = new Set(["RunCompleted", "RunError", "RunCancelled", "RunPaused"]);
const BASE_FIELDS = new Set(["event", "seq", "run_id", "session_id", "agent_id", "created_at"]);

export class RunView {
  /** `onDecide(view, decisions)` continues the run once its requirements are answered. */
  constructor({runId = null, input = null, onDecide}) {
    this.runId = runId;
    this.lastSeq = 0;
    this.count = 0;
    this.events = []; // every event shown, in order (kept across a reload while followed)
    this.followed = null; // {sessionId, agentId, input} when this tab started or continued it
    this.tracking = false; // a stream of it is being read
    this.onDecide = onDecide;
    this.tools = new Map();
    this.block = null; // the text block RunContent and reasoning steps go on adding to
    this.status = h("span", {class: "badge", dataset: {status: "queued"}}, "queued");
    this.ident = h("code", {class: "run-id"}, runId || "");
    this.about = h("span", {class: "muted"});
    this.resumed = h("span", {class: "resumed", hidden: true});
    this.body = h("div", {class: "run-body"});
    this.metrics = h("div", {class: "metrics"});
    this.log = h("ol", {class: "event-log"});
    this.logBox = fold("Events (0)", this.log, {cls: "event-log-box"});
    this.el = h("article", {class: "run", dataset: {lastSeq: "0", events: "0"}},
      h("header", {class: "run-head"}, this.status, this.ident, this.about, this.resumed),
      h("div", {class: "user-input"}),
      this.body, this.metrics, this.logBox);
    this.setInput(input);
    this.setStatus("queued");
  }

  setInput(input) {
    const box = this.el.querySelector(".user-input");
    box.replaceChildren();
    if (input !== null && input !== undefined && input !== "") box.append(pretty(input));
    box.hidden = !box.textContent;
  }

  setRunId(runId) {
    this.runId = runId;
    this.el.dataset.runId = runId;
    this.ident.textContent = runId;
  }

  setStatus(status) {
    this.status.dataset.status = status;
    this.status.textContent = status;
    this.el.dataset.status = status;
  }

  /** Says the run's stream was picked up again after event `seq`. */
  reattached(seq) {
    this.resumed.hidden = false;
    this.resumed.dataset.after = String(seq);
    this.resumed.textContent = `re-attached after event ${seq}`;
  }

  /** A problem that is not an event of the run (a refused request, a lost stream). */
  problem(text, code = "") {
    this.add(h("div", {class: "item error", dataset: {code}}, text));
  }

  note(text) {
    this.add(h("div", {class: "item note"}, text));
  }

  add(node) {
    this.block = null;
    this.body.append(node);
    return node;
  }

  /** Shows one event; events already shown (seq at or below the last) are skipped. */
  apply(event) {
    if (typeof event.seq === "number") {
      if (event.seq <= this.lastSeq) return false;
      if (event.seq !== this.lastSeq + 1) {
        this.problem(`events ${this.lastSeq + 1}–${event.seq - 1} were not received`, "gap");
      }
      this.lastSeq = event.seq;
    }
    if (event.run_id && !this.runId) this.setRunId(event.run_id);
    this.count += 1;
    this.events.push(event);
    this.el.dataset.lastSeq = String(this.lastSeq);
    this.el.dataset.events = String(this.count);
    this.logEvent(event);
    const render = RENDERERS[event.event] || renderGeneric;
    render(this, event);
    return true;
  }

  logEvent(event) {
    const line = h("li", {dataset: {seq: event.seq ?? "", event: event.event}});
    const summary = `${event.seq ?? "–"} ${event.event}`;
    const details = fold(summary, null);
    details.addEventListener("toggle", () => {
      if (details.open && details.childElementCount === 1) details.append(h("pre", {}, pretty(event)));
    });
    line.append(details);
    this.log.append(line);
    this.logBox.querySelector("summary").textContent = `Events (${this.count})`;
  }

  /** The text block of `kind` at the end of the run, made when the last item is another. */
  textBlock(kind, label) {
    if (this.block && this.block.dataset.kind === kind) return this.block.querySelector(".text");
    const text = h("div", {class: "text"});
    const node = kind === "reasoning"
      ? fold(label, text, {cls: "item reasoning"})
      : h("div", {class: `item ${kind}`}, label ? h("div", {class: "label"}, label) : null, text);
    node.dataset.kind = kind;
    this.body.append(node);
    this.block = node;
    return text;
  }

  /** The run's status and metrics from its RunOutput. */
  finish(run) {
    this.setStatus(run.status);
    const m = run.metrics || {};
    this.metrics.replaceChildren(
      metric("tokens", `${m.input_tokens ?? 0} in · ${m.output_tokens ?? 0} out · ${m.total_tokens ?? 0} total`),
      metric("first token", formatSeconds(m.time_to_first_token)),
      metric("duration", formatSeconds(m.duration)),
      metric("model calls", String(m.model_calls ?? 0)),
      metric("tool calls", String(m.tool_calls ?? 0)),
    );
    this.metrics.dataset.ready = "true";
  }

  get ended() {
    const status = this.el.dataset.status;
    return status === "completed" || status === "error" || status === "cancelled";
  }
}

function metric(name, value) {
  return h("span", {class: "metric", dataset: {metric: name}}, h("span", {class: "muted"}, `${name} `), value);
}

function row(view, cls, label, detail) {
  const node = h("div", {class: `item ${cls}`}, h("span", {class: "label"}, label));
  if (detail === undefined || detail === null || detail === "") return view.add(node);
  const compact = typeof detail === "string" ? detail : JSON.stringify(detail);
  if (compact.length <= 100) node.append(" ", h(typeof detail === "string" ? "span" : "code", {}, compact));
  else node.append(fold("details", h("pre", {}, pretty(detail))));
  return view.add(node);
}

function extraFields(event) {
  const rest = {};
  for (const [key, value] of Object.entries(event)) if (!BASE_FIELDS.has(key)) rest[key] = value;
  return rest;
}

function renderGeneric(view, event) {
  const rest = extraFields(event);
  const hook = rest.hook_name ? ` ${rest.hook_name}` : "";
  row(view, "generic", `${event.event}${hook}`, Object.keys(rest).length ? rest : null);
}

function renderTool(view, tool, done) {
  let entry = view.tools.get(tool.tool_call_id);
  if (!entry) {
    const args = h("pre", {class: "tool-args"}, pretty(tool.tool_args ?? {}));
    const result = h("pre", {class: "tool-result"}, "…");
    const state = h("span", {class: "badge"});
    const node = view.add(h("details", {class: "item tool", open: true, dataset: {toolCallId: tool.tool_call_id, tool: tool.tool_name}},
      h("summary", {}, h("span", {class: "label"}, `tool ${tool.tool_name}`), " ", state),
      h("div", {class: "tool-io"},
        h("div", {}, h("div", {class: "muted"}, "arguments"), args),
        h("div", {}, h("div", {class: "muted"}, "result"), result))));
    entry = {node, args, result, state};
    view.tools.set(tool.tool_call_id, entry);
  }
  const status = tool.status || (done ? "completed" : "running");
  entry.state.textContent = status;
  entry.state.dataset.status = status;
  entry.node.dataset.status = status;
  if (tool.tool_args) entry.args.textContent = pretty(tool.tool_args);
  if (done || status !== "running") {
    const result = tool.error ? `error: ${tool.error}` : pretty(tool.result ?? null);
    entry.result.textContent = status === "pending" ? "waiting for a decision" : result;
  }
}

const RENDERERS = {
  RunStarted(view, e) {
    view.setStatus("running");
    view.about.textContent = `${e.agent_name || e.agent_id} v${e.agent_version ?? "?"} · ${e.model || ""}`;
  },
  RunContent(view, e) {
    view.textBlock("answer").append(pretty(e.content));
  },
  RunIntermediateContent(view, e) {
    view.textBlock("intermediate", "intermediate").append(pretty(e.content));
  },
  RunContentCompleted(view, e) {
    const text = view.block && view.block.dataset.kind === "answer" ? view.block.querySelector(".text") : null;
    if (!text && e.content !== null && e.content !== undefined && e.content !== "") view.textBlock("answer").append(pretty(e.content));
    view.block = null;
  },
  ReasoningStarted(view) {
    view.textBlock("reasoning", "Reasoning");
  },
  ReasoningStep(view, e) {
    view.textBlock("reasoning", "Reasoning").append(e.reasoning_content || "");
  },
  ReasoningCompleted(view, e) {
    const text = view.textBlock("reasoning", "Reasoning");
    if (!text.textContent && e.reasoning_content) text.append(e.reasoning_content);
    view.block = null;
  },
  ToolCallStarted: (view, e) => renderTool(view, e.tool, false),
  ToolCallCompleted: (view, e) => renderTool(view, e.tool, true),
  AgentHandoff: (view, e) => row(view, "handoff", "handoff", `${e.from_agent_id} → ${e.to_agent_id}`),
  GuardrailTripped(view, e) {
    const node = row(view, "guardrail", `guardrail ${e.guardrail} tripped`, `(${e.guardrail_type}, ${e.stage}) ${e.message || ""}`);
    if (e.output_info !== null && e.output_info !== undefined) node.append(fold("output info", h("pre", {}, pretty(e.output_info))));
  },
  CustomEvent: (view, e) => row(view, "custom", `custom event ${e.name}`, e.data ?? null),
  MemoryUpdateCompleted: (view, e) => row(view, "memory", "memories updated", e.memories ?? null),
  SessionSummaryCompleted: (view, e) => row(view, "summary", "session summary", e.session_summary ?? null),
  RunPaused(view, e) {
    view.setStatus("paused");
    for (const tool of e.tools || []) renderTool(view, tool, false);
    view.add(renderRequirements(e.requirements || [], (decisions) => view.onDecide(view, decisions)));
  },
  RunContinued(view, e) {
    view.setStatus("running");
    for (const form of view.body.querySelectorAll("form.requirements")) form.dataset.answered = "true";
    row(view, "note", "continued", e.reason || "");
  },
  RunError(view, e) {
    view.setStatus("error");
    const error = e.error || {};
    view.add(h("div", {class: "item error", dataset: {code: error.code || ""}},
      h("span", {class: "label"}, error.code || "error"), ` ${error.message || e.content || ""}`));
  },
  RunCancelled(view, e) {
    view.setStatus("cancelled");
    row(view, "cancelled", "cancelled", e.reason || "");
  },
  RunCompleted(view, e) {
    view.finish(e);
  },
};

export const isEnd = (name) => END_EVENTS.has(name);
