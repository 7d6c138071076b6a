// HTTP/2 settings for HBONE tunnels on both sides, taken from ztunnel's defaults
// (src/config.rs: 4 MiB stream window, 16 MiB connection window, 1 MiB frames) so a tunnel
// is never throttled by flow control where ztunnel's would not be.
import type { Settings } from 'node:http2';

export const STREAM_WINDOW = 4 * 1024 * 1024;
export const CONNECTION_WINDOW = 16 * 1024 * 1024;
export const MAX_FRAME_SIZE = 1024 * 1024;
/** Inbound: ztunnel advertises 200; we allow more so one client connection can carry a busy pool. */
export const INBOUND_MAX_STREAMS = 1000;
/** Outbound: ztunnel's POOL_MAX_STREAMS_PER_CONNECTION. */
export const OUTBOUND_MAX_STREAMS = 100;
export const KEEPALIVE_INTERVAL_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 20_000;
/** Node's default (10 MB) is below one connection window; its cap would reset busy sessions. */
export const MAX_SESSION_MEMORY_MB = 128;

export const inboundSettings: Settings = {
  initialWindowSize: STREAM_WINDOW,
  maxFrameSize: MAX_FRAME_SIZE,
  maxConcurrentStreams: INBOUND_MAX_STREAMS,
  maxHeaderListSize: 64 * 1024,
  enablePush: false,
  enableConnectProtocol: false,
};

export const outboundSettings: Settings = {
  initialWindowSize: STREAM_WINDOW,
  maxFrameSize: MAX_FRAME_SIZE,
  maxHeaderListSize: 16 * 1024,
  enablePush: false,
};
