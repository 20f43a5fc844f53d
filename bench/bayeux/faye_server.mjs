// Faye's own Node.js Bayeux server, as its documentation sets it up: a
// NodeAdapter mounted at /cometd on a plain http server, in-memory engine.
// bench/bayeux_compare.sh runs the same load against it and manifoldd.
//
//   node bench/bayeux/faye_server.mjs [--port 0]
//
// Prints "listening on 127.0.0.1:PORT" once it accepts connections; stops on
// SIGTERM.
import http from "node:http";
import faye from "faye";

const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;

const bayeux = new faye.NodeAdapter({ mount: "/cometd", timeout: 30 });
const server = http.createServer();
bayeux.attach(server);
server.listen(port, "127.0.0.1", () => {
  const { address, port: bound } = server.address();
  console.log(`listening on ${address}:${bound} (faye ${faye.VERSION})`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
