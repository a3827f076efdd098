// Sends errors with the real @sentry/node SDK and prints
// {"event_id": <the first>, "event_ids": [...], "flushed": ..., "failures": [...]}.
//
//   node node_send.mjs DSN MESSAGE [COUNT]
//
// COUNT errors (default 1) are captured in a loop, then flushed: a burst, as a
// batch job that raises many errors sends it (the SDK keeps up to 64 in flight).
// Its HTTP transport posts envelopes to /api/<project>/envelope/?sentry_key=...
// with a streamed (chunked) body and no Content-Length or Content-Type header,
// which is what the acceptance test needs nginx and the store app to take.
import * as Sentry from "@sentry/node";

const [dsn, message, countArg = "1"] = process.argv.slice(2);
const count = Number(countArg);
if (!dsn || !message || !Number.isInteger(count) || count < 1 || count > 64) {
  console.error("usage: node node_send.mjs DSN MESSAGE [COUNT, 1-64]");
  process.exit(2);
}

const failures = [];
Sentry.init({
  dsn,
  // Only what sends the error: no tracing, no process-wide handlers.
  defaultIntegrations: false,
  tracesSampleRate: 0,
});
// A request the node refused fails the run (the SDK itself only logs it).
Sentry.getClient().on("afterSendEvent", (event, response) => {
  if (!response || response.statusCode !== 200) {
    failures.push(response ? response.statusCode : "no response");
  }
});

const eventIds = [];
for (let i = 0; i < count; i++) {
  eventIds.push(Sentry.captureException(new Error(count === 1 ? message : `${message} ${i}`)));
}
const flushed = await Sentry.close(30000);
console.log(JSON.stringify({ event_id: eventIds[0], event_ids: eventIds, flushed, failures }));
process.exit(flushed && failures.length === 0 ? 0 : 1);
