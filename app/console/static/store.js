// store.js owns what the console keeps across a reload of the tab: the run
// it is following (run id, session, agent, the input sent) and every event of
// that run seen so far, in sessionStorage. After a reload the chat renders
// those events and asks the server only for what came after the last seq.

const ACTIVE = "agentd.console.active";
const EVENT = "agentd.console.event.";

function read(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key));
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    sessionStorage.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false; // quota: the reload then replays the run from its first event
  }
}

/** The followed run: {runId, sessionId, agentId, input, lastSeq, complete}. */
export function activeRun() {
  return read(ACTIVE);
}

/** Starts keeping `run` ({runId, sessionId, agentId, input}) with the events seen so far. */
export function follow(run, events = []) {
  const current = activeRun();
  if (current) forget(current.runId);
  let lastSeq = 0;
  let complete = true;
  for (const event of events) {
    if (event.seq !== lastSeq + 1) break;
    complete = complete && write(`${EVENT}${run.runId}.${event.seq}`, event);
    lastSeq = event.seq;
  }
  write(ACTIVE, {...run, lastSeq, complete});
}

/** Keeps one event of the followed run (one key per seq: no rewriting of the rest). */
export function remember(runId, event) {
  const current = activeRun();
  if (!current || current.runId !== runId || event.seq !== current.lastSeq + 1) return;
  const kept = current.complete && write(`${EVENT}${runId}.${event.seq}`, event);
  write(ACTIVE, {...current, lastSeq: event.seq, complete: kept});
}

/** The kept events of the followed run, or null when some are missing. */
export function keptEvents(runId) {
  const current = activeRun();
  if (!current || current.runId !== runId || !current.complete) return null;
  const events = [];
  for (let seq = 1; seq <= current.lastSeq; seq += 1) {
    const event = read(`${EVENT}${runId}.${seq}`);
    if (!event) return null;
    events.push(event);
  }
  return events;
}

export function forget(runId) {
  const current = activeRun();
  if (!current || current.runId !== runId) return;
  for (let seq = 1; seq <= current.lastSeq; seq += 1) sessionStorage.removeItem(`${EVENT}${runId}.${seq}`);
  sessionStorage.removeItem(ACTIVE);
}
