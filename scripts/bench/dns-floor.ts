/**
 * The floor for `npm run bench:dns`: the least a dns-packet UDP server can do per query.
 * It decodes the query, answers the question with `--records` constant A records named as
 * asked (what the node answers for the benchmark's service), and encodes the answer, with
 * no lookup at all. Runs as its own process, like the node, and prints
 * `{"ready":true,"port":N}` once it listens on 127.0.0.1.
 *
 *   node dist/scripts/bench/dns-floor.js --records 3 [--port 0]
 */
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { AUTHORITATIVE_ANSWER, decode, encode, type StringAnswer } from 'dns-packet';

const { values } = parseArgs({
  options: { records: { type: 'string', default: '3' }, port: { type: 'string', default: '0' } },
});
const records = Number(values.records);
const addresses = Array.from({ length: records }, (_, k) => `10.0.0.${k + 1}`);

const socket = createSocket('udp4');
socket.on('message', (message, peer) => {
  let reply: Buffer;
  try {
    const q = decode(message);
    const question = q.questions?.[0];
    if (question === undefined) return;
    const answers: StringAnswer[] = addresses.map((data) => ({
      type: 'A',
      name: question.name,
      ttl: 0,
      class: 'IN',
      data,
    }));
    reply = encode({ id: q.id ?? 0, type: 'response', flags: AUTHORITATIVE_ANSWER, questions: [question], answers });
  } catch {
    return;
  }
  socket.send(reply, peer.port, peer.address);
});
socket.bind(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: socket.address().port })}\n`);
});
const stop = () => socket.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
