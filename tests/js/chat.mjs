// Drives a chat against agentd with the `ai` package's client: AbstractChat
// (what useChat is built on) over DefaultChatTransport, and prints what the
// client saw as JSON: its messages and status after each step, every UI
// message chunk the transport read, and the error, if any.
//
// node chat.mjs '<scenario JSON>'
//   api: the chat endpoint; id: the chat id; messages: the chat's messages;
//   steps: what the user does, in order:
//     {"send": "text"}                      sendMessage({text})
//     {"approve": true|false, "reason"?}    answers each approval request, then sends
//     {"output": <value>}                   answers each client tool call, then sends
//     {"resume": true}                      resumeStream(): re-attach to the active run
import { AbstractChat, DefaultChatTransport } from "ai";

const scenario = JSON.parse(process.argv[2]);
const chunks = [];

class RecordingTransport extends DefaultChatTransport {
  processResponseStream(stream) {
    return super.processResponseStream(stream).pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          chunks.push(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
  }
}

class State {
  constructor(messages) {
    this.status = "ready";
    this.error = undefined;
    this.messages = messages;
  }
  pushMessage(message) {
    this.messages = [...this.messages, message];
  }
  popMessage() {
    this.messages = this.messages.slice(0, -1);
  }
  replaceMessage(index, message) {
    this.messages = this.messages.map((old, at) => (at === index ? this.snapshot(message) : old));
  }
  snapshot(thing) {
    return structuredClone(thing);
  }
}

class Chat extends AbstractChat {
  constructor(options) {
    super({ ...options, state: new State(options.messages ?? []) });
  }
}

const chat = new Chat({
  id: scenario.id,
  messages: scenario.messages ?? [],
  transport: new RecordingTransport({ api: scenario.api }),
});

function toolParts() {
  const last = chat.messages.at(-1);
  const parts = last?.role === "assistant" ? last.parts : [];
  return parts.filter((part) => part.type.startsWith("tool-") || part.type === "dynamic-tool");
}

const steps = [];
for (const step of scenario.steps ?? []) {
  if (step.send != null) {
    await chat.sendMessage({ text: step.send });
  } else if (step.approve != null) {
    for (const part of toolParts().filter((part) => part.state === "approval-requested")) {
      await chat.addToolApprovalResponse({
        id: part.approval.id,
        approved: step.approve,
        reason: step.reason,
      });
    }
    await chat.sendMessage();
  } else if (step.output !== undefined) {
    for (const part of toolParts().filter((part) => part.state === "input-available")) {
      await chat.addToolOutput({
        tool: part.type.slice(5),
        toolCallId: part.toolCallId,
        output: step.output,
      });
    }
    await chat.sendMessage();
  } else if (step.resume) {
    await chat.resumeStream();
  }
  steps.push({
    status: chat.status,
    error: chat.error ? String(chat.error.message ?? chat.error) : null,
    messages: structuredClone(chat.messages),
  });
}
process.stdout.write(JSON.stringify({ steps, chunks }));
