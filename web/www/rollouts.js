// Draws one response: its tokens coloured by semantic step, the probes with their confidence, where
// the thinking was cut, and its grade and reward.

const EXITS = {
  early_exit: 'early exit (a probe was confident)',
  natural: 'closed its thinking itself',
  budget: 'thinking budget ran out',
  eos: 'ended while thinking',
  repetition: 'repeated itself',
};

const fmt = (x, digits = 2) => (x === null || x === undefined ? '–' : x.toFixed(digits));

function span(className, text, title) {
  const el = document.createElement('span');
  el.className = className;
  el.textContent = text;
  if (title) el.title = title;
  return el;
}

/** An element showing `view` (a RolloutView); `label` heads it. */
export function renderRollout(view, label = '') {
  const box = document.createElement('div');
  box.className = `rollout ${view.correct ? 'correct' : 'wrong'}`;
  box.dataset.exit = view.exit;
  box.dataset.tokens = String(view.tokens.length);
  box.dataset.probes = String(view.probes.length);

  const meta = document.createElement('div');
  meta.className = 'meta';
  const grade = view.correct ? `✓ ${view.given}` : `✗ ${view.given ?? 'no answer'} (want ${view.answer})`;
  meta.append(span(`grade ${view.correct ? 'ok' : 'bad'}`, grade));
  const parts = [label, view.problem, `${view.numSteps} step${view.numSteps === 1 ? '' : 's'}`,
    `${view.tokens.length} tokens`, EXITS[view.exit] ?? view.exit];
  if (view.reward !== null) parts.push(`reward ${fmt(view.reward)}`, `advantage ${fmt(view.advantage)}`);
  meta.append(span('facts', parts.filter(Boolean).join(' · ')));
  box.append(meta);

  const text = document.createElement('pre');
  text.className = 'tokens';
  const probesAt = new Map();
  for (const p of view.probes) {
    if (!probesAt.has(p.position)) probesAt.set(p.position, []);
    probesAt.get(p.position).push(p);
  }
  view.tokens.forEach((piece, i) => {
    for (const p of probesAt.get(i) ?? []) {
      const title = `probe at token ${i}: confidence ${fmt(p.confidence, 3)} over ${p.tokens} tokens` +
        (p.exited ? ' — confident: thinking cut here' : '');
      text.append(span(`probe${p.exited ? ' exited' : ''}`, `◆ ${fmt(p.confidence)}`, title));
    }
    if (view.cutAt === i) text.append(span('cut', '✂', 'thinking cut here'));
    const after = view.cutAt !== null && i >= view.cutAt;
    text.append(span(`tok s${view.tokenSteps[i] % 6}${after ? ' after-cut' : ''}`, piece));
  });
  box.append(text);
  return box;
}
