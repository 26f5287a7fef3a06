/** The MsgContext of one received message as the core creates it. */
import type { SipMessage } from '../sip/message.js';
import type { AvpValue, Branch, Endpoint, MsgContext } from './context.js';
import type { RouteKind } from './module.js';

export class MessageContext implements MsgContext {
  routeKind: RouteKind;
  flags = 0;
  ruri: string;
  branches: Branch[] = [];
  ruriQ = -1;
  dstUri: string | undefined = undefined;
  private avpMap: Map<string, AvpValue[]> | undefined;
  lastError: { code: number; reason: string } | undefined = undefined;
  drop = false;
  /** TCP connection the message arrived on, for replies */
  connId: number | undefined;
  tmCell: unknown = undefined;
  tmArmed: { failure?: string; reply?: string } | undefined = undefined;

  constructor(
    readonly msg: SipMessage,
    readonly src: Endpoint,
    readonly dst: Endpoint,
    kind: RouteKind = 'request',
    connId?: number,
  ) {
    this.routeKind = kind;
    this.ruri = msg.isRequest ? msg.ruri : '';
    this.connId = connId;
  }

  /** one AVP's values without creating the map (see avpOf) */
  peekAvp(name: string): AvpValue[] | undefined {
    return this.avpMap?.get(name);
  }

  /** created on first use: most messages never touch AVPs */
  get avps(): Map<string, AvpValue[]> {
    if (!this.avpMap) this.avpMap = new Map();
    return this.avpMap;
  }

  /** the Request-URI was changed by the script */
  get ruriChanged(): boolean {
    return this.ruri !== this.msg.ruri;
  }
}
