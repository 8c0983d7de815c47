// Small DOM and formatting helpers of the console (no framework: elements are built with h() and replaced whole).

export const $ = <E extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as E;

type Child = Node | string | number | null | undefined | false;

/** an element with attributes (strings; `class`, `data-*`, `aria-*` as written) and children */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function count(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)} k` : n.toLocaleString('en');
}

export const loss = (v: number | null | undefined) => (v == null ? '–' : v.toFixed(3));

export const rate = (v: number | null | undefined) => (v == null || v === 0 ? '–' : v >= 100 ? Math.round(v).toLocaleString('en') : v.toFixed(1));

export function ms(v: number): string {
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

/** "4 s ago", "3 min ago", from an epoch-ms time */
export function ago(t: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}
