/**
 * One-line descriptions of entries, messages and Readies for transcripts and error
 * messages, in the manner of etcd's raft.DescribeMessage: `term/index` pairs, the sender
 * and receiver as `from->to`, and only the fields that say something.
 */
import { decodeConfChange } from '../confchange.js';
import type { ConfState, Entry, Message, ReadState, SoftState } from '../messages.js';
import type { Ready } from '../rawnode.js';

const decoder = new TextDecoder();

export function describeConf(conf: ConfState): string {
  return `voters=(${conf.voters.join(' ')}) learners=(${conf.learners.join(' ')})`;
}

export function describeEntry(e: Entry): string {
  if (e.type === 'conf') {
    const cc = decodeConfChange(e.data);
    return `${e.term}/${e.index} conf ${cc.type} ${cc.node}`;
  }
  return `${e.term}/${e.index} normal ${JSON.stringify(decoder.decode(e.data))}`;
}

function describeEntries(entries: readonly Entry[]): string {
  return entries.length === 0 ? '' : ` Entries:[${entries.map(describeEntry).join(', ')}]`;
}

export function describeSoftState(s: SoftState): string {
  return `State:${s.role} Lead:${s.leader ?? 'none'} Term:${s.term}`;
}

export function describeReadState(rs: ReadState): string {
  return `Index:${rs.index} Context:${JSON.stringify(decoder.decode(rs.context))}`;
}

export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} Term:${m.term}`;
  switch (m.type) {
    case 'append':
      return `${head} Log:${m.prevTerm}/${m.prevIndex} Commit:${m.commit}${describeEntries(m.entries)}`;
    case 'appendResponse':
      return m.reject
        ? `${head} Rejected Index:${m.index} Hint:${m.hintTerm}/${m.hintIndex}`
        : `${head} Index:${m.index}`;
    case 'heartbeat':
      return `${head} Commit:${m.commit}${m.context > 0 ? ` Context:${m.context}` : ''}`;
    case 'heartbeatResponse':
      return `${head}${m.context > 0 ? ` Context:${m.context}` : ''}`;
    case 'vote':
    case 'preVote':
      return `${head} Log:${m.lastTerm}/${m.lastIndex}${m.transfer ? ' Transfer' : ''}`;
    case 'voteResponse':
    case 'preVoteResponse':
      return m.reject ? `${head} Rejected` : head;
    case 'snapshot':
      return (
        `${head} Snapshot:${m.meta.term}/${m.meta.index} ${describeConf(m.meta.conf)}` +
        ` Chunk:${m.offset}+${m.chunk.byteLength}/${m.total} Commit:${m.commit}`
      );
    case 'readIndex':
      return `${head} Context:${JSON.stringify(decoder.decode(m.context))}`;
    case 'readIndexResponse':
      return `${head} Index:${m.index} Context:${JSON.stringify(decoder.decode(m.context))}`;
    case 'timeoutNow':
      return head;
  }
}

/**
 * A Ready as lines: what changed, what to persist, what to apply, what to send. `acks`
 * are the messages `advance()` returned, which leave only after the write.
 */
export function describeReady(rd: Ready, acks: readonly Message[]): string[] {
  const out = [`Ready MustSync=${rd.mustSync}:`];
  if (rd.softState) out.push(describeSoftState(rd.softState));
  if (rd.hardState)
    out.push(`HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote ?? 'none'} Commit:${rd.hardState.commit}`);
  if (rd.snapshot)
    out.push(`Snapshot ${rd.snapshot.meta.term}/${rd.snapshot.meta.index} ${describeConf(rd.snapshot.meta.conf)}`);
  if (rd.entries.length > 0) out.push('Entries:', ...rd.entries.map(describeEntry));
  if (rd.committedEntries.length > 0) out.push('CommittedEntries:', ...rd.committedEntries.map(describeEntry));
  if (rd.readStates.length > 0) out.push('ReadStates:', ...rd.readStates.map(describeReadState));
  if (rd.messages.length > 0) out.push('Messages:', ...rd.messages.map(describeMessage));
  if (acks.length > 0) out.push('Messages after persist:', ...acks.map(describeMessage));
  return out;
}
