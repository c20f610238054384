// What several Node suites share: waiting for a condition, and an HTTP client that sends each
// request on a TCP connection of its own.
import * as signalR from '@microsoft/signalr';

// Resolves once @condition (sync or async) holds; throws after @ms naming @what.
export async function until(condition, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// With `Connection: close` each request goes on a TCP connection of its own, and the kernel's
// SO_REUSEPORT hash spreads them (and so negotiated hub connections) over the shards.
export class OwnSocketHttpClient extends signalR.DefaultHttpClient {
  send(request) {
    return super.send({ ...request, headers: { ...request.headers, Connection: 'close' } });
  }
}
