// Sends one error with the real @sentry/node SDK and prints {"event_id": ...}.
//
//   node node_send.mjs DSN MESSAGE
//
// Its HTTP transport posts envelopes to /api/<project>/envelope/?sentry_key=...
// with a streamed (chunked) body and no Content-Length or Content-Type header,
// which is what the acceptance test needs nginx and the store app to take.
import * as Sentry from "@sentry/node";

const [dsn, message] = process.argv.slice(2);
if (!dsn || !message) {
  console.error("usage: node node_send.mjs DSN MESSAGE");
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

const eventId = Sentry.captureException(new Error(message));
const flushed = await Sentry.close(15000);
console.log(JSON.stringify({ event_id: eventId, flushed, failures }));
process.exit(flushed && failures.length === 0 ? 0 : 1);
