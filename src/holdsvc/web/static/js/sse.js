// Server-sent events over fetch(): EventSource cannot send an Authorization header, so the
// stream is read with a ReadableStream and its lines parsed here (the WHATWG SSE rules).

export async function readEvents(response, { onEvent, onActivity, signal }) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  if (signal) signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  let buffer = "";
  let type = "";
  let data = [];
  let id = null;
  let pendingCR = false;

  function line(text) {
    if (text === "") {
      if (data.length) onEvent({ type: type || "message", data: data.join("\n"), id });
      type = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return; // a comment: the server's keep-alive
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
    else if (field === "id" && !value.includes("\0")) id = value;
  }

  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    if (onActivity) onActivity();
    let chunk = value;
    // A CR at the end of one chunk and an LF at the start of the next are one line end.
    if (pendingCR && chunk.startsWith("\n")) chunk = chunk.slice(1);
    pendingCR = chunk.endsWith("\r");
    buffer += chunk;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const text of lines) line(text);
  }
}
