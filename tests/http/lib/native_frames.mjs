// Just enough protobuf to speak the native protocol (core/manifold.proto)
// over a manifold.v1 WebSocket in tests: encode the client messages the tests
// send, decode the server messages they read. Field numbers follow the
// .proto file.

const kClient = {
  hello: [1, { protocolVersion: [1, "varint"], clientName: [2, "string"] }],
  subscribe: [2, { opId: [1, "varint"], pattern: [2, "string"], queueGroup: [3, "string"] }],
  serve: [5, { opId: [1, "varint"], topic: [2, "string"] }],
  publish: [4, { opId: [1, "varint"], topic: [2, "string"], payload: [3, "bytes"], ack: [6, "varint"] }],
};
const kServer = {
  1: ["welcome", { 1: ["protocolVersion", "varint"], 2: ["sessionId", "varint"], 3: ["serverName", "string"] }],
  2: ["ack", { 1: ["opId", "varint"], 2: ["subscriptionId", "varint"], 3: ["delivered", "varint"] }],
  3: ["error", { 1: ["opId", "varint"], 2: ["code", "varint"], 3: ["message", "string"], 4: ["fatal", "varint"] }],
  5: ["request", { 1: ["requestId", "varint"], 2: ["topic", "string"], 3: ["payload", "bytes"] }],
  4: ["deliver", { 1: ["subscriptionId", "varint"], 2: ["topic", "string"], 3: ["payload", "bytes"], 5: ["replyTo", "string"] }],
  7: ["ping", { 1: ["opId", "varint"] }],
  8: ["pong", { 1: ["opId", "varint"] }],
};

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

function field(number, type, value) {
  if (type === "varint") return Buffer.concat([varint((number << 3) | 0), varint(value === true ? 1 : value)]);
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value));
  return Buffer.concat([varint((number << 3) | 2), varint(bytes.length), bytes]);
}

// {hello: {...}} -> one delimited frame (varint length, ClientMessage).
export function encodeClient(message) {
  const [kind] = Object.keys(message);
  const [number, fields] = kClient[kind];
  const body = Buffer.concat(Object.entries(message[kind]).map(([name, value]) => field(fields[name][0], fields[name][1], value)));
  const outer = field(number, "bytes", body);
  return Buffer.concat([varint(outer.length), outer]);
}

function readVarint(buf, at) {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    const byte = buf[at++];
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) return [value, at];
  }
}

function decodeFields(buf, schema) {
  const out = {};
  let at = 0;
  while (at < buf.length) {
    let key;
    [key, at] = readVarint(buf, at);
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value;
    if (wire === 0) {
      [value, at] = readVarint(buf, at);
      value = Number(value);
    } else {
      let length;
      [length, at] = readVarint(buf, at);
      value = buf.subarray(at, at + Number(length));
      at += Number(length);
    }
    const spec = schema[number];
    if (!spec) continue;
    const [name, type] = spec;
    out[name] = type === "string" ? value.toString() : value;
  }
  return out;
}

// One delimited ServerMessage frame -> {welcome: {...}} (and so on).
export function decodeServer(frame) {
  let [length, at] = readVarint(frame, 0);
  const outer = frame.subarray(at, at + Number(length));
  const [key, bodyAt] = readVarint(outer, 0);
  const [bodyLength, start] = readVarint(outer, bodyAt);
  const [kind, schema] = kServer[Number(key >> 3n)] || ["unknown", {}];
  return { [kind]: decodeFields(outer.subarray(start, start + Number(bodyLength)), schema) };
}

// A native client over a manifold.v1 WebSocket that serves `topic` and never
// answers: requests to it time out, or fail with SERVER_GONE once it closes.
export async function silentServer(WebSocket, url, topic) {
  const ws = new WebSocket(url, "manifold.v1");
  const frames = [];
  ws.on("message", (data) => frames.push(decodeServer(data)));
  await new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); });
  ws.send(encodeClient({ hello: { protocolVersion: 1, clientName: "silent" } }));
  ws.send(encodeClient({ serve: { opId: 1, topic } }));
  const deadline = Date.now() + 5_000;
  while (!frames.some((f) => f.ack)) {
    if (Date.now() > deadline) throw new Error(`serving ${topic}: no ack`);
    await new Promise((r) => setTimeout(r, 10));
  }
  ws.requests = () => frames.filter((f) => f.request).length;
  return ws;
}
