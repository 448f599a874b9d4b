// The Copilot Runtime, with agentd's AG-UI endpoint as the default agent:
// CopilotKit's prebuilt chat talks to it without more configuration.
import { HttpAgent } from "@ag-ui/client";
import {
  CopilotRuntime,
  ExperimentalEmptyAdapter,
  copilotRuntimeNextJSAppRouterEndpoint,
} from "@copilotkit/runtime";
import type { NextRequest } from "next/server";

const AGENTD_URL = process.env.AGENTD_URL ?? "http://127.0.0.1:8000";
const AGENT_ID = process.env.AGENT_ID ?? "demo";

const runtime = new CopilotRuntime({
  agents: {
    default: new HttpAgent({
      url: `${AGENTD_URL}/v1/agents/${AGENT_ID}/agui`,
      // agentd serves a caller on its own host without credentials only while it has none
      // configured (no API_KEYS, JWT_* or stored keys). Otherwise, or from another host, send
      // a stored key (agk_...) or a token with the runs:write scope:
      // headers: { Authorization: `Bearer ${process.env.AGENTD_KEY}` },
    }),
  },
});

export const POST = async (request: NextRequest) => {
  const { handleRequest } = copilotRuntimeNextJSAppRouterEndpoint({
    runtime,
    serviceAdapter: new ExperimentalEmptyAdapter(),
    endpoint: "/api/copilotkit",
  });
  return handleRequest(request);
};
