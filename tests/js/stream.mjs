// Streams a chat completion and a response from agentd with the official
// `openai` JavaScript client; prints what it saw as one JSON line.
import OpenAI from "openai";

const [baseURL] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-any", maxRetries: 0 });

const chat = { text: "", finish: [], usage: null, ids: new Set() };
const stream = await client.chat.completions.create({
  model: "slow",
  messages: [{ role: "user", content: "hello from node" }],
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  chat.ids.add(chunk.id);
  const [choice] = chunk.choices;
  if (choice) {
    chat.text += choice.delta.content ?? "";
    if (choice.finish_reason) chat.finish.push(choice.finish_reason);
  }
  if (chunk.usage) chat.usage = chunk.usage;
}

const responses = client.responses.stream({ model: "slow", input: "responses from node" });
const events = [];
for await (const event of responses) events.push([event.type, event.sequence_number]);
const final = await responses.finalResponse();

console.log(
  JSON.stringify({
    chat: { ...chat, ids: [...chat.ids] },
    responses: { id: final.id, status: final.status, text: final.output_text, events },
  }),
);
