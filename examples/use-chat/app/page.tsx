"use client";

// useChat against agentd's UI message stream. The chat id is agentd's session
// id; each answer is one agentd run. A tool that needs approval shows Approve /
// Deny; a client tool (declared on the agent, "type": "client") shows a form
// for its result. `resume: true` re-attaches to a run still streaming after a
// reload.
import { useChat } from "@ai-sdk/react";
import {
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithApprovalResponses,
  lastAssistantMessageIsCompleteWithToolCalls,
} from "ai";
import { useState } from "react";

const AGENTD_URL = process.env.NEXT_PUBLIC_AGENTD_URL ?? "http://127.0.0.1:8000";
const AGENT_ID = process.env.NEXT_PUBLIC_AGENT_ID ?? "demo";

export default function Chat() {
  const [input, setInput] = useState("");
  const { messages, sendMessage, status, error, addToolApprovalResponse, addToolOutput } =
    useChat({
      id: "example-chat",
      resume: true,
      transport: new DefaultChatTransport({ api: `${AGENTD_URL}/v1/agents/${AGENT_ID}/chat` }),
      sendAutomaticallyWhen: (options) =>
        lastAssistantMessageIsCompleteWithApprovalResponses(options) ||
        lastAssistantMessageIsCompleteWithToolCalls(options),
    });

  return (
    <main>
      {messages.map((message) => (
        <div key={message.id} style={{ margin: "1rem 0" }}>
          <strong>{message.role}</strong>
          {message.parts.map((part, index) => {
            if (part.type === "text") return <p key={index}>{part.text}</p>;
            if (part.type === "reasoning")
              return <p key={index} style={{ color: "#888" }}>{part.text}</p>;
            if (part.type.startsWith("tool-") && "toolCallId" in part) {
              const name = part.type.slice(5);
              return (
                <div key={index} style={{ border: "1px solid #ddd", padding: 8 }}>
                  <code>
                    {name}({JSON.stringify(part.input)}) · {part.state}
                  </code>
                  {part.state === "approval-requested" && (
                    <div>
                      <button
                        onClick={() => addToolApprovalResponse({ id: part.approval.id, approved: true })}
                      >
                        Approve
                      </button>
                      <button
                        onClick={() =>
                          addToolApprovalResponse({ id: part.approval.id, approved: false, reason: "Denied" })
                        }
                      >
                        Deny
                      </button>
                    </div>
                  )}
                  {part.state === "input-available" && (
                    <form
                      onSubmit={(event) => {
                        event.preventDefault();
                        const value = new FormData(event.currentTarget).get("output");
                        addToolOutput({ tool: name, toolCallId: part.toolCallId, output: value });
                      }}
                    >
                      <input name="output" placeholder={`result of ${name}`} />
                      <button type="submit">Send result</button>
                    </form>
                  )}
                  {part.state === "output-available" && <pre>{JSON.stringify(part.output)}</pre>}
                </div>
              );
            }
            return null;
          })}
        </div>
      ))}
      {error && <p style={{ color: "crimson" }}>{error.message}</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (!input.trim()) return;
          sendMessage({ text: input });
          setInput("");
        }}
      >
        <input
          value={input}
          onChange={(event) => setInput(event.target.value)}
          disabled={status !== "ready"}
          placeholder="Say something"
          style={{ width: "80%" }}
        />
        <button type="submit" disabled={status !== "ready"}>
          Send
        </button>
      </form>
    </main>
  );
}
