// The websocket to the engine: connects, reconnects by itself with backoff, and keeps an
// estimate of the server's monotonic clock relative to this page's performance.now().
//
// Clock estimate: each ping carries our send time; the pong carries the server's time.
// Assuming the two legs take equally long, server = ours + offset with
// offset = server_time - (sent + rtt / 2). The sample with the smallest round trip of the
// last few is the least disturbed, so that one is used.

const PROTOCOL_VERSION = 1;
const PING_EVERY_MS = 2000;
const FIRST_PINGS = 5;
const KEPT_SAMPLES = 8;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000];

export const nowSeconds = () => performance.now() / 1000;

export class Connection extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.connected = false;
    this.attempts = 0;
    this.nextId = 1;
    this.samples = [];
    this.offset = null; // server seconds - our seconds; null until the first pong
    this.rtt = null;
    this.clientId = null;
    this.pingTimer = null;
    this.lastError = null;
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.emit("status", { state: "connecting" });
    ws.onopen = () => {
      this.connected = true;
      this.attempts = 0;
      this.send({ type: "hello", client: "musegen-web" });
      this.startPings();
      this.emit("status", { state: "connected" });
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = () => this.closed();
    ws.onerror = () => {}; // onclose follows and does the work
  }

  closed() {
    const wasConnected = this.connected;
    this.connected = false;
    clearInterval(this.pingTimer);
    const wait = BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts += 1;
    this.emit("status", { state: "reconnecting", wait, wasConnected });
    setTimeout(() => this.connect(), wait);
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ version: PROTOCOL_VERSION, id, ...message }));
    return id;
  }

  startPings() {
    this.samples = [];
    let early = 0;
    const ping = () => this.send({ type: "ping", client_time: nowSeconds() });
    ping();
    const burst = setInterval(() => {
      ping();
      early += 1;
      if (early >= FIRST_PINGS) clearInterval(burst);
    }, 100);
    this.pingTimer = setInterval(ping, PING_EVERY_MS);
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "pong") this.pong(message);
    if (message.type === "hello") this.clientId = message.client_id;
    if (message.type === "error") this.lastError = message;
    this.emit(message.type, message);
  }

  pong(message) {
    const rtt = nowSeconds() - message.client_time;
    const offset = message.server_time - (message.client_time + rtt / 2);
    this.samples.push({ rtt, offset });
    if (this.samples.length > KEPT_SAMPLES) this.samples.shift();
    const best = this.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.offset = best.offset;
    this.rtt = best.rtt;
  }

  serverNow() {
    return this.offset === null ? null : nowSeconds() + this.offset;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
