// chat.js owns the chat view: one session's runs in order, each replayed
// from its stored events and followed live (GET /v1/runs/{id}/events, resumed
// with ?after= and Last-Event-ID after a reload or a dropped stream), sending
// a message as a streamed run, continuing a paused run, and cancelling.

import {api, ApiError, seg} from "./api.js";
import {byId, h, newSessionId} from "./dom.js";
import {isEnd, RunView} from "./run-view.js";
import {messageText, refreshSession, showSession} from "./session-panel.js";
import {readMessages} from "./sse.js";
import * as store from "./store.js";

const RUN_LIMIT = 20; // runs of a session shown, newest last
const ACTIVE = new Set(["queued", "running"]);

const state = {
  sessionId: null,
  abort: new AbortController(), // aborted when another session opens
  current: null, // the newest run that is not over: what Cancel cancels
};

export function initChat(notify) {
  byId("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendPrompt().catch((error) => notify(String(error)));
  });
  byId("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) byId("composer").requestSubmit();
  });
  byId("cancel").addEventListener("click", () => cancel().catch((error) => notify(error.describe ? error.describe() : String(error))));
  byId("chat-new").addEventListener("click", () => openSession(newSessionId()));
  byId("chat-open").addEventListener("click", () => openSession(byId("chat-session").value.trim() || newSessionId()));
  byId("chat-agent").addEventListener("change", writeHash);
}

/** Shows the chat for the hash's `session` (and `agent`), or the run kept across a reload. */
export async function showChat(params) {
  await loadAgents(params.get("agent"));
  const kept = store.activeRun();
  const wanted = params.get("session") || (kept && kept.sessionId) || state.sessionId || newSessionId();
  if (wanted !== state.sessionId) await openSession(wanted);
}

async function loadAgents(preferred) {
  const select = byId("chat-agent");
  const chosen = preferred || select.value;
  const agents = [];
  for (let cursor = null, more = true; more;) {
    const page = await api.get(`/v1/agents?limit=200${cursor ? `&cursor=${seg(cursor)}` : ""}`);
    agents.push(...page.data);
    cursor = page.next_cursor;
    more = Boolean(cursor);
  }
  select.replaceChildren(...agents.map((agent) =>
    h("option", {value: agent.id}, agent.name ? `${agent.name} (${agent.id})` : agent.id)));
  if (!agents.length) select.append(h("option", {value: ""}, "no agents yet"));
  if (chosen && agents.some((agent) => agent.id === chosen)) select.value = chosen;
}

function writeHash() {
  const params = new URLSearchParams({session: state.sessionId});
  if (byId("chat-agent").value) params.set("agent", byId("chat-agent").value);
  history.replaceState(null, "", `#chat?${params}`);
}

function setCurrent(view) {
  state.current = view;
  byId("cancel").disabled = !view;
  byId("send").disabled = Boolean(view && ACTIVE.has(view.el.dataset.status || "queued"));
}

function newView(runId, input) {
  const view = new RunView({runId, input, onDecide: continueRun});
  if (runId) view.setRunId(runId);
  byId("runs").append(view.el);
  return view;
}

/** Opens a session: its runs replayed in order, the active one followed live. */
export async function openSession(sessionId) {
  state.abort.abort();
  state.abort = new AbortController();
  const signal = state.abort.signal;
  state.sessionId = sessionId;
  byId("chat-session").value = sessionId;
  byId("runs").replaceChildren();
  setCurrent(null);
  writeHash();
  let session = null;
  try {
    session = await api.get(`/v1/sessions/${seg(sessionId)}`);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  if (signal.aborted) return;
  showSession(sessionId, session);
  if (!session) return;
  if (session.agent_id && !new URLSearchParams(location.hash.split("?")[1]).get("agent")) {
    const select = byId("chat-agent");
    if ([...select.options].some((option) => option.value === session.agent_id)) select.value = session.agent_id;
    writeHash();
  }
  const shown = session.run_ids.slice(-RUN_LIMIT);
  if (shown.length < session.run_ids.length) {
    byId("runs").append(h("p", {class: "muted"}, `${session.run_ids.length - shown.length} earlier runs are not shown.`));
  }
  for (const runId of shown) {
    if (signal.aborted) return;
    await reopenRun(runId, signal);
  }
}

async function reopenRun(runId, signal) {
  const view = newView(runId, null);
  let run;
  try {
    run = await api.get(`/v1/runs/${seg(runId)}`);
  } catch (error) {
    view.problem(error.describe ? error.describe() : String(error));
    return;
  }
  const followed = store.activeRun();
  const input = inputOf(run) || (followed && followed.runId === runId ? followed.input : "");
  view.setInput(input);
  view.setStatus(run.status);
  const kept = store.keptEvents(runId);
  if (kept) {
    view.followed = {sessionId: state.sessionId, agentId: run.agent_id, input};
    for (const event of kept) view.apply(event);
  }
  if (ACTIVE.has(run.status) || run.status === "paused") setCurrent(view);
  const following = track(view, signal);
  if (!ACTIVE.has(run.status)) await following; // replays end at once; a live one goes on
}

/** The text the user sent: the run's leading user messages. */
function inputOf(run) {
  const texts = [];
  for (const message of run.messages || []) {
    if (message.role === "system" || message.role === "developer") continue;
    if (message.role !== "user") break;
    texts.push(messageText(message));
  }
  return texts.join("\n");
}

async function sendPrompt() {
  const prompt = byId("prompt");
  const text = prompt.value.trim();
  const agentId = byId("chat-agent").value;
  if (!text || !agentId) return;
  if (!state.sessionId) await openSession(newSessionId());
  prompt.value = "";
  const signal = state.abort.signal;
  const view = newView(null, text);
  view.followed = {sessionId: state.sessionId, agentId, input: text};
  setCurrent(view);
  view.el.scrollIntoView({block: "end"});
  let response;
  try {
    const body = {input: text, session_id: state.sessionId, stream: true, stream_events: true};
    response = await api.stream("POST", `/v1/agents/${seg(agentId)}/runs`, body, {signal});
  } catch (error) {
    view.setStatus("refused");
    view.problem(error.describe ? error.describe() : String(error), error.code || "");
    setCurrent(null);
    return;
  }
  await track(view, signal, response);
}

async function continueRun(view, decisions) {
  const signal = state.abort.signal;
  const body = {tools: decisions, stream: true, stream_events: true};
  const response = await api.stream("POST", `/v1/runs/${seg(view.runId)}/continue`, body, {signal});
  view.followed = view.followed || {sessionId: state.sessionId, agentId: byId("chat-agent").value, input: ""};
  store.follow({...view.followed, runId: view.runId}, view.events);
  view.setStatus("running");
  setCurrent(view);
  track(view, signal, response);
}

async function cancel() {
  const view = state.current;
  if (!view || !view.runId) return;
  await api.post(`/v1/runs/${seg(view.runId)}/cancel`);
  if (!view.tracking) track(view, state.abort.signal); // a paused run has no open stream
}

/** Follows the run until it ends or pauses, reconnecting after the last seq
 * seen whenever the stream drops; then shows its status and metrics. */
async function track(view, signal, response = null) {
  view.tracking = true;
  let failures = 0;
  try {
    for (;;) {
      const result = response ? await consume(view, response, signal) : await followOnce(view, signal);
      response = null;
      if (signal.aborted) return;
      if (result.stop) {
        if (state.current === view) setCurrent(null);
        return;
      }
      if (isEnd(result.last)) break;
      if (result.failed) {
        failures += 1;
        if (failures > 30) return view.problem("The run's event stream is lost.", "stream_lost");
        await sleep(Math.min(300 * failures, 3000));
      } else if (result.received === 0) {
        const run = await api.get(`/v1/runs/${seg(view.runId)}`);
        if (!ACTIVE.has(run.status)) break;
        await sleep(500);
      }
    }
    await conclude(view, signal);
  } finally {
    view.tracking = false;
  }
}

async function followOnce(view, signal) {
  const after = view.lastSeq;
  const query = after ? `?after=${after}` : "";
  const path = `/v1/runs/${seg(view.runId)}/events${query}`;
  let response;
  try {
    response = await api.stream("GET", path, undefined, {lastEventId: after || undefined, signal});
  } catch (error) {
    if (!(error instanceof ApiError)) return {failed: true, received: 0, last: null};
    view.problem(error.describe(), error.code);
    return {stop: true};
  }
  if (after) view.reattached(after);
  return consume(view, response, signal);
}

async function consume(view, response, signal) {
  const result = {last: null, received: 0, failed: false};
  if (response.status === 204) return result;
  try {
    for await (const message of readMessages(response)) {
      if (signal.aborted) break;
      const event = parseEvent(message);
      if (!event) continue;
      result.received += 1;
      result.last = event.event;
      if (view.apply(event)) keep(view, event);
      if (event.event === "RunStarted" && view === state.current) setCurrent(view);
    }
  } catch {
    result.failed = !signal.aborted;
  }
  return result;
}

function parseEvent(message) {
  let event;
  try {
    event = JSON.parse(message.data);
  } catch {
    return null;
  }
  if (!event || typeof event !== "object") return null;
  if (!event.event) event.event = message.event;
  if (typeof event.seq !== "number" && message.id) event.seq = Number(message.id);
  return event;
}

/** Keeps the events of a run this tab follows, so a reload misses none of them. */
function keep(view, event) {
  if (!view.followed || !view.runId) return;
  const kept = store.activeRun();
  if (kept && kept.runId === view.runId) store.remember(view.runId, event);
  else store.follow({...view.followed, runId: view.runId}, view.events);
}

async function conclude(view, signal) {
  let run;
  try {
    run = await api.get(`/v1/runs/${seg(view.runId)}`);
  } catch {
    return;
  }
  if (signal.aborted) return;
  view.finish(run);
  if (!ACTIVE.has(run.status)) store.forget(view.runId);
  if (state.current === view) setCurrent(run.status === "paused" ? view : null);
  refreshSession();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
