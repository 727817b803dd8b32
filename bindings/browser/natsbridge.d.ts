// Type declarations of natsbridge for web pages (natsbridge.js).

import type { Table } from 'apache-arrow';

/** The eight payload types of the wire format. */
export type PayloadType =
  | 'text'
  | 'dictionary'
  | 'arrowtable'
  | 'jsontable'
  | 'image'
  | 'audio'
  | 'video'
  | 'binary';

export const PAYLOAD_TYPES: readonly PayloadType[];
/** The envelope header keys, in wire order. */
export const HEADER_KEYS: readonly string[];
export const MSG_PURPOSES: readonly MsgPurpose[];

export type MsgPurpose = 'ACK' | 'NACK' | 'updateStatus' | 'shutdown' | 'chat' | 'command' | 'event';

/** A JSON value (what a `dictionary` payload holds). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A row of a `jsontable` payload. */
export type JsonRow = { [column: string]: JsonValue };

/** Bytes accepted for binary payload types. */
export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView;

/** The JavaScript value sent for each payload type. */
export interface SendValues {
  text: string | Uint8Array;
  dictionary: JsonValue;
  arrowtable: Table | Uint8Array;
  jsontable: JsonRow[];
  image: Bytes;
  audio: Bytes;
  video: Bytes;
  binary: Bytes;
}

/** The JavaScript value received for each payload type. */
export interface ReceivedValues {
  text: string;
  dictionary: JsonValue;
  arrowtable: Table;
  jsontable: JsonRow[];
  image: Uint8Array;
  audio: Uint8Array;
  video: Uint8Array;
  binary: Uint8Array;
}

export type PayloadValue = SendValues[PayloadType] | ReceivedValues[PayloadType];

/**
 * One payload to send: the walkthrough's `[dataname, data, payload_type]`, optionally with a
 * fourth element of payload metadata. A Payload of a received envelope may be forwarded as is.
 */
export type PayloadInput =
  | { [T in PayloadType]: readonly [dataname: string, data: SendValues[T], payload_type: T, metadata?: Record<string, JsonValue>] }[PayloadType]
  | Payload;

/** A payload of an envelope. Destructures as `[dataname, data, payload_type]`. */
export class Payload<T extends PayloadType = PayloadType> implements Iterable<string | PayloadValue> {
  private constructor();
  readonly id: string;
  readonly dataname: string;
  /** As received, or, in the envelope a send returns, the value that was given. */
  readonly data: ReceivedValues[T] | SendValues[T];
  readonly payload_type: T;
  readonly transport: 'direct' | 'link';
  /** Number of serialized bytes. */
  readonly size: number;
  /** The download URL of a link payload; null for a direct one. */
  readonly url: string | null;
  /** `payload_bytes`, and `sha256` for link payloads. */
  readonly metadata: Record<string, JsonValue>;
  [Symbol.iterator](): Iterator<string | PayloadValue>;
}

/** An envelope: the header, with the wire format's own key names, and its payloads. */
export class Envelope {
  private constructor();
  correlation_id: string;
  msg_id: string;
  /** ISO 8601 UTC with milliseconds, e.g. `2026-03-13T07:02:50.443Z`. */
  timestamp: string;
  send_to: string;
  msg_purpose: MsgPurpose | string;
  sender_name: string;
  sender_id: string;
  receiver_name: string;
  receiver_id: string;
  reply_to: string;
  reply_to_msg_id: string;
  broker_url: string;
  metadata: Record<string, JsonValue>;
  payloads: Payload[];
  /** The first payload named `dataname`. */
  payload(dataname: string): Payload | undefined;
}

/** Settings of a client (ms for times, bytes for sizes). There is no environment in a page. */
export interface ConnectOptions {
  /** The nats-server's websocket listener(s): `ws://host:port`, `wss://...` (required by connect). */
  natsUrl?: string | string[];
  /**
   * Base URL of the Plik-compatible file server (default http://localhost:8080); null or ''
   * disables link transport. It must answer CORS for the page's origin. User info
   * (`http://user:password@host`) is sent as basic auth, never in link URLs.
   */
  fileserverUrl?: string | null;
  /** Upload token of a file server that requires one (sent as `X-PlikToken`). */
  fileserverToken?: string | null;
  /** Payloads of at least this many serialized bytes go by link (default 500000). */
  sizeThreshold?: number;
  /** Default `sender_name` of the envelopes this client sends. */
  senderName?: string;
  /** Connection name shown by the NATS server. */
  name?: string | null;
  /** Deadline to connect to NATS, ms (default 5000). */
  connectTimeout?: number;
  /** Deadline of one operation (flush; the base of an upload's deadline; a download attempt's answer), ms (default 10000). */
  operationTimeout?: number;
  token?: string;
  user?: string;
  pass?: string;
  /** Upload link payloads one-shot (deleted on first download). Default false. */
  linkOneshot?: boolean;
  /** How long the file server keeps an upload, seconds (default 86400). */
  linkTtl?: number;
  /** Send a payload direct when its upload fails and it still fits (default true). */
  fallbackToDirect?: boolean;
  /** More origins link payloads may be downloaded from ('*' for any); the file server's own is always allowed. */
  allowedOrigins?: string[] | '*';
  /** The largest link payload accepted, bytes (default 2 GiB). */
  maxDownloadBytes?: number;
  /** Download retries: attempts in all (5), first delay (100 ms), cap on one delay (5000 ms). */
  downloadRetry?: { maxAttempts?: number; baseDelay?: number; maxDelay?: number };
  /** Link payloads one message downloads at once (default 4). */
  parallelDownloads?: number;
  /** Base of a received message's download deadline, ms (default 30000), plus its sizes at minTransferRate. */
  downloadTimeout?: number;
  /** Slowest transfer tolerated, bytes/s (default 262144). */
  minTransferRate?: number;
}

export const DEFAULTS: Readonly<Required<Omit<ConnectOptions, 'natsUrl' | 'token' | 'user' | 'pass'>>>;

/** Per-send options: envelope fields with the wire format's names, and per-send settings. */
export interface SendOptions {
  correlation_id?: string;
  msg_id?: string;
  msg_purpose?: MsgPurpose;
  sender_name?: string;
  sender_id?: string;
  receiver_name?: string;
  receiver_id?: string;
  reply_to?: string;
  reply_to_msg_id?: string;
  metadata?: Record<string, JsonValue>;
  sizeThreshold?: number;
  fallbackToDirect?: boolean;
  /** Resolve only once the server has processed the envelope (a flush). */
  confirm?: boolean;
  /** Upload progress of the send's link payloads: bytes sent so far of `total`. */
  onProgress?: (sent: number, total: number) => void;
}

export interface RequestOptions extends SendOptions {
  /** How long to wait for the reply, ms (default 10000). */
  timeout?: number;
}

/** A NATS message as smartreceive takes it: its bytes, its text, or a nats.ws message. */
export type Message = Uint8Array | ArrayBuffer | string | { data: Uint8Array | string };

export class Client {
  private constructor();
  readonly maxPayload: number;
  readonly isClosed: boolean;
  /** Publishes one envelope on `subject`; sends are published in call order. */
  smartsend(subject: string, payloads: readonly PayloadInput[], options?: SendOptions): Promise<[Envelope, string]>;
  smartreceive(msg: Message): Promise<Envelope>;
  subscribe(subject: string, options?: { queue?: string }): Promise<Subscription>;
  request(subject: string, payloads: readonly PayloadInput[], options?: RequestOptions): Promise<Envelope>;
  reply(request: Envelope, payloads: readonly PayloadInput[], options?: SendOptions): Promise<[Envelope, string]>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A subscription; iterate it with `for await`. A message that could not be delivered rejects
 * `next()` with its error; iterating again goes on with the next message.
 */
export class Subscription implements AsyncIterableIterator<Envelope> {
  private constructor();
  readonly subject: string;
  readonly queue: string | null;
  readonly isClosed: boolean;
  [Symbol.asyncIterator](): AsyncIterableIterator<Envelope>;
  next(): Promise<IteratorResult<Envelope, undefined>>;
  return(): Promise<IteratorResult<Envelope, undefined>>;
  close(): Promise<void>;
}

export function connect(options: ConnectOptions): Promise<Client>;
export function smartsend(subject: string, payloads: readonly PayloadInput[], options: ConnectOptions & SendOptions): Promise<[Envelope, string]>;
/** Decodes a message and downloads its link payloads; makes no NATS connection. */
export function smartreceive(msg: Message, options?: ConnectOptions): Promise<Envelope>;

export type ErrorCode =
  | 'INVALID_PAYLOAD_TYPE'
  | 'UPLOAD_FAILED'
  | 'DOWNLOAD_FAILED'
  | 'INVALID_TRANSPORT'
  | 'NATS_CONNECTION_FAILED'
  | 'DESERIALIZATION_ERROR'
  | 'INVALID_ENVELOPE'
  | 'INVALID_PAYLOAD'
  | 'INVALID_ARGUMENT'
  | 'PAYLOAD_TOO_LARGE'
  | 'LINK_URL_REJECTED'
  | 'INTEGRITY_ERROR'
  | 'TIMEOUT'
  | 'CLOSED'
  | 'NO_RESPONDERS'
  | 'INTERNAL';

export const ERROR_CODES: readonly ErrorCode[];

/** Every error of this module: the wire error code in `code`. */
export class NatsBridgeError extends Error {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; correlationId?: string; details?: Record<string, unknown> });
  readonly code: ErrorCode;
  /** The correlation id of the message the error concerns, when known. */
  correlationId?: string;
  /** url, dataname, status, ... where known. */
  readonly details: Record<string, unknown>;
}
