// The console's tables: the runs (one row each, the selected one marked), the selected run's volunteers, and its
// contribution leaderboard by samples. Each is rebuilt whole from the latest data; they are small.
import type { RunSummary, VolunteerRow } from './api.ts';
import { ago, count, h, loss, rate } from './dom.ts';

export const statusBadge = (status: string) => h('span', { class: `badge ${status}`, 'data-status': status }, status);

export function runsTable(body: HTMLTableSectionElement, runs: RunSummary[], selected: string | undefined, select: (id: string) => void): void {
  body.replaceChildren(
    ...runs.map((r) => {
      const open = h('button', { type: 'button', class: 'link', title: r.id }, r.name);
      open.addEventListener('click', () => select(r.id));
      const row = h(
        'tr',
        { 'data-run': r.id, 'aria-selected': String(r.id === selected) },
        h('td', {}, open, r.name !== r.id ? h('span', { class: 'muted id' }, r.id) : null),
        h('td', {}, statusBadge(r.status)),
        h('td', {}, `${r.model} `, h('span', { class: 'muted' }, count(r.params))),
        h('td', { class: 'num' }, `${r.step} / ${r.maxSteps}`),
        h('td', { class: 'num' }, loss(r.loss)),
        h('td', { class: 'num' }, loss(r.valLoss)),
        h('td', { class: 'num' }, rate(r.tokensPerSec)),
        h('td', { class: 'num' }, r.workers),
        h('td', { class: 'num' }, r.weight ?? '–'),
      );
      row.addEventListener('click', (e) => {
        if (!(e.target as HTMLElement).closest('button')) select(r.id);
      });
      return row;
    }),
  );
}

/** the volunteer's chosen name, or its id when the name says no more than its kind (the page calls itself 'browser') */
const label = (w: VolunteerRow) => (w.name && w.name !== w.kind ? w.name : w.workerId);

/** "stale 2, expired 1", or – */
const refusals = (r: Record<string, number>) =>
  Object.entries(r)
    .filter(([, n]) => n > 0)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ') || '–';

export function volunteersTable(body: HTMLTableSectionElement, workers: VolunteerRow[]): void {
  const rows = [...workers].sort((a, b) => Number(b.connected) - Number(a.connected) || b.lastSeen - a.lastSeen);
  body.replaceChildren(
    ...rows.flatMap((w) => [
      h(
        'tr',
        { 'data-worker': w.workerId, class: w.connected ? '' : 'gone' },
        h('td', {}, w.kind),
        h('td', { title: w.workerId }, label(w)),
        h('td', { class: 'adapter' }, w.adapter ?? '–'),
        h('td', { class: 'num' }, count(w.samples)),
        h('td', { class: 'num' }, w.evalLeases ? `${w.leases} + ${w.evalLeases} eval` : w.leases),
        h('td', { class: 'num' }, ago(w.lastSeen)),
        h('td', {}, w.connected ? h('span', { class: 'dot on' }, 'yes') : h('span', { class: 'dot' }, 'no')),
        h('td', { class: Object.keys(w.refused).length ? 'warn' : '' }, refusals(w.refused)),
        h('td', { class: w.checksFailed ? 'warn' : '' }, w.checksPassed || w.checksFailed ? `${w.checksPassed} passed, ${w.checksFailed} failed` : '–'),
        w.banned
          ? h('td', { class: 'banned', title: w.banned, 'data-banned': 'yes' }, 'banned')
          : h('td', { class: w.strikes ? 'warn' : '' }, w.strikes ? `${w.strikes} strike${w.strikes > 1 ? 's' : ''}` : 'good'),
      ),
      // why it was banned, in full, on its own line under the volunteer
      ...(w.banned ? [h('tr', { class: 'ban-reason', 'data-worker': w.workerId }, h('td', { colspan: '10' }, `${label(w)} banned: ${w.banned}`))] : []),
    ]),
  );
}

export function leaderboard(list: HTMLOListElement, workers: VolunteerRow[]): void {
  const rows = workers.filter((w) => w.samples > 0).sort((a, b) => b.samples - a.samples);
  const total = rows.reduce((a, w) => a + w.samples, 0);
  list.replaceChildren(
    ...rows.slice(0, 10).map((w) => {
      const share = total ? w.samples / total : 0;
      return h(
        'li',
        {},
        h('span', { class: 'who', title: w.workerId }, label(w), h('span', { class: 'muted' }, ` ${w.kind}`)),
        h('span', { class: 'bar' }, h('span', { style: `width: ${(share * 100).toFixed(1)}%` })),
        h('span', { class: 'num' }, `${count(w.samples)} (${(share * 100).toFixed(0)} %)`),
      );
    }),
  );
  if (!rows.length) list.replaceChildren(h('li', { class: 'muted' }, 'No samples applied yet.'));
}
