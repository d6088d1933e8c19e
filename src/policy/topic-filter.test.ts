import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  covers, filterLevels, filterProblem, formatLevels, HASH, intersects, matchesTopic, PLUS, topicNameProblem,
} from './topic-filter.js';

/** Reference MQTT matching on split levels, written independently of the engine's in-place walk. */
function refMatch(filter: readonly string[], topic: readonly string[]): boolean {
  if ((topic[0] ?? '').startsWith('$') && (filter[0] === '+' || filter[0] === '#')) return false;
  const go = (i: number, j: number): boolean => {
    if (i === filter.length) return j === topic.length;
    if (filter[i] === '#') return true;
    if (j === topic.length) return false;
    return (filter[i] === '+' || filter[i] === topic[j]) && go(i + 1, j + 1);
  };
  return go(0, 0);
}

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FILTER_LITERALS = ['a', 'b', '$s', ''];
/** Topics use one more value, 'z', that no filter names: it stands for "any other level". */
const TOPIC_LEVELS = [...FILTER_LITERALS, 'z'];

function randomFilter(next: () => number): string {
  const n = 1 + Math.floor(next() * 4);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = next();
    if (i === n - 1 && r < 0.2) levels.push('#');
    else if (r < 0.45) levels.push('+');
    else levels.push(FILTER_LITERALS[Math.floor(next() * FILTER_LITERALS.length)] as string);
  }
  return levels.join('/');
}

/** Every topic of 1..5 levels over TOPIC_LEVELS (enough for filters of at most 4 levels). */
const ALL_TOPICS: string[][] = (() => {
  const out: string[][] = [];
  let frontier: string[][] = [[]];
  for (let depth = 1; depth <= 5; depth++) {
    frontier = frontier.flatMap((t) => TOPIC_LEVELS.map((l) => [...t, l]));
    out.push(...frontier);
  }
  return out;
})();

describe('topic filter algebra', () => {
  it('validates filters and topic names by the MQTT rules', () => {
    for (const ok of ['a', 'a/b', '+', '#', 'a/+/b', 'a/#', '/', '+/+', '$SYS/#', '/devices/x/events/#'])
      assert.equal(filterProblem(ok), undefined, ok);
    for (const bad of ['', 'a/#/b', 'a#', 'a+/b', 'a/b+', '#/a', 'a\u0000b', 'x'.repeat(65_536)])
      assert.notEqual(filterProblem(bad), undefined, JSON.stringify(bad.slice(0, 20)));
    assert.equal(topicNameProblem('a/b'), undefined);
    for (const bad of ['', 'a/+', 'a/#', 'a\u0000']) assert.notEqual(topicNameProblem(bad), undefined, bad);
    assert.equal(filterProblem('é'.repeat(32_767)), undefined, '65534 bytes is fine');
    assert.notEqual(filterProblem('é'.repeat(32_768)), undefined, 'UTF-8 bytes are counted, not characters');
  });

  it('keeps wildcards as symbols so a literal "+" level is never a wildcard', () => {
    assert.deepEqual(filterLevels('a/+/#'), ['a', PLUS, HASH]);
    assert.equal(formatLevels(['a', PLUS, HASH]), 'a/+/#');
    assert.equal(matchesTopic(['a', '+'], 'a/x'), false, 'a literal "+" matches only the text "+"');
    assert.equal(covers(['a', '+'], ['a', PLUS]), false);
    assert.equal(intersects(['#'], ['$x']), false);
  });

  it('matches known cases', () => {
    const cases: [string, string, boolean][] = [
      ['a/#', 'a', true],
      ['a/#', 'a/b/c', true],
      ['a/+', 'a', false],
      ['a/+', 'a/', true],
      ['+/+', '/x', true],
      ['#', '$SYS/x', false],
      ['+/x', '$SYS/x', false],
      ['$SYS/#', '$SYS/x', true],
      ['a/b', 'a/b/c', false],
      ['/devices/d1/events/#', '/devices/d1/events', true],
      ['/devices/d1/events/#', '/devices/d10/events', false],
    ];
    for (const [f, t, want] of cases) assert.equal(matchesTopic(filterLevels(f), t), want, `${f} vs ${t}`);
  });

  it('agrees with brute force on random filters (matching, intersection, coverage)', () => {
    const next = rng(0x5eed);
    for (let n = 0; n < 600; n++) {
      const a = randomFilter(next);
      const b = randomFilter(next);
      const al = a.split('/');
      const bl = b.split('/');
      const inA = ALL_TOPICS.map((t) => refMatch(al, t));
      const inB = ALL_TOPICS.map((t) => refMatch(bl, t));
      ALL_TOPICS.forEach((t, i) => {
        if (matchesTopic(filterLevels(a), t.join('/')) !== inA[i]) assert.fail(`match ${a} vs ${t.join('/')}`);
      });
      const bruteIntersects = inA.some((x, i) => x && inB[i]);
      const bruteCovers = inB.every((x, i) => !x || inA[i]);
      assert.equal(intersects(filterLevels(a), filterLevels(b)), bruteIntersects, `intersects(${a}, ${b})`);
      assert.equal(intersects(filterLevels(b), filterLevels(a)), bruteIntersects, `intersects is symmetric (${b}, ${a})`);
      assert.equal(covers(filterLevels(a), filterLevels(b)), bruteCovers, `covers(${a}, ${b})`);
      assert.equal(covers(filterLevels(a), filterLevels(a)), true, `covers itself: ${a}`);
    }
  });
});
