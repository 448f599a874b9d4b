// Runs one AG-UI run against agentd with @ag-ui/client's HttpAgent and prints
// what the client saw as JSON: every event (after the client's own checks of
// the event sequence), its messages and state, the pending interrupts, and the
// error, if any.
//
// node agui.mjs '<scenario JSON>'
//   url, threadId, runId, messages, state, tools, context, forwardedProps,
//   resume, headers: the run's input and request headers.
//   cutAfter: drop the connection after this many SSE frames; with
//   reconnect, the same agent then sends the same run again with
//   Last-Event-ID (the last id it saw), as a client resuming its stream does.
import { HttpAgent } from "@ag-ui/client";

const scenario = JSON.parse(process.argv[2]);
let lastEventId = null;
let frames = 0;

// A fetch that reads the SSE ids going by, and drops the connection after
// `cutAfter` frames the way a network failure would.
async function watchingFetch(url, init) {
  const controller = new AbortController();
  const response = await fetch(url, { ...init, signal: controller.signal });
  if (!response.body) return response;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let cut = false;
  const body = new ReadableStream({
    async pull(sink) {
      if (cut) {
        // Only now: what was passed before the cut is read first.
        controller.abort();
        return sink.error(new TypeError("network connection lost"));
      }
      const { done, value } = await reader.read();
      if (done) return sink.close();
      buffered += decoder.decode(value, { stream: true });
      const blocks = buffered.split("\n\n");
      buffered = blocks.pop();
      let passed = "";
      for (const block of blocks) {
        if (scenario.cutAfter != null && frames >= scenario.cutAfter) {
          cut = true;
          break;
        }
        const id = block.split("\n").find((line) => line.startsWith("id:"));
        if (id) lastEventId = id.slice(3).trim();
        if (block.split("\n").some((line) => line.startsWith("data:"))) frames += 1;
        passed += block + "\n\n";
      }
      sink.enqueue(new TextEncoder().encode(passed));
    },
    cancel() {
      controller.abort();
    },
  });
  return new Response(body, { status: response.status, headers: response.headers });
}

const agent = new HttpAgent({
  url: scenario.url,
  threadId: scenario.threadId,
  initialMessages: scenario.messages ?? [],
  initialState: scenario.state ?? {},
  headers: scenario.headers ?? {},
  fetch: watchingFetch,
});
// A dropped connection also rejects promises nobody awaits: the outcome is read below.
process.on("unhandledRejection", () => {});

async function run() {
  const events = [];
  let error = null;
  try {
    await agent.runAgent(
      {
        runId: scenario.runId,
        tools: scenario.tools ?? [],
        context: scenario.context ?? [],
        forwardedProps: scenario.forwardedProps,
        resume: scenario.resume,
      },
      { onEvent: ({ event }) => void events.push(event) },
    );
  } catch (exc) {
    error = { message: String(exc?.message ?? exc), status: exc?.status ?? null };
  }
  return { events, error, lastEventId };
}

const first = await run();
let resumed = null;
if (scenario.reconnect && lastEventId != null) {
  scenario.cutAfter = null;
  agent.headers = { ...agent.headers, "Last-Event-ID": lastEventId };
  resumed = await run();
}
process.stdout.write(
  JSON.stringify({
    ...first,
    resumed,
    messages: agent.messages,
    state: agent.state,
    pendingInterrupts: agent.pendingInterrupts,
  }),
);
process.exit(0);
