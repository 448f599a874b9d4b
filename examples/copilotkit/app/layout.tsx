import "@copilotkit/react-ui/styles.css";
import type { ReactNode } from "react";

export const metadata = { title: "agentd + CopilotKit" };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ margin: 0, fontFamily: "system-ui, sans-serif" }}>{children}</body>
    </html>
  );
}
