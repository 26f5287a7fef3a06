/** The SIP message layer: parsing, header access, edits, URIs, replies, digest and SDP. */
export * from './digest.js';
export { guard, SipParseError } from './errors.js';
export * from './headers.js';
export { HeaderField, messageLength, type ParseOptions, parseMessage, SipMessage } from './message.js';
export * from './reply.js';
export * from './sdp.js';
export * from './uri.js';
export {
  COMPACT,
  getParam,
  headerKey,
  type NameAddr,
  type Param,
  parseNameAddr,
  quote,
  splitTopLevel,
  unquote,
} from './util.js';
