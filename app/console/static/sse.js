// sse.js owns reading text/event-stream bodies from fetch() (EventSource
// cannot send an Authorization header). It follows the WHATWG parsing rules:
// lines end with CRLF, LF or CR; `:` lines are comments (the server's pings);
// `data` lines join with newlines; a blank line ends a message.

/** Yields `{id, event, data}` for each message of the Response's body. */
export async function* readMessages(response) {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = blank();
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      let line;
      while ((line = nextLine(buffer)) !== null) {
        buffer = buffer.slice(line.consumed);
        if (line.text === "") {
          if (message.data.length) yield finish(message);
          message = blank();
        } else {
          field(message, line.text);
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function blank() {
  return {id: null, event: "", data: []};
}

function finish(message) {
  return {id: message.id, event: message.event || "message", data: message.data.join("\n")};
}

/** The first complete line of `buffer`, or null. A CR at the very end may be
 * half of a CRLF split across chunks: it waits for the next chunk. */
function nextLine(buffer) {
  const match = /\r\n|\r|\n/.exec(buffer);
  if (!match) return null;
  if (match[0] === "\r" && match.index === buffer.length - 1) return null;
  return {text: buffer.slice(0, match.index), consumed: match.index + match[0].length};
}

function field(message, text) {
  if (text.startsWith(":")) return;
  const colon = text.indexOf(":");
  const name = colon < 0 ? text : text.slice(0, colon);
  let value = colon < 0 ? "" : text.slice(colon + 1);
  if (value.startsWith(" ")) value = value.slice(1);
  if (name === "data") message.data.push(value);
  else if (name === "event") message.event = value;
  else if (name === "id" && !value.includes("\0")) message.id = value;
}
