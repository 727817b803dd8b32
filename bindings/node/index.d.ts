// Type declarations of natsbridge for Node.js.

/// <reference types="node" />

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
  image: Buffer;
  audio: Buffer;
  video: Buffer;
  binary: Buffer;
}

/** Any value a payload may hold. */
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
  /** The payload's UUID. */
  readonly id: string;
  /** The sender's name for it. */
  readonly dataname: string;
  /**
   * The value: as received (string, JSON value, apache-arrow Table, array of rows, Buffer),
   * or, in the envelope returned by a send, the value that was given.
   */
  readonly data: ReceivedValues[T] | SendValues[T];
  readonly payload_type: T;
  /** 'direct' (inline, base64) or 'link' (through the file server). */
  readonly transport: 'direct' | 'link';
  /** Number of serialized bytes. */
  readonly size: number;
  /** The download URL of a link payload; null for a direct one. */
  readonly url: string | null;
  /** Payload metadata: `payload_bytes`, and `sha256` for link payloads. */
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
  /** The subject it was published to. */
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

export type MsgPurpose = 'ACK' | 'NACK' | 'updateStatus' | 'shutdown' | 'chat' | 'command' | 'event';

/**
 * Connection settings. Those not given come from the environment (NATS_URL, FILESERVER_URL,
 * FILESERVER_TOKEN, SIZE_THRESHOLD), then from the built-in defaults.
 */
export interface ConnectOptions {
  /** NATS server URL(s): `nats://host:4222`, `tls://...` (default nats://localhost:4222). */
  natsUrl?: string | string[];
  /**
   * Base URL of the Plik-compatible file server; null or '' disables link transport. User info
   * (`http://user:password@host:8080`) is sent as basic auth with uploads, never in link URLs.
   */
  fileserverUrl?: string | null;
  /** Upload token of a file server that requires one (sent as `X-PlikToken`); null or '' unsets. */
  fileserverToken?: string | null;
  /** Payloads of at least this many serialized bytes go by link (default 500000). */
  sizeThreshold?: number;
  /** Default `sender_name` of the envelopes this client sends. */
  senderName?: string;
  /** Connection name shown by the NATS server. */
  name?: string | null;
  /** Deadline to connect to NATS and to open an HTTP connection, ms (default 5000). */
  connectTimeout?: number;
  /** Deadline of one NATS operation (publish, flush, subscribe), ms (default 10000). */
  operationTimeout?: number;
  /** Longest an upload or download may go without receiving data, ms. */
  httpIdleTimeout?: number;
  /** Envelopes one subscription queues before messages are dropped (default 1024). */
  subscriptionQueue?: number;
  token?: string;
  user?: string;
  pass?: string;
  /** A NATS `.creds` file (JWT and NKey seed). */
  credsFile?: string;
  tls?: {
    /** Refuse to connect without TLS. */
    required?: boolean;
    /** PEM file(s) of root certificates to trust. */
    ca?: string | string[];
    /** Client certificate and key (PEM files) for mutual TLS. */
    cert?: string;
    key?: string;
  };
  /** Upload link payloads one-shot (deleted on first download). Default false. */
  linkOneshot?: boolean;
  /** How long the file server keeps an upload, seconds (default 86400). */
  linkTtl?: number;
  /** Send a payload direct when its upload fails and it still fits (default true). */
  fallbackToDirect?: boolean;
  /** More origins link payloads may be downloaded from ('*' for any). */
  allowedOrigins?: string[];
  /** The largest link payload accepted, bytes (default 2 GiB). */
  maxDownloadBytes?: number;
  /** Download retries: attempts in all, first delay and cap on one delay (ms). */
  downloadRetry?: { maxAttempts?: number; baseDelay?: number; maxDelay?: number };
  /** Link payloads one receiver downloads at once (default 4). */
  parallelDownloads?: number;
  /**
   * Base of a received message's download deadline, ms (default 30000): all its link payloads,
   * retries included, must arrive within this plus their declared sizes at `minTransferRate`,
   * or it fails with DOWNLOAD_FAILED.
   */
  downloadTimeout?: number;
  /**
   * Slowest transfer tolerated, bytes per second (default 262144): the part of a download's
   * and of an upload's deadline (`operationTimeout` + size / rate) that grows with its size.
   */
  minTransferRate?: number;
  /**
   * Whether subscriptions deliver envelopes in order of arrival (true, the default: an
   * envelope waits for the link downloads of those before it, at most their deadline) or as
   * soon as each is decoded (false: envelopes without link payloads never wait behind a
   * download).
   */
  orderedSubscriptions?: boolean;
}

/**
 * Per-send options: envelope fields, with the wire format's own names (unset: new UUIDs,
 * 'chat', the client's sender, broadcast), and per-send transport settings.
 */
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
  /** Message-level metadata. */
  metadata?: Record<string, JsonValue>;
  /** Size threshold for this send. */
  sizeThreshold?: number;
  /** Whether a failed upload falls back to direct for this send. */
  fallbackToDirect?: boolean;
  /**
   * Resolve only once the NATS server confirmed it received the envelope (a round trip):
   * rejects with MessagesDroppedError when the connection dropped first, TimeoutError when no
   * confirmation came within `operationTimeout` (the envelope may then be lost). Default false:
   * resolve once the envelope is handed to the connection.
   */
  confirm?: boolean;
}

export interface RequestOptions extends SendOptions {
  /** How long to wait for the reply, ms (default 10000; negative: no limit). */
  timeout?: number;
}

/** A NATS message as smartreceive takes it: its bytes, a string, or a nats.js message. */
export type Message = Uint8Array | ArrayBuffer | string | { data: Uint8Array | string };

export type SubscriptionCallback = (err: NatsBridgeError | null, env: Envelope | null) => void;

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
  /**
   * Deliver each envelope, in order, to `callback(null, env)` — or `callback(err, null)` for a
   * message that could not be delivered — instead of iterating.
   */
  callback?: SubscriptionCallback;
}

/** A connection to NATS with everything needed to send and receive envelopes. */
export class Client {
  private constructor();
  /** Resolves once the client is closed and released. */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  /** The largest message the server accepts (announced at connect). */
  readonly maxPayload: number;
  /**
   * Messages handed to the connection that the server had not confirmed when the connection
   * dropped, since connect: they may not have arrived (an upper bound). `flush()` and `close()`
   * report them as MessagesDroppedError. Still readable after close (the final count).
   */
  readonly dropped: number;

  /**
   * smartsend: serializes each payload, sends small ones inline and large ones through the
   * file server, and publishes one envelope on `subject`. A client publishes its sends (and
   * replies) in the order they were called, whichever finishes first.
   * @returns the envelope as sent and the published JSON (`msg_json`)
   */
  smartsend(subject: string, payloads: readonly PayloadInput[], options?: SendOptions): Promise<[Envelope, string]>;
  /** smartreceive with this client's settings, downloading link payloads. */
  smartreceive(msg: Message): Promise<Envelope>;
  /** Subscribes to `subject` (wildcards allowed); resolves once the server knows the interest. */
  subscribe(subject: string, options?: SubscribeOptions): Promise<Subscription>;
  /** Sends a request (with a fresh inbox as `reply_to`) and resolves with the first reply. */
  request(subject: string, payloads: readonly PayloadInput[], options?: RequestOptions): Promise<Envelope>;
  /** Replies to a received envelope, on its `reply_to`. */
  reply(request: Envelope, payloads: readonly PayloadInput[], options?: SendOptions): Promise<[Envelope, string]>;
  /**
   * Waits until the server has confirmed everything published so far. Rejects with
   * MessagesDroppedError, once, for messages sent since the last report that were not confirmed
   * when the connection dropped (see `dropped`).
   */
  flush(): Promise<void>;
  /**
   * Publishes the sends made before it, flushes and closes the connection; subscriptions end
   * after delivering what they already received; sends racing it reject with ClosedError.
   * Rejects with MessagesDroppedError as `flush()` does (the client is closed all the same).
   * Calling it again returns the same promise.
   * (A client dropped without it is freed once garbage-collected: a safety net, not a close.)
   */
  close(): Promise<void>;
}

/**
 * A subscription. Iterate it with `for await` (leaving the loop early closes it), or give a
 * callback to `subscribe`. A message that could not be delivered rejects the iterator's
 * `next()` with its error; iterating again goes on with the next message.
 */
export class Subscription implements AsyncIterable<Envelope> {
  private constructor();
  readonly subject: string;
  readonly queue: string | null;
  /** Resolves once the subscription has ended and everything received was delivered. */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  /** Messages dropped so far because this subscriber fell behind. */
  readonly dropped: number;
  [Symbol.asyncIterator](): AsyncIterableIterator<Envelope>;
  /**
   * Unsubscribes; what was already received is still delivered, then the subscription ends.
   * (One dropped without it, and not in use, is freed once garbage-collected.)
   */
  close(): Promise<void>;
}

/** Connects to NATS. */
export function connect(options?: ConnectOptions): Promise<Client>;

/** The walkthrough's smartsend without a client: connects, sends, closes. */
export function smartsend(
  subject: string,
  payloads: readonly PayloadInput[],
  options?: ConnectOptions & SendOptions,
): Promise<[Envelope, string]>;

/**
 * The walkthrough's smartreceive without a client: decodes a message and downloads its link
 * payloads (with the link settings of `options`); makes no NATS connection.
 */
export function smartreceive(msg: Message, options?: ConnectOptions): Promise<Envelope>;

/** How much the library logs to standard error (default 'off'). */
export function setLogLevel(level: 'off' | 'warn' | 'info' | 'debug' | 0 | 1 | 2 | 3): void;

/** The library's version. */
export const version: string;
/** The C ABI version of the loaded library. */
export const abiVersion: number;
/** The path libnatsbridge was loaded from. */
export const libraryPath: string;

/** The wire error codes (wire format §6) and the library's own. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'TIMEOUT'
  | 'CLOSED'
  | 'INTERNAL'
  | 'NATS_CONNECTION_FAILED'
  | 'SLOW_CONSUMER'
  | 'NO_RESPONDERS'
  | 'MESSAGES_DROPPED'
  | 'INVALID_ENVELOPE'
  | 'INVALID_PAYLOAD_TYPE'
  | 'INVALID_TRANSPORT'
  | 'INVALID_PAYLOAD'
  | 'DESERIALIZATION_ERROR'
  | 'PAYLOAD_TOO_LARGE'
  | 'UPLOAD_FAILED'
  | 'DOWNLOAD_FAILED'
  | 'LINK_URL_REJECTED'
  | 'INTEGRITY_ERROR'
  | 'NULL_ARG'
  | 'UTF8'
  | 'BUFFER_TOO_SMALL'
  | 'PANIC'
  | 'OUT_OF_RANGE'
  | 'WRONG_THREAD'
  | 'WOULD_BLOCK';

export interface ErrorOptions {
  status?: number;
  cause?: unknown;
}

/** Base class of every natsbridge error. */
export class NatsBridgeError extends Error {
  constructor(message: string, code?: ErrorCode, options?: ErrorOptions);
  /** The wire error code, e.g. 'DOWNLOAD_FAILED'. */
  readonly code: ErrorCode;
  /** The library's numeric status (negative). */
  readonly status: number;
  /**
   * The correlation id of the message the error concerns (a failed send's, even one the
   * library chose; an undecodable received envelope's), when there is one.
   */
  readonly correlationId?: string;
}

declare class CodedError<C extends ErrorCode> extends NatsBridgeError {
  constructor(message: string, options?: ErrorOptions & { code?: ErrorCode });
  readonly code: C;
}

export class InvalidArgumentError extends CodedError<'INVALID_ARGUMENT' | 'NULL_ARG' | 'UTF8' | 'OUT_OF_RANGE'> {}
export class TimeoutError extends CodedError<'TIMEOUT'> {}
export class ClosedError extends CodedError<'CLOSED'> {}
export class InternalError extends CodedError<'INTERNAL' | 'PANIC' | 'BUFFER_TOO_SMALL' | 'WRONG_THREAD' | 'WOULD_BLOCK'> {}
export class NatsConnectionFailedError extends CodedError<'NATS_CONNECTION_FAILED'> {}
export class SlowConsumerError extends CodedError<'SLOW_CONSUMER'> {}
export class NoRespondersError extends CodedError<'NO_RESPONDERS'> {}
/**
 * Messages handed to the connection were not confirmed by the server when the connection to NATS
 * dropped: they may not have arrived. From `flush()`, `close()` and a send with `confirm`.
 */
export class MessagesDroppedError extends CodedError<'MESSAGES_DROPPED'> {
  /** How many messages this error reports (1 for a confirmed send's own). */
  readonly dropped: number;
}
export class InvalidEnvelopeError extends CodedError<'INVALID_ENVELOPE'> {}
export class InvalidPayloadTypeError extends CodedError<'INVALID_PAYLOAD_TYPE'> {}
export class InvalidTransportError extends CodedError<'INVALID_TRANSPORT'> {}
export class InvalidPayloadError extends CodedError<'INVALID_PAYLOAD'> {}
export class DeserializationError extends CodedError<'DESERIALIZATION_ERROR'> {}
export class PayloadTooLargeError extends CodedError<'PAYLOAD_TOO_LARGE'> {}
export class UploadFailedError extends CodedError<'UPLOAD_FAILED'> {}
export class DownloadFailedError extends CodedError<'DOWNLOAD_FAILED'> {}
export class LinkUrlRejectedError extends CodedError<'LINK_URL_REJECTED'> {}
export class IntegrityError extends CodedError<'INTEGRITY_ERROR'> {}
