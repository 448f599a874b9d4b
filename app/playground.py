"""The playground at `/`: one self-contained page to talk to the stored agents.

It uses the public API only (list agents, stream a run with `stream_events`,
cancel it, keep the session for follow-ups), renders everything as text (never
as HTML), and sends the API key, when one is needed, from the browser's local
storage. Nothing is loaded from elsewhere: the page works offline and its
Content-Security-Policy lets it talk to this origin alone.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["playground"])

CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agentd playground</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 52rem; padding: 1rem; }
  header, form { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center; }
  #log { border: 1px solid #ccc; border-radius: 6px; min-height: 16rem; padding: .75rem;
         margin: .75rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
  .user { font-weight: 600; margin-top: .5rem; }
  .event { color: #666; font-size: 13px; }
  .error { color: #b00020; }
  #input { flex: 1; min-width: 12rem; padding: .4rem; }
  small { color: #666; }
</style>
</head>
<body>
<header>
  <strong>agentd playground</strong>
  <label>Agent <select id="agent"></select></label>
  <label>API key <input id="key" type="password" size="14" autocomplete="off"></label>
  <button id="new" type="button">New session</button>
  <small id="session"></small>
</header>
<div id="log" aria-live="polite"></div>
<form id="form">
  <input id="input" placeholder="Say something" autocomplete="off" required>
  <button id="send">Send</button>
  <button id="cancel" type="button" disabled>Cancel</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const log = $("log");
let sessionId = null;
let runId = null;

$("key").value = localStorage.getItem("agentd-key") || "";
$("key").addEventListener("change", () => {
  localStorage.setItem("agentd-key", $("key").value);
  loadAgents();
});

function headers() {
  const h = {"content-type": "application/json", "accept": "text/event-stream"};
  if ($("key").value) h["authorization"] = "Bearer " + $("key").value;
  return h;
}

function line(text, cls) {
  const div = document.createElement("div");
  if (cls) div.className = cls;
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

async function problem(response) {
  try {
    const body = await response.json();
    return body.detail || body.title || response.statusText;
  } catch (e) {
    return response.statusText;
  }
}

async function loadAgents() {
  const response = await fetch("/v1/agents?limit=200", {headers: headers()});
  if (!response.ok) { line("agents: " + await problem(response), "error"); return; }
  const select = $("agent");
  select.replaceChildren();
  for (const agent of (await response.json()).data) {
    const option = document.createElement("option");
    option.value = agent.id;
    option.textContent = agent.name ? agent.name + " (" + agent.id + ")" : agent.id;
    select.appendChild(option);
  }
}

function newSession() {
  // crypto.randomUUID needs a secure context; a playground is often served over plain http.
  sessionId = "pg-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
  $("session").textContent = "session " + sessionId;
  log.replaceChildren();
}

function show(name, data, answer) {
  const json = (value) => JSON.stringify(value);
  if (name === "RunStarted") {
    runId = data.run_id;
    $("cancel").disabled = false;
  } else if (name === "RunContent") {
    const text = data.content;
    answer.textContent += typeof text === "string" ? text : JSON.stringify(text, null, 2);
  } else if (name === "ToolCallStarted") {
    line("calls " + data.tool.tool_name + " " + json(data.tool.tool_args), "event");
  } else if (name === "ToolCallCompleted") {
    line(data.tool.tool_name + " -> " + json(data.tool.result), "event");
  } else if (name === "AgentHandoff") {
    line("handed over to " + data.to_agent_id, "event");
  } else if (name === "RunPaused") {
    line("paused: " + json(data.requirements), "event");
  } else if (name === "RunError") {
    line(data.error ? data.error.code + ": " + data.error.message : "error", "error");
  } else if (name === "RunCancelled") {
    line("cancelled", "event");
  }
}

async function send(text) {
  line("> " + text, "user");
  const answer = line("");
  const response = await fetch("/v1/agents/" + encodeURIComponent($("agent").value) + "/runs", {
    method: "POST",
    headers: headers(),
    body: JSON.stringify({input: text, session_id: sessionId, stream: true, stream_events: true}),
  });
  if (!response.ok) { line(await problem(response), "error"); return; }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += value.replace(/\\r\\n?/g, "\\n");
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const field of block.split("\\n")) {
        if (field.startsWith("event:")) name = field.slice(6).trim();
        else if (field.startsWith("data:")) data.push(field.slice(5).replace(/^ /, ""));
      }
      if (data.length) show(name, JSON.parse(data.join("\\n")), answer);
    }
  }
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("input").value;
  $("input").value = "";
  $("send").disabled = true;
  try { await send(text); }
  catch (e) { line(String(e), "error"); }
  finally { $("send").disabled = false; $("cancel").disabled = true; runId = null; }
});

$("cancel").addEventListener("click", async () => {
  if (!runId) return;
  const url = "/v1/runs/" + encodeURIComponent(runId) + "/cancel";
  await fetch(url, {method: "POST", headers: headers()});
});

$("new").addEventListener("click", newSession);
newSession();
loadAgents();
</script>
</body>
</html>
"""


@router.get("/", response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
async def playground() -> HTMLResponse:
    """A page to chat with the stored agents from a browser (streams with `stream_events`)."""
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})
