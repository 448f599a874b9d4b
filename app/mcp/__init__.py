"""MCP both ways: tools of the servers in MCP_SERVERS for agents (pool, connection,
tools), and agentd's own agents as an MCP server at /mcp (server)."""
