// Herald client SDK: connects to a Herald gateway over WebSocket, receives notifications,
// acks them (cumulative, batched), resumes after reconnects with `last_id`, and drops
// duplicates by id. Protocol: docs/protocol.md. No runtime dependency in the browser; in Node
// without a global WebSocket (Node 20) it loads the `ws` package lazily.

/** Connection state of a client. */
export type State = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Where the client keeps the newest processed notification id (for resume). */
export interface IdStore {
  get(): string | null | undefined | Promise<string | null | undefined>;
  set(id: string): void | Promise<void>;
}

/** A token, or a (possibly async) function called on every (re)connect for a fresh token. */
export type TokenSource = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);

export interface BackoffOptions {
  /** First retry window in ms (full jitter: the delay is random in [0, window]). Default 500. */
  initialMs?: number;
  /** Cap of the retry window in ms. Default 30000. */
  maxMs?: number;
  /** Growth factor of the window per attempt. Default 2. */
  factor?: number;
  /** Window for the "soon, with jitter" reconnect after a drain (close 1012). Default 1000. */
  drainMs?: number;
}

/** Minimal WebSocket constructor shape (browser WebSocket or the `ws` package). */
export interface WebSocketLike {
  readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

export interface ConnectOptions {
  /** ws:// or wss:// URL of Herald's client endpoint, e.g. ws://127.0.0.1:8080/v1/ws */
  url: string;
  clientId: string;
  /** JWT (when the server runs with --client-auth jwt), or a function returning a fresh one. */
  token?: TokenSource;
  /** Where to remember the newest processed id. Default: in memory (lost with the process/page). */
  storage?: IdStore;
  /** At most one ack per this many ms. Default 5. */
  ackDelayMs?: number;
  backoff?: BackoffOptions;
  /** WebSocket implementation to use instead of globalThis.WebSocket / `ws`. */
  WebSocket?: WebSocketCtor;
}

export interface NotificationEvent {
  /** `<ms>-<seq>`; undefined for non-durable notifications (never replayed, never acked). */
  id?: string;
  data: unknown;
  ts: number;
}
export interface ConnectedEvent { session: string; instance: string; heartbeatMs: number }
export interface DisconnectedEvent {
  code: number;
  reason: string;
  /** The `code` word of Herald's error frame before the close, if any (e.g. "unauthorized"). */
  error?: string;
  willReconnect: boolean;
}
export interface ReconnectingEvent { attempt: number; delayMs: number }
export interface ErrorEvent { code: string; message: string; cause?: unknown }

export interface EventMap {
  notification: NotificationEvent;
  connected: ConnectedEvent;
  disconnected: DisconnectedEvent;
  reconnecting: ReconnectingEvent;
  error: ErrorEvent;
}
export type Listener<K extends keyof EventMap> = (ev: EventMap[K]) => unknown;

/** In-memory id store (the default). Share one between clients to resume across them. */
export function memoryStore(initial?: string): IdStore {
  let value: string | null = initial ?? null;
  return { get: () => value, set: (id: string) => { value = id; } };
}

/** Browser id store backed by `localStorage[key]`: resume survives page reloads. */
export function localStorageStore(key = 'herald.last_id'): IdStore {
  const ls = (globalThis as any).localStorage;
  if (!ls) throw new Error('localStorage is not available here');
  return {
    get: () => ls.getItem(key),
    set: (id: string) => { ls.setItem(key, id); },
  };
}

const ID_RE = /^(\d+)(?:-(\d+))?$/;

function cmpDecimal(a: string, b: string): number {
  a = a.replace(/^0+(?=\d)/, '');
  b = b.replace(/^0+(?=\d)/, '');
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compares two Herald ids `<ms>-<seq>` numerically: <0, 0 or >0. */
export function compareIds(a: string, b: string): number {
  const ma = ID_RE.exec(a);
  const mb = ID_RE.exec(b);
  if (!ma || !mb) throw new Error(`not a Herald id: ${!ma ? a : b}`);
  return cmpDecimal(ma[1], mb[1]) || cmpDecimal(ma[2] ?? '0', mb[2] ?? '0');
}

/** Close codes after which the client does not reconnect (DESIGN §2, docs/protocol.md). */
const FINAL_CODES = new Set([1002, 1003, 1007, 1008, 1009, 4001, 4003]);

async function resolveWebSocket(explicit?: WebSocketCtor): Promise<WebSocketCtor> {
  if (explicit) return explicit;
  const g = (globalThis as any).WebSocket;
  if (g) return g as WebSocketCtor;
  const name = 'ws'; // a variable, so browser bundlers do not try to include it
  const mod: any = await import(name);
  return (mod.WebSocket ?? mod.default) as WebSocketCtor;
}

interface Conn {
  ws: WebSocketLike;
  helloLastId: string | null;
  /** Newest id acked (or scheduled) on this connection. */
  acked: string | null;
  pendingAck: string | null;
  ackTimer: ReturnType<typeof setTimeout> | null;
  errorCode?: string;
  watchdog: ReturnType<typeof setInterval> | null;
  lastSeen: number;
}

interface Queued { conn: Conn; ev: NotificationEvent }

export class HeraldClient {
  private readonly opts: ConnectOptions;
  private readonly storage: IdStore;
  private readonly ackDelayMs: number;
  private readonly backoff: Required<BackoffOptions>;
  private readonly listeners = new Map<keyof EventMap, Set<Listener<any>>>();
  private _state: State = 'connecting';
  private conn: Conn | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private newest: string | null = null;
  private newestLoaded = false;
  private queue: Queued[] = [];
  private draining = false;
  private closedByUser = false;

  constructor(opts: ConnectOptions) {
    if (!opts || !opts.url) throw new Error('connect: url is required');
    if (!opts.clientId) throw new Error('connect: clientId is required');
    this.opts = opts;
    this.storage = opts.storage ?? memoryStore();
    this.ackDelayMs = Math.max(0, opts.ackDelayMs ?? 5);
    this.backoff = {
      initialMs: opts.backoff?.initialMs ?? 500,
      maxMs: opts.backoff?.maxMs ?? 30_000,
      factor: opts.backoff?.factor ?? 2,
      drainMs: opts.backoff?.drainMs ?? 1000,
    };
    queueMicrotask(() => { void this.open(); });
  }

  /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
  get state(): State { return this._state; }

  /** Newest processed notification id (what the next hello sends as last_id). */
  get lastId(): string | null { return this.newest; }

  on<K extends keyof EventMap>(event: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  off<K extends keyof EventMap>(event: K, fn: Listener<K>): void {
    this.listeners.get(event)?.delete(fn);
  }

  /** Closes for good: flushes a pending ack, closes the socket with 1000, no reconnect. */
  close(): void {
    if (this.closedByUser) return;
    this.closedByUser = true;
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = null; }
    const c = this.conn;
    if (c) {
      this.flushAck(c);
      try { c.ws.close(1000, 'client_close'); } catch { /* already closed */ }
    } else {
      this._state = 'closed';
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private emit<K extends keyof EventMap>(event: K, ev: EventMap[K]): unknown[] {
    const out: unknown[] = [];
    for (const fn of [...(this.listeners.get(event) ?? [])]) {
      try {
        out.push(fn(ev));
      } catch (e) {
        if (event === 'error') continue; // never loop on a failing error handler
        out.push(Promise.reject(e));
      }
    }
    return out;
  }

  private reportError(code: string, message: string, cause?: unknown): void {
    this.emit('error', { code, message, cause });
  }

  private async open(): Promise<void> {
    if (this.closedByUser) return;
    let token: string | null | undefined;
    let Ctor: WebSocketCtor;
    try {
      if (!this.newestLoaded) {
        const stored = await this.storage.get();
        if (stored && ID_RE.test(stored) && (!this.newest || compareIds(stored, this.newest) > 0)) this.newest = stored;
        this.newestLoaded = true;
      }
      const t = this.opts.token;
      token = typeof t === 'function' ? await t() : t;
      Ctor = await resolveWebSocket(this.opts.WebSocket);
    } catch (e) {
      this.reportError('connect_failed', `could not prepare the connection: ${(e as Error)?.message ?? e}`, e);
      this.scheduleReconnect(false);
      return;
    }
    if (this.closedByUser) { this._state = 'closed'; return; }

    let ws: WebSocketLike;
    try {
      ws = new Ctor(this.opts.url);
    } catch (e) {
      this.reportError('connect_failed', `could not open ${this.opts.url}: ${(e as Error)?.message ?? e}`, e);
      this.scheduleReconnect(false);
      return;
    }
    const conn: Conn = {
      ws, helloLastId: this.newest, acked: this.newest, pendingAck: null, ackTimer: null,
      watchdog: null, lastSeen: Date.now(),
    };
    this.conn = conn;

    ws.onopen = () => {
      const hello: Record<string, unknown> = { type: 'hello', client_id: this.opts.clientId };
      if (token) hello.token = token;
      if (conn.helloLastId) hello.last_id = conn.helloLastId;
      ws.send(JSON.stringify(hello));
    };
    ws.onerror = () => { /* the close event follows and decides */ };
    ws.onmessage = (ev) => {
      conn.lastSeen = Date.now();
      let text: string;
      const d = ev.data;
      if (typeof d === 'string') text = d;
      else {
        try { text = new TextDecoder().decode(d as ArrayBuffer); } catch { return; }
      }
      let msg: any;
      try { msg = JSON.parse(text); } catch { return; }
      if (!msg || typeof msg !== 'object') return;
      this.onFrame(conn, msg);
    };
    ws.onclose = (ev) => this.onClose(conn, ev.code, ev.reason ?? '');

    // Node's `ws` exposes pings: use them as a liveness signal (browsers do not show pings, so
    // there we rely on the browser/TCP and Herald's own heartbeat termination).
    const anyWs = ws as any;
    if (typeof anyWs.on === 'function') {
      anyWs.on('ping', () => { conn.lastSeen = Date.now(); });
    }
  }

  private onFrame(conn: Conn, msg: any): void {
    if (conn !== this.conn) return;
    switch (msg.type) {
      case 'welcome': {
        this.attempt = 0;
        this._state = this.closedByUser ? this._state : 'open';
        const heartbeatMs = Number(msg.heartbeat_ms) || 0;
        if (heartbeatMs > 0 && typeof (conn.ws as any).terminate === 'function') {
          const limit = 2 * heartbeatMs + 1000;
          conn.watchdog = setInterval(() => {
            if (Date.now() - conn.lastSeen > limit) (conn.ws as any).terminate();
          }, Math.max(250, Math.floor(heartbeatMs / 2)));
          (conn.watchdog as any).unref?.();
        }
        this.emit('connected', { session: String(msg.session ?? ''), instance: String(msg.instance ?? ''), heartbeatMs });
        return;
      }
      case 'notification': {
        const ev: NotificationEvent = { data: msg.data, ts: Number(msg.ts) };
        if (typeof msg.id === 'string' && ID_RE.test(msg.id)) ev.id = msg.id;
        this.queue.push({ conn, ev });
        void this.drain();
        return;
      }
      case 'error':
        conn.errorCode = String(msg.code ?? '');
        this.reportError(conn.errorCode, String(msg.message ?? ''));
        return;
      default:
        return; // unknown server frames are ignored (forward compatibility)
    }
  }

  /** Processes queued notifications one at a time, in order: dedupe, handlers, remember, ack. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        const { conn, ev } = this.queue.shift()!;
        if (this.closedByUser && this._state === 'closed') { this.queue.length = 0; break; }
        if (ev.id && this.newest && compareIds(ev.id, this.newest) <= 0) {
          this.scheduleAck(conn, ev.id); // a duplicate: already processed, ack it on this connection
          continue;
        }
        const results = this.emit('notification', ev);
        const settled = await Promise.allSettled(results);
        for (const r of settled) {
          if (r.status === 'rejected') {
            this.reportError('handler_failed', `notification handler failed: ${(r.reason as Error)?.message ?? r.reason}`, r.reason);
          }
        }
        if (!ev.id) continue; // non-durable: no id, never acked
        this.newest = ev.id;
        try {
          await this.storage.set(ev.id);
        } catch (e) {
          this.reportError('storage_failed', `could not store the last id: ${(e as Error)?.message ?? e}`, e);
        }
        this.scheduleAck(conn, ev.id);
      }
    } finally {
      this.draining = false;
    }
  }

  private scheduleAck(conn: Conn, id: string): void {
    // Only ids received on the current connection may be acked on it (else: unknown_ack_id).
    if (conn !== this.conn || conn.ws.readyState !== 1) return;
    if (conn.acked && compareIds(id, conn.acked) <= 0) return;
    if (conn.pendingAck && compareIds(id, conn.pendingAck) <= 0) return;
    conn.pendingAck = id;
    if (conn.ackTimer) return;
    // Batch: everything processed within the next ackDelayMs goes out as one cumulative ack.
    conn.ackTimer = setTimeout(() => { conn.ackTimer = null; this.flushAck(conn); }, this.ackDelayMs);
  }

  private flushAck(conn: Conn): void {
    if (conn.ackTimer) { clearTimeout(conn.ackTimer); conn.ackTimer = null; }
    const id = conn.pendingAck;
    if (!id || conn.ws.readyState !== 1) return;
    conn.pendingAck = null;
    conn.acked = id;
    try { conn.ws.send(JSON.stringify({ type: 'ack', id })); } catch { /* closing */ }
  }

  private onClose(conn: Conn, code: number, reason: string): void {
    if (conn.ackTimer) { clearTimeout(conn.ackTimer); conn.ackTimer = null; }
    if (conn.watchdog) { clearInterval(conn.watchdog); conn.watchdog = null; }
    if (conn !== this.conn) return;
    this.conn = null;
    const error = conn.errorCode || (reason && /^[a-z_]+$/.test(reason) ? reason : undefined);
    let reconnect = !this.closedByUser;
    if (reconnect && FINAL_CODES.has(code)) {
      // 1008 hello_timeout is the one policy close worth retrying (with backoff).
      reconnect = code === 1008 && error === 'hello_timeout';
    }
    const ev: DisconnectedEvent = { code, reason, willReconnect: reconnect };
    if (error) ev.error = error;
    if (!reconnect) this._state = 'closed';
    this.emit('disconnected', ev);
    if (reconnect) this.scheduleReconnect(code === 1012);
  }

  private scheduleReconnect(soon: boolean): void {
    if (this.closedByUser) { this._state = 'closed'; return; }
    this._state = 'reconnecting';
    this.attempt += 1;
    const b = this.backoff;
    const window = soon ? b.drainMs : Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, this.attempt - 1));
    const delayMs = Math.floor(Math.random() * window);
    this.emit('reconnecting', { attempt: this.attempt, delayMs });
    this.retryTimer = setTimeout(() => { this.retryTimer = null; void this.open(); }, delayMs);
  }
}

/** Connects to Herald; the client reconnects by itself until `close()` or a final close code. */
export function connect(opts: ConnectOptions): HeraldClient {
  return new HeraldClient(opts);
}
