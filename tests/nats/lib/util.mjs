// Functions the NATS compatibility tests share: bounded waits on
// nats.js subscriptions and promises, so no test can hang.

import { StringCodec } from "nats";

export const sc = StringCodec();

// Rejects with `what` when `promise` has not settled within `ms`.
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// nats.js lets a subscription be iterated only once, so every function here reads
// through the same iterator.
const iterators = new WeakMap();
function iteratorOf(sub) {
  if (!iterators.has(sub)) iterators.set(sub, sub[Symbol.asyncIterator]());
  return iterators.get(sub);
}

// Resolves with the next `n` messages of `sub` (a nats.js Subscription
// without a callback), or rejects after `ms` saying how many came.
export async function take(sub, n, ms = 5_000) {
  const got = [];
  const iterator = iteratorOf(sub);
  const deadline = Date.now() + ms;
  while (got.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    let next;
    try {
      next = await within(iterator.next(), left, "take");
    } catch {
      break;
    }
    if (next.done) break;
    got.push(next.value);
  }
  if (got.length < n) {
    throw new Error(`expected ${n} messages on ${sub.getSubject()}, got ${got.length} within ${ms} ms`);
  }
  return got;
}

// Resolves with every message `sub` delivers until it closes (after an
// unsubscribe with max, a drain, ...), or rejects after `ms`.
export async function untilClosed(sub, ms = 5_000) {
  const got = [];
  const iterator = iteratorOf(sub);
  await within(
    (async () => {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) got.push(next.value);
    })(),
    ms,
    `subscription ${sub.getSubject()} did not close`,
  );
  return got;
}

// Resolves once `condition()` is true, checking every 10 ms; rejects with
// `what` when it is still false after `ms`.
export async function until(condition, ms, what) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
