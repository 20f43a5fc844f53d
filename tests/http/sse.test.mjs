// GET /sse with the `eventsource` npm client: named events with a per-stream
// id, JSON format, payloads that are not UTF-8, and broker events.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import { Manifoldd, freePort, storedConfig, waitFor, waitForPattern } from "./lib/servers.mjs";

let server;
before(async () => { server = await Manifoldd.start(); });
after(async () => server.stop());

// Opens a stream and collects the events named in `names`.
async function stream(query, names) {
  const es = new EventSource(server.url(`/sse?${query}`));
  const events = [];
  for (const name of names) es.addEventListener(name, (e) => events.push({ name, id: e.lastEventId, data: e.data }));
  await new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = reject; });
  for (const [name, value] of new URLSearchParams(query)) {
    if (name === "topic") await waitForPattern(server, value);
  }
  es.events = events;
  return es;
}

const publish = (topic, body) => fetch(server.url(`/pub/${topic}`), { method: "POST", body }).then((r) => r.json());

test("each message is an event named by its topic, with ids from 1", async () => {
  const es = await stream("topic=feed/*&topic=other", ["feed/a", "feed/b", "other"]);
  await publish("feed/a", "one");
  await publish("other", "two\nlines");
  await publish("feed/b", "three");
  await waitFor(() => es.events.length === 3, "three events");
  assert.deepEqual(es.events, [
    { name: "feed/a", id: "1", data: "one" },
    { name: "other", id: "2", data: "two\nlines" },
    { name: "feed/b", id: "3", data: "three" },
  ]);
  es.close();
});

test("format=json carries topic, sequence, headers and the payload", async () => {
  const es = await stream("topic=j/**&format=json", ["j/x"]);
  await fetch(server.url("/pub/j/x"), { method: "POST", body: "text", headers: { "Manifold-Header-Trace": "t1" } });
  await publish("j/x", Buffer.from([0xc3, 0x28]));
  await waitFor(() => es.events.length === 2, "two events");
  assert.deepEqual(JSON.parse(es.events[0].data),
    { topic: "j/x", sequence: 1, headers: [{ key: "trace", value: "t1" }], payload: "text" });
  assert.deepEqual(JSON.parse(es.events[1].data),
    { topic: "j/x", sequence: 2, headers: [], payload: "wyg=", base64: true });
  es.close();
});

test("a payload that is not UTF-8 is sent as base64: in the plain format", async () => {
  const es = await stream("topic=bin", ["bin"]);
  await publish("bin", Buffer.from([0xff, 0xfe, 0x01]));
  await waitFor(() => es.events.length === 1, "one event");
  assert.equal(es.events[0].data, "base64://4B");
  es.close();
});

test("broker events arrive as JSON", async () => {
  const es = await stream("topic=$sys/subscription/added", ["$sys/subscription/added"]);
  const other = await stream("topic=watched/topic", []);
  await waitFor(() => es.events.length >= 1, "the subscription event");
  const event = JSON.parse(es.events.at(-1).data);
  assert.equal(event.subscriptionAdded.pattern, "watched/topic");
  es.close();
  other.close();
});

test("a bad topic is 400 with a JSON error naming it", async () => {
  const r = await fetch(server.url("/sse?topic=a//b"));
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.error.code, "INVALID_PATTERN");
  assert.match(body.error.message, /a\/\/b/);
  const none = await fetch(server.url("/sse"));
  assert.equal(none.status, 400);
});

test("a stored topic resumes from Last-Event-ID across a kill -9 and restart, losing and repeating nothing", async () => {
  const stored = storedConfig("log", "log/**");
  const http = `127.0.0.1:${await freePort()}`;
  const flags = ["--config", stored.config, "--http", http, "--sse_retry=200ms"];
  let broker = await Manifoldd.start(flags);
  try {
    const es = new EventSource(broker.url("/sse?topic=log/*&topic=chat"));
    const events = [];
    es.addEventListener("log/a", (e) => events.push({ id: e.lastEventId, data: e.data }));
    await new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = reject; });
    es.onerror = null;  // from now on, errors are the reconnections below
    await waitForPattern(broker, "log/*");
    const pub = (body) => fetch(broker.url("/pub/log/a"), { method: "POST", body }).then((r) => r.json());
    for (const body of ["m1", "m2", "m3"]) await pub(body);
    await waitFor(() => events.length === 3, "three events");
    assert.deepEqual(events.map((e) => e.id), ["s:1,-", "s:2,-", "s:3,-"]);

    // Killed: nothing said goodbye. What is published after the restart,
    // before the EventSource is back, is replayed to it when it is.
    await broker.kill();
    broker = await Manifoldd.start(flags);
    for (const body of ["m4", "m5"]) await pub(body);
    await waitFor(() => events.length === 5, "the two published while it was away", 10_000);
    await pub("m6");
    await waitFor(() => events.length === 6, "a live one after them");
    assert.deepEqual(events.map((e) => e.data), ["m1", "m2", "m3", "m4", "m5", "m6"]);
    assert.deepEqual(events.map((e) => e.id).slice(3), ["s:4,-", "s:5,-", "s:6,-"]);
    es.close();
  } finally {
    await broker.stop();
    stored.remove();
  }
});

test("a topic no stream stores keeps plain ids and starts afresh", async () => {
  const es = await stream("topic=plain/x", ["plain/x"]);
  await publish("plain/x", "one");
  await waitFor(() => es.events.length === 1, "one event");
  assert.equal(es.events[0].id, "1");
  es.close();
});
