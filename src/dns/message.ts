/**
 * One DNS message in, one out: decodes a query with dns-packet, answers its question
 * (answer.ts) and encodes the response within the transport's size (truncate.ts). Every
 * transport shares it, so UDP and TCP answer alike but for the size.
 *
 * What a bad message gets (never an exception):
 * - shorter than a header, or itself a response (QR set): nothing (no reply loops);
 * - an opcode other than QUERY: NOTIMP;
 * - undecodable, not exactly one question, or more than one OPT record: FORMERR;
 * - a question name with a byte outside printable ASCII, a dot or a backslash inside a
 *   label, or a compression pointer: FORMERR. dns-packet decodes such a name to text that
 *   encodes back to different, even invalid, bytes (a label `a.b` comes back as two), so
 *   it could not be echoed; no name Rollcall serves has one;
 * - EDNS version above 0: BADVERS (RFC 6891 §6.1.3);
 * - a class other than IN or ANY: REFUSED.
 * A response echoes the id, the opcode and RD; RA stays clear (no recursion).
 *
 * A question about another datacenter's service may need a remote lookup (remote.ts): its
 * response is then `deferred`, and `later` resolves with the real one (never rejects).
 */
import {
  type Answer,
  AUTHORITATIVE_ANSWER,
  type DecodedPacket,
  decode,
  encode,
  type OptAnswer,
  type Question,
  RECURSION_DESIRED,
} from 'dns-packet';
import { type AnswerContext, answerQuestion, RCODE, type Reply } from './answer.js';
import { encodeWithin, type ResponsePacket, TCP_LIMIT, UDP_DEFAULT_LIMIT, UDP_MAX_LIMIT } from './truncate.js';

export type Transport = 'udp' | 'tcp';

const HEADER_BYTES = 12;
const QR = 0x8000;
/** BADVERS is extended RCODE 16: 1 in the OPT record's upper 8 bits, 0 in the header. */
const BADVERS_UPPER = 1;

/** The outcome of one message, for logs and counters. */
export type Outcome = 'answered' | 'ignored' | 'formerr' | 'notimp' | 'refused' | 'badvers';

export type Response =
  | {
      readonly outcome: Outcome;
      /** null: send nothing. */
      readonly bytes: Buffer | null;
    }
  /** Answered later (another datacenter's service): send what `later` resolves with. */
  | { readonly outcome: 'deferred'; readonly bytes: null; readonly later: Promise<Response> };

const IGNORED: Response = Object.freeze({ outcome: 'ignored', bytes: null });

export function respond(message: Buffer, transport: Transport, ctx: AnswerContext): Response {
  if (message.length < HEADER_BYTES) return IGNORED;
  const id = message.readUInt16BE(0);
  const flags = message.readUInt16BE(2);
  if ((flags & QR) !== 0) return IGNORED;
  const opcodeBits = flags & 0x7800;
  const rd = flags & RECURSION_DESIRED;
  const bare = (rcode: number, questions: Question[] = [], additionals: Answer[] = []): Buffer =>
    encode({
      id,
      type: 'response',
      flags: opcodeBits | rd | rcode,
      questions,
      answers: [],
      authorities: [],
      additionals,
    });
  if (opcodeBits !== 0) return { outcome: 'notimp', bytes: bare(RCODE.NOTIMP) };

  if (!plainQuestionName(message)) return { outcome: 'formerr', bytes: bare(RCODE.FORMERR) };
  let query: DecodedPacket;
  try {
    query = decode(message);
  } catch {
    return { outcome: 'formerr', bytes: bare(RCODE.FORMERR) };
  }
  const opts = (query.additionals ?? []).filter((r): r is OptAnswer => r.type === 'OPT');
  const question = query.questions?.length === 1 ? query.questions[0]! : null;
  if (question === null || opts.length > 1) return { outcome: 'formerr', bytes: bare(RCODE.FORMERR) };
  const echoed: Question = { name: question.name, type: question.type, class: question.class ?? 'IN' };
  const edns = opts[0] ?? null;
  const ourOpt = edns === null ? [] : [optRecord(0)];
  if (edns !== null && edns.ednsVersion > 0)
    return { outcome: 'badvers', bytes: bare(0, [echoed], [optRecord(BADVERS_UPPER)]) };
  if (echoed.class !== 'IN' && echoed.class !== 'ANY') {
    // A class dns-packet cannot name would not encode back: leave the question out.
    const known = echoed.class === 'CH' || echoed.class === 'HS' || echoed.class === 'CS';
    return { outcome: 'refused', bytes: bare(RCODE.REFUSED, known ? [echoed] : [], ourOpt) };
  }

  const reply = answerQuestion(echoed, ctx);
  const finish = (r: Reply): Response => encodeReply(r, id, opcodeBits | rd, echoed, ourOpt, transport, edns);
  if (reply instanceof Promise) {
    // A remote failure is a SERVFAIL reply, not a rejection; a rejection is a bug the listener logs.
    return { outcome: 'deferred', bytes: null, later: reply.then(finish) };
  }
  return finish(reply);
}

function encodeReply(
  reply: Reply,
  id: number,
  headerBits: number,
  echoed: Question,
  ourOpt: OptAnswer[],
  transport: Transport,
  edns: OptAnswer | null,
): Response {
  const packet: ResponsePacket = {
    id,
    type: 'response',
    flags: headerBits | (reply.authoritative ? AUTHORITATIVE_ANSWER : 0) | RCODE[reply.rcode],
    questions: [echoed],
    answers: reply.answers,
    authorities: reply.authorities,
    additionals: [...reply.additionals, ...ourOpt],
  };
  return {
    outcome: reply.rcode === 'REFUSED' ? 'refused' : 'answered',
    bytes: encodeWithin(packet, sizeLimit(transport, edns), transport === 'tcp' ? 'trim' : 'tc'),
  };
}

/** Whether the first question's name (right after the header) is labels of printable ASCII, without `.` or `\\`. */
function plainQuestionName(message: Buffer): boolean {
  let at = HEADER_BYTES;
  for (;;) {
    if (at >= message.length) return false;
    const len = message[at]!;
    if (len === 0) return true;
    // The top two bits set: a compression pointer (or a reserved label type).
    if ((len & 0xc0) !== 0) return false;
    if (at + 1 + len > message.length) return false;
    for (let k = at + 1; k <= at + len; k++) {
      const b = message[k]!;
      if (b < 0x21 || b > 0x7e || b === 0x2e || b === 0x5c) return false;
    }
    at += 1 + len;
  }
}

function sizeLimit(transport: Transport, edns: OptAnswer | null): number {
  if (transport === 'tcp') return TCP_LIMIT;
  if (edns === null) return UDP_DEFAULT_LIMIT;
  return Math.max(UDP_DEFAULT_LIMIT, Math.min(UDP_MAX_LIMIT, edns.udpPayloadSize));
}

/** Our OPT record: the UDP payload we accept, EDNS version 0, no options. */
function optRecord(extendedRcode: number): OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: UDP_MAX_LIMIT,
    extendedRcode,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

/** A SERVFAIL for a message whose answering threw (a bug): what the listener sends, if it can. */
export function serverFailure(message: Buffer): Buffer | null {
  if (message.length < HEADER_BYTES) return null;
  const flags = message.readUInt16BE(2);
  if ((flags & QR) !== 0) return null;
  return encode({
    id: message.readUInt16BE(0),
    type: 'response',
    flags: (flags & 0x7800) | (flags & RECURSION_DESIRED) | RCODE.SERVFAIL,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  });
}
