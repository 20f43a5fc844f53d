// A CometD client extension that resumes replaying subscriptions where they
// left off: it keeps each channel's position in its stream (from the
// subscribe reply's ext.replay and each message's ext.replayId) and sends
// it in every /meta/subscribe of that channel, so the subscriptions a client
// makes again after handshaking with a restarted broker replay what it
// missed (docs/bayeux.md, "Replaying a stream").
//
//   const replay = replayExtension(["/log/*"]);
//   cometd.registerExtension("replay", replay);
//   replay.positions.get("/log/*");  // the last replayId received
//
// Channels start at -1 (new messages from the first subscribe on).

// True when channel pattern `pattern` matches `channel`, as the broker
// matches topics: `*` is one segment, `**` zero or more, anywhere.
function matches(pattern, channel) {
  const match = (p, c) => {
    if (p.length === 0) return c.length === 0;
    if (p[0] === "**") return match(p.slice(1), c) || (c.length > 0 && match(p, c.slice(1)));
    return c.length > 0 && (p[0] === "*" || p[0] === c[0]) && match(p.slice(1), c.slice(1));
  };
  return match(pattern.split("/").slice(1), channel.split("/").slice(1));
}

export function replayExtension(channels) {
  const positions = new Map(channels.map((c) => [c, -1]));
  const advance = (channel, position) => {
    if (positions.get(channel) < position) positions.set(channel, position);
  };
  return {
    positions,
    outgoing(message) {
      if (message.channel === "/meta/subscribe") {
        const wanted = [].concat(message.subscription).filter((c) => positions.has(c));
        if (wanted.length > 0) {
          message.ext = { ...message.ext, replay: Object.fromEntries(wanted.map((c) => [c, positions.get(c)])) };
        }
      }
      return message;
    },
    incoming(message) {
      if (message.channel === "/meta/subscribe") {
        // Where the replay starts; a message may have come first.
        for (const [channel, position] of Object.entries(message.ext?.replay ?? {})) {
          if (positions.has(channel)) advance(channel, position);
        }
      } else if (Number.isInteger(message.ext?.replayId)) {
        for (const channel of positions.keys()) {
          if (matches(channel, message.channel)) advance(channel, message.ext.replayId);
        }
      }
      return message;
    },
  };
}
