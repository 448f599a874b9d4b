"use client";

// CopilotKit's chat, run by agentd over AG-UI. The frontend tool below is sent
// with every run as an AG-UI client tool: when the agent calls it, agentd's run
// pauses; the result CopilotKit sends back (a tool message in its next input)
// continues that same run.
import { CopilotKit, useCopilotAction, useCoAgent } from "@copilotkit/react-core";
import { CopilotChat } from "@copilotkit/react-ui";

function Page() {
  // The thread's session state, as agentd sends it in STATE_SNAPSHOT.
  const { state } = useCoAgent<Record<string, unknown>>({ name: "default", initialState: {} });
  useCopilotAction({
    name: "get_location",
    description: "The city the user is in.",
    parameters: [],
    handler: async () => "Lisbon",
  });
  return (
    <main style={{ display: "grid", gridTemplateColumns: "2fr 1fr", height: "100vh" }}>
      <CopilotChat labels={{ title: "agentd", initial: "Ask the agent anything." }} />
      <pre style={{ padding: 16, background: "#f5f5f5", margin: 0 }}>
        {JSON.stringify(state, null, 2)}
      </pre>
    </main>
  );
}

export default function Home() {
  return (
    <CopilotKit runtimeUrl="/api/copilotkit" agent="default">
      <Page />
    </CopilotKit>
  );
}
