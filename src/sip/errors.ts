/**
 * The one error type the SIP message layer throws for malformed input.
 *
 * `reason` is short, constant text fit for a 400 reason phrase or a log line (it never
 * echoes bytes from the message). When the message got far enough, the fields the core
 * needs to answer 400 statelessly are filled in: whether it was a request, its method and
 * the raw values of Via (all), From, To, Call-ID and CSeq.
 */
export class SipParseError extends Error {
  readonly reason: string;
  /** status code to answer with: 400, or 505 for an unsupported SIP version */
  status = 400;
  /** undefined when the start line itself could not be read */
  isRequest: boolean | undefined;
  method: string | undefined;
  /** raw values of every Via header line, top first */
  via: string[] = [];
  from: string | undefined;
  to: string | undefined;
  callId: string | undefined;
  cseq: string | undefined;

  constructor(reason: string) {
    super(reason);
    this.name = 'SipParseError';
    this.reason = reason;
  }

  /** true when a stateless 400 can be built from what was collected */
  get canReply(): boolean {
    return (
      this.isRequest === true &&
      this.method !== 'ACK' &&
      this.via.length > 0 &&
      this.from !== undefined &&
      this.to !== undefined &&
      this.callId !== undefined &&
      this.cseq !== undefined
    );
  }
}

/**
 * Runs `fn`, turning anything it throws that is not a SipParseError into one, so that
 * no other exception escapes the parsing entry points whatever the input bytes.
 */
export function guard<T>(reason: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SipParseError) throw e;
    throw new SipParseError(reason);
  }
}
