/** The transport layer: UDP/TCP listeners and sending, TCP framing, RFC 3263 resolution. */
export * from './dns.js';
export * from './ip.js';
export * from './stream-framer.js';
export * from './transports.js';
